# -*- coding: utf-8 -*-
"""Scripted recognition for the emulator: audio clock, WAV header skipping, G.711 decoding, energy VAD
on 20 ms frames, and the per-mode release of events and results. Pure: no I/O, no clock.

A ``Recognizer`` is fed audio bytes and returns the messages due at that point of audio time; the
server wraps them with resp_type/trace_id.
"""
import math
import re
import struct
import unicodedata
import warnings
from array import array

try:  # C speed for RMS where available (gone in Python 3.13); pure Python otherwise
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import audioop as _audioop
except ImportError:  # pragma: no cover - depends on the Python version
    _audioop = None

# audio_format -> (sample rate, codec, bytes per second)
AUDIO_FORMATS = {
    'pcm16k16bit': (16000, 'pcm', 32000),
    'pcm8k16bit': (8000, 'pcm', 16000),
    'ulaw16k8bit': (16000, 'ulaw', 16000),
    'ulaw8k8bit': (8000, 'ulaw', 8000),
    'alaw16k8bit': (16000, 'alaw', 16000),
    'alaw8k8bit': (8000, 'alaw', 8000),
}

MODE_SHORT = 'short-stream'
MODE_SENTENCE = 'sentence-stream'
MODE_CONTINUE = 'continue-stream'
MODE_SASR = 'short-audio'

# Audio caps per mode, ms.
MODE_LIMIT_MS = {MODE_SHORT: 60000, MODE_SENTENCE: 60000, MODE_CONTINUE: 5 * 3600 * 1000, MODE_SASR: 60000}

FRAME_MS = 20
_PUNCT_RE = re.compile(r'[\s]*[\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65!-/:-@\[-`{-~]+')


