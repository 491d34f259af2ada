"""Scripted recognition results released as audio arrives: WAV parsing, energy VAD, partials.

Timestamps are milliseconds of *audio* time since the first audio byte (after a WAV header); the
pipeline is driven by the bytes received, never by wall time.
"""
import math
import operator
import re
import struct
import sys
from array import array

PUNCTUATION = '，。？！、,.?!;:；：'
FILLERS = frozenset(('嗯', '啊', '呃', '额', 'um', 'uh'))
COMPRESSED_FORMATS = {'mp3': 64000, 'opus': 32000, 'speex': 16000, 'aac': 64000, 'amr': 12200}
FORMATS = frozenset(('pcm', 'wav')) | frozenset(COMPRESSED_FORMATS)
FRAME_MS = 10
GENERATED_TEXT = '模拟识别结果第%d句。'
_TOKEN_RE = re.compile(r'[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\s\u3040-\u30ff\u3400-\u9fff'
                       r'\uf900-\ufaff%s]+|[%s]' % (re.escape(PUNCTUATION), re.escape(PUNCTUATION)))
_SENTENCE_SPLIT_RE = re.compile(r'(?<=[。！？!?.])\s*')


def split_sentences(text):
    """A transcript into sentences at terminal punctuation (``--transcript`` text)."""
    return [s for s in (p.strip() for p in _SENTENCE_SPLIT_RE.split(text)) if s]


def tokenize(text):
    """``[(token, punctuation)]``: one token per CJK character, ASCII runs split on whitespace,
    trailing punctuation attached to the previous token."""
    tokens = []
    for piece in _TOKEN_RE.findall(text):
        if piece in PUNCTUATION:
            if tokens:
                tokens[-1][1] += piece
            continue
        tokens.append([piece, ''])
    return [tuple(t) for t in tokens]


def transform_tokens(tokens, punctuation=True, disfluency_removal=False):
    out = []
    for tok, punct in tokens:
        if disfluency_removal and tok.lower() in FILLERS:
            continue
        out.append((tok, punct if punctuation else ''))
    return out


def tokens_text(tokens):
    parts = []
    prev_ascii = False
    for tok, punct in tokens:
        is_ascii = tok.isascii()
        if parts and is_ascii and prev_ascii:
            parts.append(' ')
        parts.append(tok + punct)
        prev_ascii = is_ascii
    return ''.join(parts)


