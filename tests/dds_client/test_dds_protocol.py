"""Pure protocol tests: wire JSON of every topic (reference 4.6), URLs and signatures (4.3),
classification, correlation and completion (3.5-3.6). No network."""

import json

import pytest

from dds_client import (AND_HOME_URL, ApiKeyAuth, DeviceAuth, build_url, device_signature,
                        dui_url, registration_signature)
from dds_client import protocol as P
from dds_client.errors import ProtocolError, ServerError
from dds_client.results import AsrResult, DialogResult, NluResult, compact_text
from dds_client.urls import redact_url

RID = "0123456789abcdef0123456789abcdef"
SID = "fedcba9876543210fedcba9876543210"


def wire(message):
    return P.dumps(message)


def test_text_request_wire():
    assert wire(P.text_request(RID, "苏州的天气")) == (
        '{"topic": "nlu.input.text", "recordId": "0123456789abcdef0123456789abcdef", '
        '"refText": "\\u82cf\\u5dde\\u7684\\u5929\\u6c14"}')
    assert wire(P.text_request(RID, "苏州", ai_type="dm", session_id=SID)) == (
        '{"aiType": "dm", "topic": "nlu.input.text", "recordId": '
        '"0123456789abcdef0123456789abcdef", "sessionId": "fedcba9876543210fedcba9876543210", '
        '"refText": "\\u82cf\\u5dde"}')


def test_text_request_optional_keys_order_and_extra():
    m = P.text_request(RID, "x", nlu_params={"enableNBest": True},
                       context={"skill": {"task": "天气"}}, extra={"b": 1, "a": 2})
    assert list(m) == ["topic", "recordId", "refText", "nluParams", "context", "b", "a"]
    with pytest.raises(ValueError, match="extra must not override 'refText'"):
        P.text_request(RID, "x", extra={"refText": "y"})
    with pytest.raises(ValueError, match="extra must not override 'sessionId'"):
        P.text_request(RID, "x", extra={"sessionId": "y"})


def test_audio_request_wire():
    asr = P.build_asr_params({"real_back": True, "enable_vad": True}, None)
    assert wire(P.audio_request(RID, "wav", 16000, 1, 2, asr_params=asr)) == (
        '{"topic": "recorder.stream.start", "recordId": "0123456789abcdef0123456789abcdef", '
        '"audio": {"audioType": "wav", "sampleRate": 16000, "channel": 1, "sampleBytes": 2}, '
        '"asrParams": {"realBack": true, "enableVAD": true}}')


def test_asr_params_order_and_passthrough():
    hints = [{"type": "vocab", "name": "行政区", "data": ["黄浦区"]}]
    asr = P.build_asr_params({
        "vad_pause_time": 800, "phrase_hints": hints, "enable_number_convert": True,
        "enable_confidence": False, "enable_tone": True, "enable_punctuation": True,
        "enable_vad": False, "real_back": True}, {"enableAlignment": True, "res": "aicar"})
    assert list(asr) == ["realBack", "enableVAD", "enablePunctuation", "enableTone",
                         "enableConfidence", "enableNumberConvert", "phraseHints",
                         "vadPauseTime", "enableAlignment", "res"]
    assert P.build_asr_params({}, None) is None
    with pytest.raises(ValueError, match="asr option 'enableVAD' given twice"):
        P.build_asr_params({"enable_vad": True}, {"enableVAD": False})
    with pytest.raises(TypeError):
        P.build_asr_params({"real_back": 1}, None)
    m = P.audio_request(RID, "mp3", 16000, 1, 2, ai_type="asr", session_id=SID,
                        wakeup_word="你好小目", asr_params=asr, nlu_params={"a": 1},
                        context={"c": 1})
    assert list(m) == ["aiType", "topic", "recordId", "sessionId", "audio", "wakeupWord",
                       "asrParams", "nluParams", "context"]


@pytest.mark.parametrize("args, message", [
    (("pcm", 16000, 1, 2), "audio_type must be one of ogg, wav, mp3, flv, amr, opus, ogg_opus"),
    (("wav", 44100, 1, 2),
     r"sample_rate 44100 is not supported for audio_type 'wav' \(allowed: 8000, 16000\)"),
    (("amr", 16000, 1, 2), "sample_rate 16000 is not supported for audio_type 'amr'"),
    (("wav", 16000, 0, 2), "channel must be a positive int"),
    (("wav", 16000, True, 2), "channel must be a positive int"),
    (("wav", 16000, 1, 0), "sample_bytes must be a positive int"),
])
def test_audio_format_checks(args, message):
    with pytest.raises(ValueError, match=message):
        P.check_audio_format(*args)


