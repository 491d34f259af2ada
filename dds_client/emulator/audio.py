"""Emulator audio pipeline: WAV header parsing, energy VAD on PCM16, scripted transcripts released
as audio arrives, tokenisation, pinyin and numeral conversion (reference 5.5). Pure: no I/O."""

import hashlib
import re
import struct
import warnings
from array import array

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
except ImportError:  # Python 3.13+
    _audioop = None

PUNCTUATION = "，。？！、；：,.?!;:…～~“”\"'‘’（）()《》"
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# One syllable (with tone digit) per character: the default script, its prompts, the default
# transcript and common characters.
_PINYIN_TABLE = """
今jin1 天tian1 气qi4 怎zen3 么me5 样yang4 苏su1 州zhou1 的de5 北bei3 京jing1 上shang4 海hai3
广guang3 深shen1 圳zhen4 杭hang2 南nan2 成cheng2 都du1 武wu3 汉han4 西xi1 安an1 津jin1 重chong2
庆qing4 温wen1 下xia4 雨yu3 冷leng3 不bu4 热re4 请qing3 问wen4 你ni3 要yao4 查cha2 询xun2 哪na3
个ge4 城cheng2 市shi4 全quan2 多duo1 云yun2 度du4 到dao4 播bo1 放fang4 音yin1 乐yue4 首shou3 歌ge1
听ting1 来lai2 点dian3 周zhou1 杰jie2 伦lun2 王wang2 菲fei1 邓deng4 紫zi3 棋qi2 好hao3 为wei4 一yi1
二er4 三san1 四si4 五wu3 六liu4 七qi1 八ba1 九jiu3 十shi2 零ling2 百bai3 千qian1 万wan4 两liang3
幺yao1 未wei4 知zhi1 手shou3 换huan4 暂zan4 停ting2 止zhi3 电dian4 话hua4 打da3 呼hu1 叫jiao4
拨bo1 给gei3 谁shei2 张zhang1 李li3 正zheng4 在zai4 没mei2 有you3 找zhao3 号hao4 码ma3 您nin2
我wo3 是shi4 语yu3 助zhu4 闲xian2 聊liao2 还hai2 太tai4 明ming2 白bai2 意yi4 思si1 退tui4
出chu1 取qu3 消xiao1 用yong4 了le5 抱bao4 歉qian4 没mei2 懂dong3 次ci4 再zai4 见jian4 测ce4
试shi4 姚yao2 谁shui2 暂zan4 支zhi1 持chi2 该gai1 图tu2 已yi3 收shou1 据ju4 作zuo4 超chao1 时shi2
候hou5 联lian2 系xi4 人ren2 问wen4 候hou4 早zao3 晚wan3 明ming2 后hou4 周zhou1 末mo4 现xian4
分fen1 钟zhong1 点dian3 开kai1 关guan1 灯deng1 空kong1 调tiao2 视shi4 机ji1 闹nao4 提ti2 醒xing3
帮bang1 看kan4 说shuo1 想xiang3 去qu4 和he2 也ye3 很hen3 这zhe4 那na4 就jiu4 都dou1 会hui4
能neng2 可ke3 以yi3 吗ma5 呢ne5 吧ba5 啊a5 大da4 小xiao3 中zhong1 国guo2 家jia1 年nian2 月yue4
日ri4 号hao4 星xing1 期qi1 今jin1 风feng1 晴qing2 阴yin1 雪xue3 高gao1 低di1 最zui4 行xing2 政zheng4
什shen2 内nei4 区qu1 黄huang2 浦pu3 目mu4 设she4 备bei4 置zhi4 量liang4 声sheng1 曲qu3 单dan1 随sui2 机ji1
"""
PINYIN = {}
for _item in _PINYIN_TABLE.split():
    PINYIN.setdefault(_item[0], _item[1:])

_DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
           "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUMERAL_RUN = re.compile("[%s%s]+" % ("".join(_DIGITS), "".join(_UNITS)))


