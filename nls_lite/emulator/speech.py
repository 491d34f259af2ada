"""What the emulated recogniser "hears": scripted transcripts, an energy VAD on PCM16, WAV headers.

Pure computation (no socket, no clock): the server feeds audio bytes in and turns the results into
gateway messages. Per-frame work is one sum of squares over a 10 ms slice of an ``array('h')``.
"""
import math
import re
import struct
import sys
from array import array
from operator import mul

__all__ = ['Sentence', 'parse_script', 'join_sentences', 'units', 'strip_punctuation', 'partial_text',
           'word_list', 'EnergyVad', 'WavHeaderError', 'parse_wav_header', 'pcm_payload']

# Sentence-final marks a str script is split after (§5.7.1).
_SENTENCE_RE = re.compile(r'[^。！？.!?]*[。！？.!?]+|[^。！？.!?]+$')
# Stripped when enable_punctuation_prediction is false (§5.7.6).
_PUNCT = '，。！？、；：,.!?;:'
_PUNCT_TABLE = {ord(c): None for c in _PUNCT}
_FINAL_PUNCT = '。！？.!?，,；;：:、'
# Units of progressive release: a Latin word (with its trailing blanks) or any other single character.
_UNIT_RE = re.compile(r"[A-Za-z0-9'_-]+\s*|\S\s*")
_LITTLE_ENDIAN = sys.byteorder == 'little'
_sumprod = getattr(math, 'sumprod', None)  # 3.12+: C speed; else map(mul) below


class Sentence(object):
    """One scripted sentence."""

    __slots__ = ('text', 'itn_text', 'confidence', 'begin_ms', 'end_ms')

    def __init__(self, text, itn_text=None, confidence=0.9, begin_ms=None, end_ms=None):
        self.text = text
        self.itn_text = itn_text
        self.confidence = confidence
        self.begin_ms = begin_ms
        self.end_ms = end_ms

    def result(self, itn=False, punctuation=True):
        text = self.itn_text if (itn and self.itn_text) else self.text
        return text if punctuation else strip_punctuation(text)

    def __repr__(self):
        return 'Sentence(%r)' % (self.text,)


def parse_script(script):
    """A script (str, or list of str / dict) as a list of Sentence; raises ValueError if malformed."""
    if script is None:
        return []
    if isinstance(script, Sentence):
        return [script]
    if isinstance(script, str):
        return [Sentence(s.strip()) for s in _SENTENCE_RE.findall(script) if s.strip()]
    if not isinstance(script, (list, tuple)):
        raise ValueError('script must be a str or a list, not %s' % type(script).__name__)
    out = []
    for item in script:
        if isinstance(item, Sentence):
            out.append(item)
        elif isinstance(item, str):
            out.append(Sentence(item))
        elif isinstance(item, dict) and isinstance(item.get('text'), str):
            confidence = item.get('confidence', 0.9)
            if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
                raise ValueError('script confidence must be a number')
            out.append(Sentence(item['text'], item.get('itn_text'), float(confidence),
                                _opt_int(item.get('begin_ms')), _opt_int(item.get('end_ms'))))
        else:
            raise ValueError('script items must be str or {"text": ...} dicts')
    return out