def test_audio_format_accepts_documented_rates():
    for audio_type, rate in (("ogg", 8000), ("mp3", 44100), ("amr", 8000), ("opus", 48000),
                             ("ogg_opus", 24000), ("flv", 16000)):
        P.check_audio_format(audio_type, rate, 1, 2)


def test_intent_request_wire():
    m = P.intent_request(RID, skill_id="2018040200000004", task="天气", intent="查询天气",
                         slots={"国内城市": "苏州"})
    assert wire(m) == (
        '{"topic": "dm.input.intent", "recordId": "0123456789abcdef0123456789abcdef", '
        '"skillId": "2018040200000004", "intent": "\\u67e5\\u8be2\\u5929\\u6c14", '
        '"task": "\\u5929\\u6c14", "slots": {"\\u56fd\\u5185\\u57ce\\u5e02": '
        '"\\u82cf\\u5dde"}}')
    m = P.intent_request(RID, skill="天气", skill_id="x", task="t", intent="i",
                         slots=[{"name": "a", "value": "b"}], input="查一下", ai_type="dm",
                         session_id=SID)
    assert list(m) == ["aiType", "topic", "recordId", "sessionId", "skillId", "skill", "intent",
                       "task", "slots", "input"]


def test_data_request_wire():
    widget = {"duiWidget": "list", "extra": {"contacts": [{"name": "张三",
                                                            "phone": "13800000000"}]}}
    m = P.data_request(RID, widget, native_api="sys.query.contacts", session_id=SID)
    assert wire(m) == (
        '{"topic": "dm.input.data", "recordId": "0123456789abcdef0123456789abcdef", '
        '"sessionId": "fedcba9876543210fedcba9876543210", "nativeApi": "sys.query.contacts", '
        '"duiWidget": "list", "extra": {"contacts": [{"name": "\\u5f20\\u4e09", '
        '"phone": "13800000000"}]}}')
    with pytest.raises(ValueError, match="widget must be a dict with a 'duiWidget' key"):
        P.check_widget({"extra": {}}, True)
    with pytest.raises(ValueError, match="widget must not contain 'recordId'"):
        P.check_widget({"duiWidget": "text", "recordId": "x"}, True)


def test_settings_request_wire():
    value = {"longitude": "80", "latitude": "120", "address": "china", "city": "suzhou",
             "time": "2019-04-01T09:00:00+0800"}
    assert wire(P.settings_request(RID, P.normalize_settings({"location": value}))) == (
        '{"topic": "system.settings", "recordId": "0123456789abcdef0123456789abcdef", '
        '"option": "set", "settings": [{"key": "location", "value": {"longitude": "80", '
        '"latitude": "120", "address": "china", "city": "suzhou", '
        '"time": "2019-04-01T09:00:00+0800"}}]}')
    assert wire(P.settings_request(RID, [{"key": "city", "value": "苏州"}], "set",
                                   "2018040200000004")) == (
        '{"topic": "skill.settings", "recordId": "0123456789abcdef0123456789abcdef", '
        '"skillId": "2018040200000004", "option": "set", "settings": [{"key": "city", '
        '"value": "\\u82cf\\u5dde"}]}')
    with pytest.raises(ValueError, match="settings must not be empty"):
        P.normalize_settings({})
    with pytest.raises(ValueError, match="each setting needs a string 'key'"):
        P.normalize_settings([{"value": 1}])
    with pytest.raises(ValueError, match="option must be 'set' or 'delete'"):
        P.check_option("add")


def test_context_sync_wire():
    m = P.context_sync_request("2019042500000544", session_id=SID, task="音乐",
                               dispatch_event={"playerState": "on"})
    assert wire(m) == (
        '{"topic": "dm.context.sync", "sessionId": "fedcba9876543210fedcba9876543210", '
        '"skillId": "2019042500000544", "async": {"task": "\\u97f3\\u4e50", '
        '"dispatchEvent": {"playerState": "on"}}}')


# ------------------------------------------------------------------ auth and URLs (4.3)

VECTORS = [
    ("0123456789abcdef0123456789abcdef", "test-device-001", "0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
     "100200300", "1700000000000", "9c056580a395499432cfb00a0421457c73c54234"),
    ("0123456789abcdef0123456789abcdef", "test-device-001", "0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
     "100200300", "1700000000", "d87f8908803ee2d9c09dcf97e7f2c37db9b78d02"),
    ("s3cr3t-device-key", "speaker-kitchen", "00000000000000000000000000000000", "100200300",
     "1700000000123", "3ecd4e2a9f38bfccd096f35a3a8a08aaf2269b9d"),
    ("0123456789abcdef0123456789abcdef", "设备01", "0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
     "100200300", "1700000000000", "0d4719bbe5bac4583d8f482f3e7d5459de830540"),
]