def _numeral_value(run):
    if not any(ch in _UNITS for ch in run):
        return "".join(str(_DIGITS[ch]) for ch in run)   # digit-by-digit reading
    total, section, digit = 0, 0, None
    for ch in run:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch == "万":
            total += (section + (digit or 0)) * 10000
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
    return str(total + section + (digit or 0))


def convert_numbers(text):
    """Chinese numerals -> Arabic digits (二十五 -> 25, 一百零八 -> 108, 幺二三 -> 123)."""
    def repl(m):
        run = m.group(0)
        if len(run) < 2 and run not in _UNITS:
            return run
        return _numeral_value(run)
    return _NUMERAL_RUN.sub(repl, text)


def tokenize(text):
    """Tokens as (start, end) spans: the caller's words, or one per CJK char / ASCII run;
    punctuation attaches to the preceding token."""
    spans = []
    if re.search(r"\s", text.strip()):
        for m in re.finditer(r"\S+", text):
            spans.append([m.start(), m.end()])
        return [tuple(s) for s in spans]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in PUNCTUATION:
            if spans:
                spans[-1][1] = i + 1
            else:
                spans.append([i, i + 1])
            i += 1
            continue
        if ch.isascii() and ch.isalnum():
            j = i
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
            spans.append([i, j])
            i = j
            continue
        spans.append([i, i + 1])
        i += 1
    return [tuple(s) for s in spans]


def strip_punctuation(text):
    return "".join(ch for ch in text if ch not in PUNCTUATION)


def pinyin_of(text, tone=False):
    """One syllable per CJK character, other tokens lowercased; punctuation excluded."""
    out = []
    for word in re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text):
        if word in PUNCTUATION:
            continue
        if _CJK_RE.match(word):
            syllable = PINYIN.get(word)
            if syllable is None:
                out.append(word)
            else:
                out.append(syllable if tone else syllable.rstrip("012345"))
        else:
            out.append(word.lower())
    return " ".join(out)


class Transcript:
    """A scripted transcript formatted by the request's asrParams."""

    def __init__(self, text, asr_params):
        flags = asr_params or {}
        self.punctuation = flags.get("enablePunctuation") is True
        self.tone = flags.get("enableTone") is True
        self.confidence = flags.get("enableConfidence") is True
        self.alignment = flags.get("enableAlignment") is True
        if flags.get("enableNumberConvert") is True:
            text = convert_numbers(text)
        self.source = text
        spans = tokenize(text)
        if not self.punctuation:
            spans = [s for s in spans if strip_punctuation(text[s[0]:s[1]])]
        self.spans = spans
        self.tokens = [self._clean(text[a:b]) for a, b in spans]

    def _clean(self, piece):
        return piece if self.punctuation else strip_punctuation(piece)

    def __len__(self):
        return len(self.spans)

    def var(self, k):
        """The transcript's own prefix up to the end of the k-th token."""
        return self._clean(self.source[:self.spans[k - 1][1]]).strip()

    def final_fields(self, spoken=True):
        """(text, pinyin, extras) of the final."""
        if not spoken or not self.tokens:
            extras = {"conf": 0.95} if self.confidence else {}
            if self.alignment:
                extras["alignment"] = []
            return "", "", extras
        text = " ".join(self.tokens)
        extras = {}
        if self.confidence:
            extras["conf"] = 0.95
        if self.alignment:
            extras["alignment"] = [{"word": t, "pinyin": pinyin_of(t, self.tone)}
                                   for t in self.tokens]
        return text, pinyin_of(text, self.tone), extras