def words(tokens, begin, end):
    """Word dicts with integer times spread evenly over [begin, end]."""
    n = len(tokens)
    if not n:
        return []
    span = max(0, end - begin)
    out = []
    for i, (tok, punct) in enumerate(tokens):
        out.append({'begin_time': int(begin + span * i // n), 'end_time': int(begin + span * (i + 1) // n),
                    'text': tok, 'punctuation': punct})
    return out


def sentence(begin, end, text, heartbeat=False, sentence_end=False, word_list=(), extras=None):
    s = {'begin_time': int(begin), 'end_time': None if end is None else int(end), 'text': text,
         'heartbeat': heartbeat, 'sentence_end': sentence_end, 'words': list(word_list)}
    if extras:
        s.update(extras)
    return s


def parse_wav_header(buf):
    """``(data_offset, sample_rate, channels, bits)`` once the header is complete; None while it
    is incomplete; raises ValueError if it is not a WAV header."""
    if len(buf) < 12:
        if not b'RIFF'.startswith(buf[:4]):
            raise ValueError('not RIFF')
        return None
    if buf[:4] != b'RIFF' or buf[8:12] != b'WAVE':
        raise ValueError('not RIFF/WAVE')
    pos = 12
    fmt = None
    while True:
        if len(buf) < pos + 8:
            return None
        cid, size = buf[pos:pos + 4], struct.unpack('<I', buf[pos + 4:pos + 8])[0]
        if cid == b'data':
            if fmt is None:
                raise ValueError('data before fmt')
            return (pos + 8,) + fmt
        if len(buf) < pos + 8 + size:
            return None
        if cid == b'fmt ':
            _, channels, rate, _, _, bits = struct.unpack('<HHIIHH', buf[pos + 8:pos + 24])
            fmt = (rate, channels, bits)
        pos += 8 + size + (size & 1)
        if pos > 65536:
            raise ValueError('header too long')


def sniff_format(first_bytes):
    return 'wav' if first_bytes[:4] == b'RIFF' else 'pcm'


class Settings(object):
    """Per-task pipeline settings derived from emulator knobs and run-task parameters."""

    def __init__(self, knobs, model, params):
        params = params or {}
        self.model = model or ''
        semantic = params.get('semantic_punctuation_enabled') is True
        default_silence = 1300 if self.model.startswith('fun-asr') else 800
        if semantic:
            self.max_silence_ms = knobs.get('semantic_pause_ms', 500)
        else:
            self.max_silence_ms = params.get('max_sentence_silence') or default_silence
        self.threshold_dbfs = knobs.get('vad_threshold_dbfs', -40.0)
        self.onset_ms = knobs.get('vad_onset_ms', 60)
        self.max_sentence_ms = (None if params.get('multi_threshold_mode_enabled') is True
                                else knobs.get('max_sentence_ms', 60000))
        self.partials = knobs.get('partial_results', True)
        self.partial_interval_ms = knobs.get('partial_interval_ms', 200)
        self.ms_per_token = knobs.get('ms_per_token', 200)
        self.heartbeat = params.get('heartbeat') is True
        self.heartbeat_interval_ms = knobs.get('heartbeat_interval_ms', 1000)
        self.punctuation = params.get('punctuation_prediction_enabled') is not False
        self.disfluency_removal = params.get('disfluency_removal_enabled') is True
        self.compressed_sentence_ms = knobs.get('compressed_sentence_ms', 3000)
        # without heartbeat, this much continuous silence fails the task (None: never)
        self.silence_fail_after_ms = None if self.heartbeat else knobs.get('silence_fail_after_ms')
        self.bitrates = dict(COMPRESSED_FORMATS, **knobs.get('bitrates', {}))
        self.sentence_id = self.model.startswith('fun-asr')
        self.emotion = self.model == 'paraformer-realtime-8k-v2' and not semantic


class Pipeline(object):
    """Audio in, ``payload`` dicts (``{"output": …, "usage": …}``) out."""

    def __init__(self, script, fmt, sample_rate, settings):
        self.settings = settings
        # None: generated sentences, one per detected segment, never left over.
        self.generated = script is None
        self.generated_count = 0
        self.entries = [e if isinstance(e, dict) else {'text': e} for e in (script or ())]
        self.timed = any('end_time' in e for e in self.entries)
        self.next_entry = 0
        self.fmt = fmt
        self.sample_rate = sample_rate or 16000
        self.channels = 1
        self.header = bytearray() if fmt == 'wav' else None
        self.total_bytes = 0
        self.audio_ms = 0.0
        self.pending = b''
        self.finals = 0
        self.last_final = None  # (payload, tokens) of the last final, for leftovers
        # VAD state
        self.in_segment = False
        self.speech_run = 0
        self.candidate_begin = 0
        self.seg_begin = 0
        self.last_speech_end = 0
        self.silence_run = 0
        self.nonspeech_run = 0
        self.last_partial_at = 0
        self.seg_entry = None
        self.timed_partial_at = 0
        self.silence_ms = 0          # continuous non-speech, for silence_fail_after_ms
        self.silence_failed = False
        self.frame_bytes = 0
        self._update_frame()

    def set_format(self, fmt):
        """Format decided from the first audio bytes (the Node sample sends none)."""
        self.fmt = fmt
        self.header = bytearray() if fmt == 'wav' else None

    def _update_frame(self):
        self.frame_bytes = self.sample_rate * 2 * self.channels * FRAME_MS // 1000
        self.bytes_per_ms = self.sample_rate * 2 * self.channels / 1000.0

    # -- helpers -----------------------------------------------------------------------------------
    def _usage(self):
        return {'duration': max(1, int(math.ceil(self.audio_ms / 1000.0)))}

    def _tokens(self, entry):
        return transform_tokens(tokenize(entry['text']), self.settings.punctuation,
                                self.settings.disfluency_removal)

    def _final(self, entry, begin, end, tokens=None):
        tokens = self._tokens(entry) if tokens is None else tokens
        self.finals += 1
        extras = {}
        if self.settings.sentence_id:
            extras['sentence_id'] = self.finals
        if self.settings.emotion:
            extras['emo_tag'] = entry.get('emo_tag', 'neutral')
            extras['emo_confidence'] = entry.get('emo_confidence', 1.0)
        payload = {'output': {'sentence': sentence(begin, end, tokens_text(tokens), sentence_end=True,
                                                   word_list=words(tokens, begin, end),
                                                   extras=extras)},
                   'usage': self._usage()}
        self.last_final = (payload, tokens, entry)
        return payload

    def _partial(self, entry, begin, elapsed_ms):
        tokens = self._tokens(entry)
        n = min(len(tokens) - 1, int(elapsed_ms // self.settings.ms_per_token))
        if n < 1:
            return None
        shown = tokens[:n]
        return {'output': {'sentence': sentence(begin, None, tokens_text(shown),
                                                word_list=words(shown, begin, begin + elapsed_ms))},
                'usage': None}

    def _heartbeat(self, t):
        return {'output': {'sentence': sentence(t, None, '', heartbeat=True)}, 'usage': None}

    def _take_entry(self):
        if self.generated:
            self.generated_count += 1
            return {'text': GENERATED_TEXT % self.generated_count}
        if self.next_entry < len(self.entries):
            entry = self.entries[self.next_entry]
            self.next_entry += 1
            return entry
        return None

    # -- feeding -----------------------------------------------------------------------------------
    def feed(self, data):
        out = []
        if self.header is not None:
            self.header.extend(data)
            try:
                parsed = parse_wav_header(bytes(self.header))
            except ValueError:
                parsed = (44, self.sample_rate, 1, 16)
                if len(self.header) < 44:
                    return out
            if parsed is None:
                return out
            offset, rate, channels, _bits = parsed
            self.sample_rate = rate or self.sample_rate
            self.channels = max(1, channels)
            self._update_frame()
            data = bytes(self.header[offset:])
            self.header = None
        if not data:
            return out
        self.total_bytes += len(data)
        if self.fmt in COMPRESSED_FORMATS:
            self.audio_ms = self.total_bytes * 8000.0 / self.settings.bitrates[self.fmt]
            self._compressed(out)
            return out
        buf = self.pending + data if self.pending else data
        usable = len(buf) - len(buf) % self.frame_bytes
        for pos in range(0, usable, self.frame_bytes):
            self._frame(buf[pos:pos + self.frame_bytes], out)
        self.pending = buf[usable:]
        return out

    def _frame(self, frame, out):
        t = self.audio_ms
        self.audio_ms += FRAME_MS
        if self.timed:
            self._timed(out)
            return
        s = self.settings
        samples = array('h')
        samples.frombytes(frame)
        if sys.byteorder == 'big':
            samples.byteswap()
        step = max(1, len(samples) // 40) * self.channels  # ~40 samples per 10 ms is plenty
        picked = samples[::step]
        energy = sum(map(operator.mul, picked, picked)) / max(1, len(picked))
        speech = energy > 0 and 10 * math.log10(energy / 1073741824.0) >= s.threshold_dbfs
        end = t + FRAME_MS
        self.silence_ms = 0 if speech else self.silence_ms + FRAME_MS
        if s.silence_fail_after_ms is not None and self.silence_ms >= s.silence_fail_after_ms:
            self.silence_failed = True
        if not self.in_segment:
            if speech:
                if self.speech_run == 0:
                    self.candidate_begin = t
                self.speech_run += 1
                self.nonspeech_run = 0
                if self.speech_run * FRAME_MS >= s.onset_ms:
                    self.in_segment = True
                    self.seg_begin = self.candidate_begin
                    self.last_speech_end = end
                    self.silence_run = 0
                    self.last_partial_at = end
                    self.seg_entry = self._take_entry()
            else:
                self.speech_run = 0
                self.nonspeech_run += FRAME_MS
                if s.heartbeat and self.nonspeech_run >= s.heartbeat_interval_ms:
                    self.nonspeech_run = 0
                    out.append(self._heartbeat(int(end)))
            return
        if speech:
            self.last_speech_end = end
            self.silence_run = 0
        else:
            self.silence_run += FRAME_MS
        if self.silence_run >= s.max_silence_ms or (
                s.max_sentence_ms is not None and end - self.seg_begin >= s.max_sentence_ms):
            self._end_segment(out)
            return
        if (s.partials and self.seg_entry is not None and speech
                and end - self.last_partial_at >= s.partial_interval_ms):
            self.last_partial_at = end
            partial = self._partial(self.seg_entry, self.seg_begin, self.last_speech_end - self.seg_begin)
            if partial:
                out.append(partial)

    def _end_segment(self, out):
        self.in_segment = False
        self.speech_run = 0
        self.nonspeech_run = 0
        entry, self.seg_entry = self.seg_entry, None
        if entry is not None:  # segments beyond the script are noise
            out.append(self._final(entry, self.seg_begin, self.last_speech_end))

    def _timed(self, out):
        now = self.audio_ms
        s = self.settings
        while self.next_entry < len(self.entries):
            entry = self.entries[self.next_entry]
            begin = entry.get('begin_time', 0)
            end = entry.get('end_time', begin)
            if now >= end:
                self.next_entry += 1
                out.append(self._final(entry, begin, end))
                continue
            if s.partials and now >= begin and now - self.timed_partial_at >= s.partial_interval_ms:
                self.timed_partial_at = now
                partial = self._partial(entry, begin, now - begin)
                if partial:
                    out.append(partial)
            break

    def _compressed(self, out):
        s = self.settings
        while self.next_entry < len(self.entries):
            k = self.next_entry + 1
            due = k * s.compressed_sentence_ms
            begin = (k - 1) * s.compressed_sentence_ms
            if self.audio_ms >= due:
                self.next_entry += 1
                out.append(self._final(self.entries[k - 1], begin, due))
                continue
            if s.partials and self.audio_ms - self.timed_partial_at >= s.partial_interval_ms:
                self.timed_partial_at = self.audio_ms
                partial = self._partial(self.entries[k - 1], begin, self.audio_ms - begin)
                if partial:
                    out.append(partial)
            break

    def finish(self):
        """End of audio: close the open segment, hand out the sentences left over."""
        out = []
        if self.in_segment:
            self._end_segment(out)
        rest = self.entries[self.next_entry:]
        self.next_entry = len(self.entries)
        if not rest:
            return out
        if out and self.last_final is not None and out[-1] is self.last_final[0]:
            # The segment open at finish-task takes the leftovers, no separator (reference §5.7).
            payload, tokens, _ = self.last_final
            extra = []
            for entry in rest:
                extra.extend(self._tokens(entry))
            old = payload['output']['sentence']
            all_tokens = tokens + extra
            old['text'] = tokens_text(all_tokens)
            old['words'] = words(all_tokens, old['begin_time'], old['end_time'])
            return out
        if self.last_final is not None:
            # Its final was already sent: leftovers become finals over the audio after it.
            start = self.last_final[0]['output']['sentence']['end_time']
            total = max(int(self.audio_ms), start + len(rest))
            span = (total - start) // len(rest)
            for i, entry in enumerate(rest):
                b = start + i * span
                out.append(self._final(entry, b, b + span if i < len(rest) - 1 else total))
            return out
        total = max(int(self.audio_ms), len(rest))
        span = total // len(rest)
        for i, entry in enumerate(rest):
            out.append(self._final(entry, i * span, (i + 1) * span if i < len(rest) - 1 else total))
        return out