@pytest.mark.parametrize("secret, name, nonce, pid, ts, sig", VECTORS)
def test_device_signature_vectors(secret, name, nonce, pid, ts, sig):
    assert device_signature(name, nonce, pid, ts, secret) == sig


def test_registration_signature_vector():
    assert registration_signature("pk-test-0001", "plain", "abcdEFGH", "100200300",
                                  "1700000000000", "ps-secret-0001") == \
        "d6008e662831b115c94a035c77ff1adb3fb5e2ed"


class FixedDeviceAuth(DeviceAuth):
    def query(self, product_id):
        nonce, ts = "0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c", "1700000000000"
        return [("deviceName", self.device_name), ("nonce", nonce), ("timestamp", ts),
                ("sig", device_signature(self.device_name, nonce, product_id, ts,
                                         self._device_secret))]


def test_device_url_vector_1_and_encoding():
    auth = FixedDeviceAuth("test-device-001", "0123456789abcdef0123456789abcdef")
    assert build_url(AND_HOME_URL, "100200300", auth) == (
        "ws://botai-dsg.and-home.cn:4443/dsg/v1/prod?productId=100200300&deviceName="
        "test-device-001&nonce=0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c&timestamp=1700000000000&sig="
        "9c056580a395499432cfb00a0421457c73c54234")
    url = build_url(AND_HOME_URL, "100200300",
                    FixedDeviceAuth("设备01", "0123456789abcdef0123456789abcdef"))
    assert "deviceName=%E8%AE%BE%E5%A4%8701&" in url
    assert url.endswith("sig=0d4719bbe5bac4583d8f482f3e7d5459de830540")


def test_device_auth_fresh_each_call():
    auth = DeviceAuth("d", "s")
    a, b = dict(auth.query("1")), dict(auth.query("1"))
    assert a["nonce"] != b["nonce"] and len(a["nonce"]) == 32 and len(a["timestamp"]) == 13
    assert a["sig"] == device_signature("d", a["nonce"], "1", a["timestamp"], "s")
    assert len(dict(DeviceAuth("d", "s", timestamp_unit="s").query("1"))["timestamp"]) == 10
    assert "s'" not in repr(auth) and "***" in repr(auth)


def test_build_url_order_and_duplicates():
    url = build_url(dui_url("test", "v3"), "1", ApiKeyAuth("k y"), service_type="websocket",
                    full_duplex=True, product_version="2", user_id="u",
                    extra_query=[("deviceId", "d1")])
    assert url == ("wss://dds.dui.ai/dds/v3/test?serviceType=websocket&productId=1&apikey=k%20y"
                   "&communicationType=fullDuplex&productVersion=2&userId=u&deviceId=d1")
    assert build_url("ws://h/p?x=1", "1", ApiKeyAuth("k")) == "ws://h/p?x=1&productId=1&apikey=k"
    with pytest.raises(ValueError, match="productId given both in url and as an argument"):
        build_url("ws://h/p?productId=1", "1", ApiKeyAuth("k"))
    with pytest.raises(ValueError, match="url must start with ws:// or wss://"):
        build_url("http://h/p", "1")
    assert dui_url() == "wss://dds.dui.ai/dds/v2/prod"
    assert dui_url("prod", "v1", "dds-hb.dui.ai", secure=False) == "ws://dds-hb.dui.ai/dds/v1/prod"


def test_redact_url():
    assert redact_url("ws://h/p?productId=1&apikey=SECRET&x=2") == "ws://h/p?productId=1&apikey=***&x=2"
    assert redact_url("ws://h/p?apiKey=S&sig=abc") == "ws://h/p?apiKey=***&sig=***"


# ------------------------------------------------------------------ server messages

def test_parse_message_errors():
    assert P.parse_message('{"a": 1}') == {"a": 1}
    with pytest.raises(ProtocolError, match="malformed message from server: invalid JSON: "
                                            r'\{"dm": \{'):
        P.parse_message('{"dm": {')
    with pytest.raises(ProtocolError, match="not a JSON object"):
        P.parse_message("[1]")
    with pytest.raises(ProtocolError):
        P.parse_message(b"\xff\xfe")


def test_classification_and_results():
    partial = P.Classified({"recordId": "r", "eof": 0, "var": "今天"})
    assert partial.partial and not partial.final
    final = P.Classified({"eof": 1, "text": "今天 天气", "pinyin": "jin tian tian qi"})
    assert final.final and not final.partial
    assert P.Classified({"eof": True, "text": ""}).final
    assert P.Classified({"eof": "1", "text": ""}).final
    piece = P.Classified({"eof": 0, "text": "一段"})
    assert piece.partial and piece.piece
    both = P.Classified({"eof": 1, "text": "a", "dm": {}, "nlu": {}})
    assert both.final and both.dialog and both.nlu
    assert P.Classified({"topic": "dm.output"}).dialog
    err = P.Classified({"errId": "1", "errMsg": "x"}).error
    assert isinstance(err, ServerError) and str(err) == "server error 1: x"