def parse_wav_header(buf):
    """(header_length, format_tag, channels, rate, bits) once the data chunk starts, None when
    more bytes are needed, or False when this is not a RIFF/WAVE stream."""
    if len(buf) < 12:
        return None if b"RIFF"[:len(buf)] == buf[:4] else False
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        return False
    pos, fmt = 12, None
    while True:
        if pos + 8 > len(buf):
            return None
        cid = buf[pos:pos + 4]
        size = struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        if cid == b"data":
            if fmt is None:
                return False
            return (pos + 8,) + fmt
        if pos + 8 + size > len(buf):
            return None
        if cid == b"fmt " and size >= 16:
            tag, channels, rate = struct.unpack("<HHI", buf[pos + 8:pos + 16])
            bits = struct.unpack("<H", buf[pos + 22:pos + 24])[0]
            fmt = (tag, channels, rate, bits)
        pos += 8 + size + (size & 1)


def rms16(fragment, channels):
    """RMS of the first channel of little-endian int16 PCM."""
    if _audioop is not None:
        if channels == 2:
            fragment = _audioop.tomono(fragment, 2, 1, 0)
        elif channels > 2:
            samples = array("h", fragment)[::channels]
            fragment = samples.tobytes()
        return _audioop.rms(fragment, 2)
    samples = array("h", fragment)
    if channels > 1:
        samples = samples[::channels]
    if not samples:
        return 0
    return int((sum(s * s for s in samples) / len(samples)) ** 0.5)


HEADER_LIMIT = 64 * 1024