def _ulaw_to_linear(u):
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def _alaw_to_linear(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if (a & 0x80) else -t


# G.711 tables, built once: sample value and its square per code byte.
ULAW_TABLE = [_ulaw_to_linear(i) for i in range(256)]
ALAW_TABLE = [_alaw_to_linear(i) for i in range(256)]
_ULAW_SQ = [v * v for v in ULAW_TABLE]
_ALAW_SQ = [v * v for v in ALAW_TABLE]


def frame_dbfs_pcm16(frame):
    """ Level of one little-endian PCM16 frame in dBFS (-inf for digital silence). """
    if _audioop is not None:
        rms = _audioop.rms(frame, 2)
    else:
        samples = array('h', frame)
        if struct.pack('=h', 1) != struct.pack('<h', 1):  # pragma: no cover - big-endian hosts
            samples.byteswap()
        rms = math.sqrt(sum(map(int.__mul__, samples, samples)) / max(1, len(samples)))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else float('-inf')


def frame_dbfs_g711(frame, squares):
    total = sum(squares[b] for b in frame)
    rms = math.sqrt(total / max(1, len(frame)))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else float('-inf')


def strip_punctuation(text):
    return _PUNCT_RE.sub(lambda m: ' ' if m.group(0).strip() == '' else '', text).strip()


def is_cjk(ch):
    return 'CJK' in unicodedata.name(ch, '') or '\u3040' <= ch <= '\u30ff'


def tokenize(text):
    """ Word-info tokens: each CJK character; each run of other word characters, prefixed '▁'. """
    tokens = []
    word = []
    for ch in text:
        if is_cjk(ch):
            if word:
                tokens.append('\u2581' + ''.join(word))
                word = []
            tokens.append(ch)
        elif ch.isalnum() or ch in "'":
            word.append(ch)
        else:
            if word:
                tokens.append('\u2581' + ''.join(word))
                word = []
    if word:
        tokens.append('\u2581' + ''.join(word))
    return tokens


def word_info(text, start_ms, end_ms):
    tokens = tokenize(text)
    if not tokens:
        return []
    span = max(0, end_ms - start_ms)
    out = []
    for i, token in enumerate(tokens):
        out.append({'start_time': start_ms + span * i // len(tokens),
                    'end_time': start_ms + span * (i + 1) // len(tokens), 'word': token})
    return out


class Sentence(object):
    __slots__ = ('text', 'score', 'start_ms', 'end_ms')

    def __init__(self, item):
        if isinstance(item, dict):
            self.text = str(item.get('text', ''))
            self.score = item.get('score')
            self.start_ms = item.get('start_ms')
            self.end_ms = item.get('end_ms')
        else:
            self.text = str(item)
            self.score = None
            self.start_ms = self.end_ms = None

    @property
    def timed(self):
        return self.start_ms is not None and self.end_ms is not None


class Recognizer(object):
    """ One recognition session. ``feed(bytes)`` and ``finish(cancel)`` return lists of messages:
    ('EVENT', name, timestamp), ('RESULT', [segment, ...]), ('ERROR', code, msg). """

    def __init__(self, mode, config, sentences, placeholder_lang='chinese', vad_threshold_dbfs=-40.0,
                 vad_min_speech_ms=60, interim_interval_ms=200, ms_per_char=250, default_score=0.9,
                 too_long='error'):
        self.mode = mode
        rate, codec, bps = AUDIO_FORMATS[config['audio_format']]
        self.codec = codec
        self.bytes_per_second = bps
        self.sample_width = 2 if codec == 'pcm' else 1
        self.frame_bytes = rate * FRAME_MS // 1000 * self.sample_width
        self.add_punc = config.get('add_punc', 'no') == 'yes'
        self.interim = config.get('interim_results', 'no') == 'yes'
        self.need_word_info = config.get('need_word_info', 'no') == 'yes'
        vad_head = int(config.get('vad_head', 10000))
        self.vad_head = vad_head or 60000
        self.vad_tail = int(config.get('vad_tail', 500))
        max_seconds = int(config.get('max_seconds', 30))
        self.max_speech_ms = (max_seconds or 60) * 1000
        self.sentences = sentences            # list of Sentence, or None for placeholders
        self.placeholder_lang = placeholder_lang
        self.threshold = vad_threshold_dbfs
        self.min_speech_frames = max(1, int(math.ceil(vad_min_speech_ms / float(FRAME_MS))))
        self.interim_interval_ms = interim_interval_ms
        self.ms_per_char = ms_per_char
        self.default_score = default_score
        self.too_long = too_long
        self.limit_ms = MODE_LIMIT_MS[mode]
        self.timed = bool(sentences) and all(s.timed for s in sentences)
        # audio clock
        self.header_pending = codec == 'pcm'
        self.header_buf = b''
        self.pending = b''                    # bytes short of a whole VAD frame
        self.audio_bytes = 0
        self.frames = 0
        self.stopped = False                  # audio after this point is ignored
        # VAD state
        self.in_speech = False
        self.voiced_run = 0
        self.run_start_ms = 0
        self.seg_start = 0
        self.last_voiced_end = 0
        self.silence_ms = 0
        self.lead_start = 0
        self.segment_index = 0                # segments finished so far
        self.first_onset = None
        self.last_voiced_any = None
        self.last_interim_ms = 0
        self.voice_started = False            # sentence mode: VOICE_START sent
        self.frame_out_start = 0
        self.on_audio = None                  # hook: called with header-stripped audio (script matching)

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def audio_ms(self):
        return self.audio_bytes * 1000 // self.bytes_per_second

    def text_for(self, index):
        if self.sentences is None:
            n = index + 1
            if self.placeholder_lang == 'chinese':
                return u'模拟识别结果%d' % n + (u'。' if self.add_punc else ''), None
            return 'simulated result %d' % n + ('.' if self.add_punc else ''), None
        if index >= len(self.sentences):
            return '', None
        s = self.sentences[index]
        return (s.text if self.add_punc else strip_punctuation(s.text)), s.score

    def joined_text(self):
        if self.sentences is None:
            return self.text_for(0)
        texts = [self.text_for(i)[0] for i in range(len(self.sentences))]
        cjk = any(is_cjk(ch) for t in texts for ch in t)
        scores = [s.score for s in self.sentences if s.score is not None]
        return ('' if cjk else ' ').join(t for t in texts if t), (scores[0] if scores else None)

    def segment(self, text, score, start, end, final):
        result = {'text': text, 'score': (score if score is not None else self.default_score) if final else 0.0}
        if self.need_word_info:
            result['word_info'] = word_info(text, start, end)
        return {'start_time': start, 'end_time': end, 'is_final': final, 'result': result}

    def interim_segment(self, text, start, now):
        elapsed = max(0, now - start)
        expected = max(1, len(text) * self.ms_per_char)
        count = min(len(text), int(math.ceil(len(text) * elapsed / float(expected))))
        return self.segment(text[:count], None, start, now, False)

    # -- audio ---------------------------------------------------------------------------------------
    def _strip_header(self, data):
        """ Buffers until a leading RIFF/WAVE header is resolved; returns audio bytes. """
        buf = self.header_buf + data
        if len(buf) < 12:
            if b'RIFF'.startswith(buf[:4]):
                self.header_buf = buf
                return b''
            self.header_pending = False
            self.header_buf = b''
            return buf
        if buf[:4] != b'RIFF' or buf[8:12] != b'WAVE':
            self.header_pending = False
            self.header_buf = b''
            return buf
        pos = 12
        while True:
            if len(buf) < pos + 8:
                self.header_buf = buf
                return b''
            chunk_id = buf[pos:pos + 4]
            size = struct.unpack('<I', buf[pos + 4:pos + 8])[0]
            if chunk_id == b'data':
                self.header_pending = False
                self.header_buf = b''
                return buf[pos + 8:]
            pos += 8 + size + (size & 1)

    def feed(self, data):
        out = []
        if self.stopped:
            return out
        if self.header_pending:
            data = self._strip_header(data)
        if not data:
            return out
        if self.on_audio is not None:
            self.on_audio(data)
        remaining_ms = self.limit_ms - self.audio_ms
        room = remaining_ms * self.bytes_per_second // 1000
        over = len(data) > room
        if over:
            data = data[:max(0, room)]
        self.audio_bytes += len(data)
        buf = self.pending + data
        usable = len(buf) - len(buf) % self.frame_bytes
        self.pending = buf[usable:]
        for off in range(0, usable, self.frame_bytes):
            if self.stopped:
                break
            self._frame(buf[off:off + self.frame_bytes], out)
        if self.interim and not self.stopped:
            self._maybe_interim(out)
        if over and not self.stopped:
            self._too_long(out)
        return out

    def _too_long(self, out):
        if self.mode == MODE_SASR and self.too_long != 'error' or self.too_long == 'event':
            out.append(('EVENT', 'EXCEEDED_AUDIO', self.limit_ms))
            self.stopped = 'exceeded'
        else:
            out.append(('ERROR', 'SIS.0309', 'audio duration exceeds the maximum'))
            self.stopped = 'error'

    def _level(self, frame):
        if self.codec == 'pcm':
            return frame_dbfs_pcm16(frame)
        return frame_dbfs_g711(frame, _ULAW_SQ if self.codec == 'ulaw' else _ALAW_SQ)

    def _frame(self, frame, out):
        self.frame_out_start = len(out)
        start = self.frames * FRAME_MS
        self.frames += 1
        end = start + FRAME_MS
        if self.timed:
            self._timed_frame(end, out)
            return
        voiced = self._level(frame) >= self.threshold
        if voiced:
            self.last_voiced_any = end
        if not self.in_speech:
            if voiced:
                if self.voiced_run == 0:
                    self.run_start_ms = start
                self.voiced_run += 1
                if self.voiced_run >= self.min_speech_frames:
                    self._onset(self.run_start_ms, end, out)
                    return
            else:
                self.voiced_run = 0
            if self.mode == MODE_SENTENCE and not self.in_speech and end - self.lead_start >= self.vad_head:
                out.append(('EVENT', 'EXCEEDED_SILENCE', self.vad_head))
                self.stopped = 'silence'
            return
        if voiced:
            self.last_voiced_end = end
            self.silence_ms = 0
        else:
            self.silence_ms += FRAME_MS
        if self.mode in (MODE_SHORT, MODE_SASR):
            return
        if self.silence_ms >= self.vad_tail and self.silence_ms > 0:
            self._segment_end(self.last_voiced_end, out)
        elif end - self.seg_start >= self.max_speech_ms:
            self._segment_end(end, out)
            if voiced and self.mode == MODE_CONTINUE:
                self.in_speech = True
                self.seg_start = end
                self.last_voiced_end = end
                self.last_interim_ms = end

    def _onset(self, onset, now, out):
        self.in_speech = True
        self.voiced_run = 0
        self.silence_ms = 0
        self.seg_start = onset
        self.last_voiced_end = now
        self.last_interim_ms = onset
        if self.first_onset is None:
            self.first_onset = onset
        if self.mode == MODE_SENTENCE and not self.voice_started:
            self.voice_started = True
            out.append(('EVENT', 'VOICE_START', onset))

    def _segment_end(self, end, out):
        self.in_speech = False
        self.voiced_run = 0
        self.silence_ms = 0
        self.lead_start = end
        text, score = self.text_for(self.segment_index)
        self.segment_index += 1
        if self.mode == MODE_SENTENCE:
            if text:
                self._final(out, [self.segment(text, score, self.seg_start, end, True)])
                out.append(('EVENT', 'VOICE_END', end))
            else:
                out.append(('EVENT', 'EXCEEDED_SILENCE', end))
            self.stopped = 'voice_end'
        elif text:
            self._final(out, [self.segment(text, score, self.seg_start, end, True)])

    def _final(self, out, segments):
        # All segments finalized while processing one frame go in one RESULT.
        if len(out) > self.frame_out_start and out[-1][0] == 'RESULT' and all(s['is_final'] for s in out[-1][1]):
            out[-1][1].extend(segments)
        else:
            out.append(('RESULT', segments))

    def _timed_frame(self, now, out):
        if self.mode in (MODE_SHORT, MODE_SASR):
            return
        while self.segment_index < len(self.sentences):
            s = self.sentences[self.segment_index]
            if not self.in_speech and now >= s.start_ms:
                self._onset(s.start_ms, now, out)
            if self.in_speech and now >= s.end_ms:
                self.seg_start = s.start_ms
                self._segment_end(s.end_ms, out)
                if self.stopped:
                    return
                continue
            break

    def _maybe_interim(self, out):
        now = self.audio_ms
        if self.mode in (MODE_SHORT, MODE_SASR):
            if now - self.last_interim_ms >= self.interim_interval_ms and self.first_onset is not None:
                self.last_interim_ms = now
                text, _ = self.joined_text()
                if text:
                    out.append(('RESULT', [self.interim_segment(text, self.first_onset, now)]))
            return
        if self.in_speech and now - self.last_interim_ms >= self.interim_interval_ms:
            self.last_interim_ms = now
            text, _ = self.text_for(self.segment_index)
            if text:
                out.append(('RESULT', [self.interim_segment(text, self.seg_start, now)]))

    def finish(self):
        """ END received: flush the pending segment. """
        out = []
        if self.stopped in ('error',):
            return out
        if self.mode in (MODE_SHORT, MODE_SASR):
            if self.audio_bytes == 0:
                return out
            text, score = self.joined_text()
            if self.timed:
                start, end = self.sentences[0].start_ms, self.sentences[-1].end_ms
            else:
                start = self.first_onset if self.first_onset is not None else 0
                end = self.last_voiced_any if self.last_voiced_any is not None else self.audio_ms
            out.append(('RESULT', [self.segment(text, score, start, end, True)]))
            return out
        if self.stopped:
            return out
        if self.in_speech:
            text, score = self.text_for(self.segment_index)
            self.segment_index += 1
            end = self.last_voiced_end
            if self.timed:
                end = min(self.audio_ms, self.sentences[self.segment_index - 1].end_ms)
            if text:
                out.append(('RESULT', [self.segment(text, score, self.seg_start, end, True)]))
            self.in_speech = False
        return out