def test_completion_rules():
    c = P.Classified
    assert P.completion("nlu.input.text", None, c({"eof": 1, "text": "x"})) is None
    assert P.completion("nlu.input.text", None, c({"dm": {}})) == "value"
    assert P.completion("recorder.stream.start", "asr", c({"eof": 1, "text": ""})) == "value"
    assert P.completion("recorder.stream.start", "asr", c({"eof": 0, "var": "x"})) is None
    assert P.completion("recorder.stream.start", "nlu", c({"nlu": {}})) == "value"
    assert P.completion("recorder.stream.start", "nlu", c({"eof": 1, "text": "a"})) is None
    assert P.completion("nlu.input.text", "nlu", c({"topic": "nlu.output"})) == "value"
    assert P.completion("nlu.input.text", "dm", c({"error": {"errId": "1"}})) == "error"
    assert P.completion("nlu.input.text", "dm",
                        c({"dm": {}, "error": {"errId": "010400"}})) == "value"
    assert P.completion("system.settings", None, c({"recordId": "r"})) == "value"
    assert P.completion("system.settings", None, c({"error": {"errId": "1"}})) == "error"


def test_correlator_prefix_longest_and_single_pending():
    corr = P.Correlator()
    corr.add("abc", "short")
    corr.add("abcdef", "long")
    assert corr.match("abcdef:suffix") == ("long", False)
    assert corr.match("abc:x") == ("short", False)
    assert corr.match("zzz") == (None, False)
    assert corr.match(None) == (None, False)      # two pending: belongs to none
    corr.remove("abc")
    assert corr.match("") == ("long", False)      # one pending: belongs to it
    corr.cancel("abcdef")
    assert corr.match("abcdef:1") == (None, True)
    with pytest.raises(ValueError, match="already in use"):
        corr.add("x", 1) or corr.add("x", 2)


def test_session_update_rule():
    assert P.session_update({"sessionId": "s", "dm": {"shouldEndSession": True}}) == ("end", None)
    assert P.session_update({"sessionId": "s", "dm": {"shouldEndSession": False}}) == ("set", "s")
    assert P.session_update({"dm": {}}) is None


def test_result_types():
    raw = {"recordId": "r", "sessionId": "s", "skillId": "k", "skill": "天气",
           "speakUrl": "http://x", "nlu": {"input": "苏州的天气", "semantics": {"request": {
               "task": "天气", "slots": [{"name": "intent", "value": "查询天气"},
                                         {"name": "国内城市", "value": "苏州"},
                                         {"name": "国内城市", "value": "北京"}]}}},
           "dm": {"input": "苏州的天气", "nlg": "晴", "speak": {"text": "晴天", "type": "text"},
                  "widget": {"duiWidget": "text"}, "intentId": "0000",
                  "command": {"api": "discardResponse", "param": {"type": "asrDiscard"}},
                  "dataFrom": "native", "api": "sys.query.contacts", "param": {"name": "张三"},
                  "shouldEndSession": False},
           "error": {"errId": "010400", "errMsg": "It's time to do qa."}}
    d = DialogResult(raw)
    assert (d.nlg, d.speak_text, d.widget_type, d.should_end_session) == ("晴", "晴天", "text",
                                                                          False)
    assert d.discarded and d.discard_type == "asrDiscard" and d.intent_id == "0000"
    assert d.native_api == "sys.query.contacts" and d.native_param == {"name": "张三"}
    assert d.nlu.intent == "查询天气" and d.nlu.slots == {"国内城市": "苏州"}
    assert d.error.err_id == "010400" and d.raw is raw and d.speak_url == "http://x"
    with pytest.raises(AttributeError):
        d.nlg = "x"
    a = AsrResult({"eof": 1, "text": "今天 天气 怎么样", "conf": 0.9})
    assert a.is_final and a.text_compact == "今天天气怎么样" and a.confidence == 0.9
    assert AsrResult({"eof": 0, "var": "今天"}).text == "今天"
    assert compact_text("打开 wifi 设置") == "打开wifi设置"
    assert compact_text("hello  world") == "hello world"
    n = NluResult({"nlu": {}})
    assert n.slots == {} and n.intent is None


def test_dumps_is_json_dumps_default():
    m = {"a": "中", "b": [1, True, None]}
    assert P.dumps(m) == json.dumps(m) == '{"a": "\\u4e2d", "b": [1, true, null]}'