class AudioTurn:
    """One audio request's pipeline. ``feed()`` returns events: ("partial", var), ("end",) for a
    VAD end of speech, ("error", errId, errMsg) for a limit."""

    def __init__(self, audio, asr_params, transcript=None, fingerprints=None, default="", *,
                 fingerprint_bytes=16384, vad_threshold=300, vad_min_speech_ms=60,
                 ms_per_token=250, max_audio_seconds=60.0, max_audio_bytes=8 * 1024 * 1024):
        self.asr_params = asr_params or {}
        self.real_back = self.asr_params.get("realBack") is True
        vad = self.asr_params.get("enableVAD")
        self.cloud_vad = vad is None or vad is True or self.asr_params.get("enableCloudVAD") is True
        pause = self.asr_params.get("vadPauseTime")
        self.pause_ms = pause if isinstance(pause, int) and not isinstance(pause, bool) \
            and pause > 0 else 500
        self.audio_type = audio.get("audioType")
        self.rate = audio.get("sampleRate")
        self.channels = audio.get("channel")
        self.fingerprint_bytes = fingerprint_bytes
        self.transcript = None
        self._fingerprints = fingerprints
        self._default = default
        self._fp = None
        self._fp_len = 0
        if transcript is not None:
            self.transcript = Transcript(transcript, asr_params)
        elif not fingerprints:
            self.transcript = Transcript(default, asr_params)   # decided at once, no waiting
        else:
            self._fp = hashlib.sha1()
        self.threshold = vad_threshold
        self.min_speech_ms = vad_min_speech_ms
        self.ms_per_token = ms_per_token
        self.max_ms = max_audio_seconds * 1000.0
        self.max_bytes = max_audio_bytes
        # "pcm" once the format is known, "opaque" for compressed types, None while a WAV
        # header may still be arriving.
        self.mode = None if self.audio_type == "wav" else "opaque"
        self._header = b""
        self._pending = b""
        self.window_bytes = 0
        self.audio_ms = 0.0
        self.onset_ms = None
        self._run_ms = 0.0          # current speech run (before the onset)
        self._run_start = 0.0
        self._silence_ms = 0.0
        self.ended = False          # VAD end of speech
        self._end_reported = False
        self.frames = 0
        self.bytes = 0
        self.released = 0           # partial tokens released

    # ---------------------------------------------------------- input

    def feed(self, data):
        events = []
        self.frames += 1
        self.bytes += len(data)
        if self._fp is not None:
            take = data[:self.fingerprint_bytes - self._fp_len]
            self._fp.update(take)
            self._fp_len += len(take)
            if self._fp_len >= self.fingerprint_bytes:
                self._resolve()
        if self.mode is None:
            self._header += data
            parsed = parse_wav_header(self._header)
            if parsed is None and len(self._header) <= HEADER_LIMIT:
                return events
            data = self._leave_header(parsed)
        if self.mode == "opaque":
            if self.bytes > self.max_bytes:
                return [("error", "090006", "audio larger than %d bytes" % self.max_bytes)]
            return self._release(self.frames // 4, events)
        return self._pcm(data, events)

    def _leave_header(self, parsed):
        buf, self._header = self._header, b""
        if parsed and parsed[1] == 1 and parsed[4] == 16:
            self._set_pcm(parsed[3], parsed[2])
            return buf[parsed[0]:]
        if parsed:
            self.mode = "opaque"     # a WAV that is not 16-bit PCM
            return b""
        self._set_pcm(self.rate, self.channels)   # no RIFF header: raw PCM
        return buf

    def _set_pcm(self, rate, channels):
        self.mode = "pcm"
        self.rate = rate if isinstance(rate, int) and rate > 0 else 16000
        self.channels = channels if isinstance(channels, int) and channels > 0 else 1
        self.window_bytes = self.rate * 20 // 1000 * 2 * self.channels

    def _pcm(self, data, events):
        if self._pending:
            data = self._pending + data
        wb = self.window_bytes
        usable = len(data) - len(data) % wb
        self._pending = data[usable:]
        threshold, channels = self.threshold, self.channels
        for pos in range(0, usable, wb):
            if self.ended:
                break
            speech = rms16(data[pos:pos + wb], channels) >= threshold
            start = self.audio_ms
            self.audio_ms += 20.0
            if self.onset_ms is None:
                if speech:
                    if self._run_ms == 0:
                        self._run_start = start
                    self._run_ms += 20.0
                    if self._run_ms >= self.min_speech_ms:
                        self.onset_ms = self._run_start
                else:
                    self._run_ms = 0.0
            elif speech:
                self._silence_ms = 0.0
            else:
                self._silence_ms += 20.0
                if self.cloud_vad and self._silence_ms >= self.pause_ms:
                    self.ended = True
        if self.audio_ms > self.max_ms:
            return [("error", "090006", "audio longer than %d s" % (self.max_ms / 1000))]
        self._release_pcm(events)
        if self.ended and not self._end_reported:
            self._end_reported = True
            events.append(("end",))
        return events

    def _release_pcm(self, events):
        if self.onset_ms is not None:
            self._release(int((self.audio_ms - self.onset_ms) // self.ms_per_token), events)
        return events

    def _release(self, k, events):
        if not self.real_back or self.transcript is None:
            return events
        k = min(len(self.transcript) - 1, k)
        if k >= 1 and k > self.released:
            var = self.transcript.var(k)
            if not self.released or var != self.transcript.var(self.released):
                events.append(("partial", var))
            self.released = k
        return events

    def _resolve(self):
        text = self._fingerprints.get(self._fp.hexdigest(), self._default)
        self._fp = None
        self.transcript = Transcript(text, self.asr_params)

    def finish(self):
        """End of audio: flush a pending header as raw PCM, resolve the transcript.
        Returns catch-up partial events (none after a VAD end)."""
        events = []
        if self.mode is None:
            data = self._leave_header(parse_wav_header(self._header) or False)
            if self.mode == "pcm":
                self._pcm(data, [])
        if self._fp is not None:
            self._resolve()
        if self.mode == "opaque":
            self._release(self.frames // 4, events)
        else:
            self._release_pcm(events)
        return events

    @property
    def spoken(self):
        if self.mode == "pcm":
            return self.onset_ms is not None
        return self.mode == "opaque" and self.bytes > 0

    def final_fields(self):
        if self.transcript is None:
            self.finish()
        return self.transcript.final_fields(self.spoken)


def fingerprint(data, nbytes=16384):
    return hashlib.sha1(bytes(data[:nbytes])).hexdigest()