def _opt_int(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError('begin_ms/end_ms must be numbers')
    return int(value)


def _joiner(left, right):
    # CJK runs join directly; Latin words keep a space between them.
    if left and right and left[-1] not in ' ' and (left[-1].isascii() and right[0].isascii()):
        return ' '
    return ''


def join_sentences(texts):
    out = ''
    for text in texts:
        if text:
            out = out + _joiner(out, text) + text
    return out


def units(text):
    """Release units: each CJK character one unit, each Latin word one unit (§5.7.5)."""
    return _UNIT_RE.findall(text)


def strip_punctuation(text):
    return text.translate(_PUNCT_TABLE)


def partial_text(text, n_units):
    """The first n units of text, never ending in punctuation (partials never show the final mark)."""
    prefix = ''.join(units(text)[:n_units]).rstrip()
    return prefix.rstrip(_FINAL_PUNCT).rstrip()


def word_list(text, begin_ms, end_ms):
    """`words` items spread evenly over [begin_ms, end_ms]; punctuation is not a word."""
    items = [u.strip() for u in units(strip_punctuation(text)) if u.strip()]
    if not items:
        return []
    span = max(0, end_ms - begin_ms)
    out = []
    for i, word in enumerate(items):
        out.append({'text': word,
                    'startTime': begin_ms + span * i // len(items),
                    'endTime': begin_ms + span * (i + 1) // len(items)})
    return out


class EnergyVad(object):
    """Incremental energy VAD over 10 ms frames of 16-bit little-endian mono PCM (§5.7.3).

    ``feed(data)`` returns events in audio order: ``('begin', begin_ms)`` once ``min_speech_ms`` of
    consecutive speech has been seen, ``('end', end_ms)`` when the following silence reaches
    ``max_silence_ms`` (end = the end of the last speech frame), or after ``max_sentence_ms`` of
    speech. All times are ms of audio.
    """

    def __init__(self, sample_rate=16000, threshold_dbfs=-40.0, min_speech_ms=60, max_silence_ms=800,
                 max_sentence_ms=60000):
        self.frame_samples = max(1, sample_rate // 100)
        self.frame_bytes = self.frame_samples * 2
        self.sample_rate = sample_rate
        self.set_threshold(threshold_dbfs)
        self.min_speech_frames = max(1, -(-int(min_speech_ms) // 10))
        self.set_max_silence(max_silence_ms)
        self.max_sentence_frames = max(1, int(max_sentence_ms) // 10)
        self._rest = b''
        self.frames = 0                 # 10 ms frames processed
        self.in_sentence = False
        self._run = 0                   # consecutive speech frames while outside a sentence
        self._silence = 0               # consecutive silence frames inside a sentence
        self._sentence_frames = 0       # frames since the sentence began
        self._last_speech_end = 0       # frame index after the last speech frame
        self.sentence_begin_ms = 0
        self.sentence_speech_frames = 0  # speech frames in the current sentence
        self.total_speech_frames = 0
        self.speech_seen = False        # a sentence has ever begun

    def set_threshold(self, dbfs):
        # Compare sums of squares instead of taking a log per frame:
        # rms >= 32768 * 10**(dbfs/20)  <=>  sumsq >= n * (32768 * 10**(dbfs/20))**2
        level = 32768.0 * (10.0 ** (dbfs / 20.0))
        self._threshold_sumsq = self.frame_samples * level * level

    def set_max_silence(self, ms):
        self.max_silence_frames = max(1, int(ms) // 10)

    @property
    def sentence_speech_ms(self):
        return self.sentence_speech_frames * 10

    @property
    def total_speech_ms(self):
        return self.total_speech_frames * 10

    def feed(self, data):
        if self._rest:
            data = self._rest + data
        usable = len(data) - len(data) % self.frame_bytes
        self._rest = data[usable:] if usable != len(data) else b''
        if not usable:
            return []
        samples = array('h')
        samples.frombytes(data[:usable] if usable != len(data) else data)
        if not _LITTLE_ENDIAN:
            samples.byteswap()
        events = []
        n = self.frame_samples
        threshold = self._threshold_sumsq
        for start in range(0, len(samples), n):
            frame = samples[start:start + n]
            if _sumprod is not None:
                sumsq = _sumprod(frame, frame)
            else:
                sumsq = sum(map(mul, frame, frame))
            self._step(sumsq >= threshold and sumsq > 0, events)
        return events

    def _step(self, speech, events):
        index = self.frames
        self.frames = index + 1
        if not self.in_sentence:
            if speech:
                self._run += 1
                if self._run >= self.min_speech_frames:
                    first = index + 1 - self._run
                    self.in_sentence = True
                    self.speech_seen = True
                    self.sentence_begin_ms = first * 10
                    self.sentence_speech_frames = self._run
                    self.total_speech_frames += self._run
                    self._sentence_frames = self._run
                    self._silence = 0
                    self._last_speech_end = index + 1
                    self._run = 0
                    events.append(('begin', self.sentence_begin_ms))
            else:
                self._run = 0
            return
        self._sentence_frames += 1
        if speech:
            self._silence = 0
            self._last_speech_end = index + 1
            self.sentence_speech_frames += 1
            self.total_speech_frames += 1
            if self._sentence_frames >= self.max_sentence_frames:
                self.in_sentence = False
                events.append(('end', self._last_speech_end * 10))
        else:
            self._silence += 1
            if self._silence >= self.max_silence_frames:
                self.in_sentence = False
                events.append(('end', self._last_speech_end * 10))

    @property
    def last_speech_end_ms(self):
        return self._last_speech_end * 10


class WavHeaderError(ValueError):
    """The stream does not start with a usable 16-bit mono PCM WAV header."""


MAX_WAV_HEADER = 4096


def parse_wav_header(data):
    """Length of the RIFF/WAVE header up to the start of the ``data`` chunk's payload.

    Returns None when more bytes are needed; raises WavHeaderError when the header is invalid, not
    16-bit mono PCM, or longer than MAX_WAV_HEADER bytes.
    """
    if len(data) >= 4 and data[:4] != b'RIFF':
        raise WavHeaderError('stream does not start with RIFF')
    if len(data) >= 12 and data[8:12] != b'WAVE':
        raise WavHeaderError('RIFF stream is not WAVE')
    pos = 12
    fmt_ok = False
    while True:
        if pos + 8 > len(data):
            break
        chunk_id = data[pos:pos + 4]
        (size,) = struct.unpack('<I', data[pos + 4:pos + 8])
        if chunk_id == b'data':
            if not fmt_ok:
                raise WavHeaderError('data chunk before fmt chunk')
            if pos + 8 > MAX_WAV_HEADER:
                raise WavHeaderError('WAV header longer than %d bytes' % MAX_WAV_HEADER)
            return pos + 8
        if chunk_id == b'fmt ':
            if pos + 8 + 16 > len(data):
                break
            fmt_tag, channels, _rate, _byte_rate, _align, bits = struct.unpack(
                '<HHIIHH', data[pos + 8:pos + 24])
            if fmt_tag not in (1, 0xFFFE) or channels != 1 or bits != 16:
                raise WavHeaderError('WAV is not 16-bit mono PCM (format %d, %d channel(s), %d bits)'
                                     % (fmt_tag, channels, bits))
            fmt_ok = True
        pos += 8 + size + (size & 1)
        if pos > MAX_WAV_HEADER:
            raise WavHeaderError('WAV header longer than %d bytes' % MAX_WAV_HEADER)
    if len(data) > MAX_WAV_HEADER:
        raise WavHeaderError('WAV header longer than %d bytes' % MAX_WAV_HEADER)
    return None


def pcm_payload(data):
    """The PCM payload of data: after the WAV header when it starts with RIFF, else data itself."""
    if data[:4] == b'RIFF':
        offset = parse_wav_header(data)
        if offset is None:
            raise WavHeaderError('truncated WAV header')
        return data[offset:]
    return data
