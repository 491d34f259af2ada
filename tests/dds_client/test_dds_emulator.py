"""The emulator on its own: standalone CLI, handshake checks, state machine errors, VAD and
transcripts, the dialogue engine, recording and the pytest plugin."""

import json
import logging
import math
import os
import signal
import subprocess
import sys
import urllib.request
from array import array

import pytest

import dds_client
from dds_client.emulator import DEFAULT_SCRIPT, Emulator, Script
from dds_client.emulator.audio import AudioTurn, Transcript, convert_numbers, pinyin_of
from dds_client.emulator.dialogue import DialogueEngine

SAMPLE_WAV = os.path.join(os.path.dirname(os.path.abspath(dds_client.__file__)), "samples",
                          "weather_16k.wav")


def tone(ms, amplitude=3000, rate=16000):
    n = rate * ms // 1000
    return array("h", (int(amplitude * math.sin(i / 3.0)) for i in range(n))).tobytes()


def silence(ms, rate=16000):
    return b"\x00\x00" * (rate * ms // 1000)


# ------------------------------------------------------------------ standalone CLI

def test_standalone_cli_serves_until_sigterm(tmp_path):
    record = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dds_client.emulator", "--port", "0", "--product-id", "42",
         "--apikey", "cli-key", "--device-name", "dev", "--device-secret", "sec",
         "--transcript", "苏州的天气", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/dsg/v1/prod")
        with dds_client.DDSClient("42", "cli-key", url=url) as c:
            r = c.send_audio_file(silence(100) + tone(800) + silence(600), audio_type="wav",
                                  real_back=True).result(timeout=10)
            assert r.asr.text == "苏 州 的 天 气" and r.nlg.startswith("苏州")
        with dds_client.DDSClient("42", device_name="dev", device_secret="sec", url=url) as c:
            assert c.send_text("你好").result(timeout=10).nlg
        with pytest.raises(dds_client.AuthError):
            dds_client.DDSClient("42", "emulator-apikey", url=url).connect(timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    events = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert events[0]["ev"] == "handshake" and "apikey=***" in events[0]["query"]
    assert {"recv", "send", "close"} <= {e["ev"] for e in events}


def test_standalone_cli_errors():
    busy = Emulator().start()
    try:
        proc = subprocess.run([sys.executable, "-m", "dds_client.emulator", "--port",
                               str(busy.port)], capture_output=True, text=True, timeout=20)
        assert proc.returncode == 1 and proc.stderr.startswith("error: cannot listen on")
    finally:
        busy.stop()
    proc = subprocess.run([sys.executable, "-m", "dds_client.emulator", "--fault", "nope"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2 and "unknown fault" in proc.stderr


# ------------------------------------------------------------------ raw protocol checks

def raw(emu, path=None, query=None):
    from websockets.sync.client import connect
    url = emu.url if path is None else emu.url.replace(emu.path, path)
    return connect(url + "?" + (query or "productId=%s&apikey=%s" % (emu.product_id,
                                                                     emu.apikey)))


def ask(ws, payload):
    ws.send(payload if isinstance(payload, (str, bytes)) else json.dumps(payload))
    return json.loads(ws.recv(timeout=5))


def test_handshake_checks(dds_emulator):
    from websockets.exceptions import InvalidStatus
    for path, query, status in (("/other/path", None, 404),
                                (None, "productId=100200300", 401),
                                (None, "productId=100200300&apikey=", 401),
                                (None, "apikey=emulator-apikey", 401)):
        with pytest.raises(InvalidStatus) as info:
            raw(dds_emulator, path, query)
        assert info.value.response.status_code == status
    with raw(dds_emulator, "/dds/v2/prod_p11",
             "serviceType=websocket&productId=100200300&apiKey=emulator-apikey"):
        pass
    with pytest.raises(InvalidStatus) as info:
        raw(dds_emulator, None, "productId=100200300&deviceName=emulator-device&nonce=n&"
                                "timestamp=12a&sig=x")
    assert b"invalid timestamp" in info.value.response.body


@pytest.mark.dds_emulator(max_connections=1)
def test_connection_limit(dds_emulator):
    from websockets.exceptions import InvalidStatus
    with raw(dds_emulator):
        with pytest.raises(InvalidStatus) as info:
            raw(dds_emulator)
        assert info.value.response.status_code == 503


def test_request_errors(dds_emulator):
    with raw(dds_emulator) as ws:
        assert ask(ws, "[1]")["error"]["errId"] == "090008"
        assert ask(ws, {"recordId": "a"}) == {"recordId": "a", "error": {
            "errId": "090001", "errMsg": "topic is required"}}
        assert ask(ws, {"topic": "x.y", "recordId": "a", "sessionId": "s"}) == {
            "recordId": "a", "sessionId": "s",
            "error": {"errId": "090001", "errMsg": "unsupported topic: x.y"}}
        assert ask(ws, {"topic": "nlu.input.text", "recordId": "a", "aiType": "xyz",
                        "refText": "x"})["error"]["errMsg"] == \
            "invalid parameter: unsupported aiType: xyz"
        assert ask(ws, {"topic": "nlu.input.text", "recordId": "a"})["error"] == {
            "errId": "090002", "errMsg": "invalid parameter: refText is required"}
        assert ask(ws, {"topic": "recorder.stream.start", "recordId": "a"})["error"] == {
            "errId": "090003", "errMsg": "unsupported audio format: audio is required"}
        assert ask(ws, {"topic": "recorder.stream.start", "recordId": "a", "audio": {
            "audioType": "wav", "sampleRate": 44100, "channel": 1, "sampleBytes": 2}})[
                "error"]["errId"] == "090003"
        ws.send(b"")                       # DRAINING -> IDLE
        assert ask(ws, b"\x01\x02")["error"]["errId"] == "090004"
        assert ask(ws, {"topic": "dm.input.intent", "recordId": "a", "skill": "x"})[
            "error"]["errMsg"] == "invalid parameter: intent is required"
        assert ask(ws, {"topic": "dm.input.intent", "recordId": "a", "intent": "x"})[
            "error"]["errMsg"] == "invalid parameter: skill or skillId is required"
        assert ask(ws, {"topic": "skill.settings", "recordId": "a", "settings": []})[
            "error"]["errMsg"] == "invalid parameter: skillId is required"
        start = {"topic": "recorder.stream.start", "recordId": "old", "audio": {
            "audioType": "mp3", "sampleRate": 16000, "channel": 1, "sampleBytes": 2}}
        ws.send(json.dumps(start))
        superseded = ask(ws, dict(start, recordId="new"))
        assert superseded["recordId"] == "old" and superseded["error"]["errId"] == "090005"


@pytest.mark.dds_emulator(audio_idle_timeout=0.2, max_audio_seconds=1.0)
def test_audio_limits(dds_emulator):
    start = {"topic": "recorder.stream.start", "recordId": "a", "audio": {
        "audioType": "wav", "sampleRate": 16000, "channel": 1, "sampleBytes": 2},
        "asrParams": {"enableVAD": False}}
    with raw(dds_emulator) as ws:
        ws.send(json.dumps(start))
        assert json.loads(ws.recv(timeout=5))["error"] == {
            "errId": "090007", "errMsg": "no audio received for 0 s"}
        ws.send(b"")
        ws.send(json.dumps(start))
        reply = ask(ws, tone(1200))
        assert reply["error"] == {"errId": "090006", "errMsg": "audio longer than 1 s"}


@pytest.mark.dds_emulator(idle_timeout=0.3)
def test_idle_timeout_closes(dds_emulator):
    from websockets.exceptions import ConnectionClosedOK
    with raw(dds_emulator) as ws:
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 1000 and info.value.rcvd.reason == "idle timeout"


def test_speak_url_serves_reply_audio(dds_emulator):
    with dds_client.DDSClient(**dds_emulator.client_kwargs()) as c:
        r = c.send_text("你好").result()
    with urllib.request.urlopen(r.speak_url, timeout=5) as resp:
        body = resp.read()
        assert resp.headers["Content-Type"] == "audio/wav" and body[:4] == b"RIFF"
    assert len(body) == 44 + len(r.nlg) * 3200
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(r.speak_url.replace(r.record_id, "unknown"), timeout=5)


def test_binary_reply_reaches_on_audio(dds_emulator, recorder):
    dds_emulator.set_fault("binary_reply", nbytes=640)
    with dds_client.DDSClient(**dds_emulator.client_kwargs(), on_audio=recorder("audio")) as c:
        c.send_text("你好").result()
        assert recorder.wait("audio")
    assert recorder.of("audio") == [(b"\x00" * 640,)]


def test_fingerprint_transcript_and_fifo(dds_emulator):
    dds_emulator.add_audio_transcript(SAMPLE_WAV, "放首歌")
    with dds_client.DDSClient(**dds_emulator.client_kwargs()) as c:
        assert c.send_audio_file(SAMPLE_WAV).result(timeout=10).asr.text == "放 首 歌"
        dds_emulator.push_transcripts("北京 天气")
        r = c.send_audio_file(SAMPLE_WAV, real_back=True).result(timeout=10)
        assert r.asr.text == "北京 天气" and r.nlg.startswith("北京")
        r = c.send_audio_file(silence(1500), audio_type="wav").result(timeout=10)
        assert r.asr.text == "" and r.discarded and r.discard_type == "asrDiscard"


def test_fault_validation():
    emu = Emulator()
    with pytest.raises(ValueError, match="unknown fault"):
        emu.set_fault("explode")
    with pytest.raises(ValueError, match="has no parameter"):
        emu.set_fault("delay", minutes=1)
    emu.set_fault("error", errId="010400", times="2")
    assert emu._take_fault("error")["errId"] == "010400"
    assert emu._take_fault("error") and emu._take_fault("error") is None


def test_import_does_not_import_websockets():
    code = ("import sys, dds_client, dds_client.emulator, dds_client.emulator.pytest_plugin;"
            "assert 'websockets' not in sys.modules;"
            "import logging; assert not logging.getLogger().handlers")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)


# ------------------------------------------------------------------ audio pipeline (pure)

def test_vad_onset_end_and_partials():
    turn = AudioTurn({"audioType": "wav", "sampleRate": 16000, "channel": 1},
                     {"realBack": True}, "苏州的天气")
    audio = silence(200) + tone(1100)
    events = []
    for pos in range(0, len(audio), 3200):         # 100 ms frames
        events += turn.feed(audio[pos:pos + 3200])
    assert [e[1] for e in events] == ["苏", "苏州", "苏州的", "苏州的天"]
    assert turn.onset_ms == 200 and not turn.ended
    assert turn.feed(silence(400)) == []
    assert turn.feed(silence(200)) == [("end",)]
    assert turn.final_fields() == ("苏 州 的 天 气", "su zhou de tian qi", {})


def test_vad_header_across_frames_and_8k():
    import io
    import wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone(700, rate=8000) + silence(700, rate=8000))
    data = buf.getvalue()
    turn = AudioTurn({"audioType": "wav", "sampleRate": 16000, "channel": 1}, {}, "你好")
    events = []
    for pos in range(0, len(data), 400):
        events += turn.feed(data[pos:pos + 400])
    assert turn.rate == 8000 and turn.onset_ms == 0 and ("end",) in events
    quiet = AudioTurn({"audioType": "wav", "sampleRate": 16000, "channel": 1}, {}, "你好")
    quiet.feed(silence(1000))
    assert quiet.final_fields()[0] == ""


def test_transcript_formatting_flags():
    t = Transcript("今天 天气 怎么样？", {"enablePunctuation": True, "enableTone": True,
                                       "enableConfidence": True, "enableAlignment": True})
    text, pinyin, extras = t.final_fields()
    assert text == "今天 天气 怎么样？" and pinyin == "jin1 tian1 tian1 qi4 zen3 me5 yang4"
    assert extras["conf"] == 0.95 and extras["alignment"][0] == {"word": "今天",
                                                                   "pinyin": "jin1 tian1"}
    assert Transcript("音量调到二十五", {"enableNumberConvert": True}).final_fields()[0] == \
        "音 量 调 到 25"
    assert convert_numbers("一百零八") == "108" and convert_numbers("幺二三") == "123"
    assert pinyin_of("打开WiFi") == "da kai wifi"


def test_pinyin_table_covers_default_script():
    strings = json.dumps(DEFAULT_SCRIPT, ensure_ascii=False) + "今天天气怎么样"
    missing = {ch for ch in strings if "\u4e00" <= ch <= "\u9fff" and pinyin_of(ch) == ch}
    assert missing == set()


# ------------------------------------------------------------------ dialogue engine (pure)

def test_engine_reprompt_giveup_and_exit():
    e = DialogueEngine()
    sid = e.text_turn(None, "今天天气怎么样", {}, 0)["sessionId"]
    assert e.text_turn(sid, "随便", {}, 1)["dm"]["nlg"] == "请问你要查询哪个城市的天气？"
    assert e.text_turn(sid, "不知道", {}, 2)["dm"]["shouldEndSession"] is False
    giveup = e.text_turn(sid, "嗯", {}, 3)["dm"]
    assert giveup["nlg"] == "抱歉，我没有听懂，下次再见。" and giveup["shouldEndSession"]
    sid = e.text_turn(None, "今天天气怎么样", {}, 0)["sessionId"]
    assert e.text_turn(sid, "不用了", {}, 1)["dm"]["nlg"] == "好的。"
    sid = e.text_turn(None, "今天天气怎么样", {}, 0)["sessionId"]
    assert e.text_turn(sid, "下一首", {}, 1)["dm"]["command"]["api"] == \
        "DUI.MediaController.Next"
    assert e.sessions == {}


def test_engine_native_timeout_and_empty():
    e = DialogueEngine(native_api_timeout=5)
    sid = e.text_turn(None, "打电话给李四", {}, 0)["sessionId"]
    late = e.data_turn(sid, {"nativeApi": "sys.query.contacts", "extra": {"x": 1}}, 10)
    assert late["dm"]["nlg"] == "抱歉，操作超时了。"
    sid = e.text_turn(None, "打电话给李四", {}, 0)["sessionId"]
    empty = e.data_turn(sid, {"nativeApi": "sys.query.contacts", "extra": {"contacts": []}}, 1)
    assert empty["dm"]["nlg"] == "没有找到李四的号码。"
    unknown = e.intent_turn(None, {"skill": "x", "intent": "y", "task": "z"}, {}, 0)
    assert unknown["dm"]["nlg"] == "暂不支持该意图：y" and unknown["skill"] == "x"


def test_engine_session_ttl():
    e = DialogueEngine(session_ttl=10)
    sid = e.text_turn(None, "今天天气怎么样", {}, 0)["sessionId"]
    assert e.text_turn(sid, "苏州", {}, 100)["dm"]["nlg"] == "我还不太明白“苏州”是什么意思。"


def test_script_validation_paths():
    with pytest.raises(ValueError, match=r"skills\[0\]\.intents\[0\]\.slots\[0\]: 'name' is "
                                         r"required"):
        Script({"skills": [{"skillId": "1", "skill": "s", "intents": [
            {"intent": "i", "slots": [{}]}]}], "fallback": {"nlg": ""}})
    with pytest.raises(ValueError, match="fallback"):
        Script({"skills": []})
    custom = {"skills": [{"skillId": "9", "skill": "灯", "task": "灯", "intents": [
        {"intent": "开灯", "patterns": ["re:开.*灯"], "nlg": "灯已打开"}]}],
        "fallback": {"nlg": "?"}}
    assert DialogueEngine(custom).text_turn(None, "开一下灯", {}, 0)["dm"]["nlg"] == "灯已打开"


def test_emulator_debug_logs_redact_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="dds_client")
    with Emulator() as emu:
        with dds_client.DDSClient(**emu.client_kwargs()) as c:
            c.send_text("你好").result()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /dsg/v1/prod?productId=100200300&apikey=***" in text
    assert "emulator-apikey" not in text


def test_rms_fallback_without_audioop(monkeypatch):
    """Python 3.13+ has no audioop: the array fallback must agree (first channel only)."""
    from dds_client.emulator import audio
    mono = tone(20)
    stereo = array("h")
    for s in array("h", mono):
        stereo.extend((s, 0))
    with_audioop = audio.rms16(mono, 1), audio.rms16(stereo.tobytes(), 2)
    monkeypatch.setattr(audio, "_audioop", None)
    without = audio.rms16(mono, 1), audio.rms16(stereo.tobytes(), 2)
    assert with_audioop[0] == with_audioop[1] > 1000
    assert all(abs(a - b) <= 1 for a, b in zip(with_audioop, without))
    turn = AudioTurn({"audioType": "wav", "sampleRate": 16000, "channel": 1}, {}, "你好")
    events = []
    for chunk in (tone(300), silence(600), silence(600)):
        events += turn.feed(chunk)
    assert events == [("end",)]


@pytest.mark.dds_emulator(max_records=3)
def test_max_records_bounds_the_record(dds_emulator):
    with dds_client.DDSClient(**dds_emulator.client_kwargs()) as c:
        for _ in range(4):
            c.send_text("你好").result()
    assert dds_emulator.wait_for(lambda e: e.connections[-1]["close_code"] is not None)
    assert len(dds_emulator.frames) == 3 and len(dds_emulator.requests) == 3
    assert [r["refText"] for r in dds_emulator.requests] == ["你好"] * 3


def test_script_file_and_cli_fault_parsing(tmp_path):
    from dds_client.emulator.__main__ import _fault
    from dds_client.emulator.server import make_fault

    script = {"skills": [{"skillId": "7", "skill": "灯", "task": "灯", "intents": [
        {"intent": "开灯", "patterns": ["开灯"], "nlg": "灯已打开",
         "command": {"api": "DUI.Light.On", "param": {}}}]}], "fallback": {"nlg": "?"}}
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script, ensure_ascii=False), encoding="utf-8")
    with Emulator(script=str(path)) as emu:
        with dds_client.DDSClient(**emu.client_kwargs()) as c:
            r = c.send_text("请开灯").result()
            assert (r.nlg, r.command_api, r.skill_id) == ("灯已打开", "DUI.Light.On", "7")
    name, params = _fault("error:errId=010400,errMsg=x,times=2")
    fault = make_fault(name, params)
    assert fault["errId"] == "010400" and fault["times"] == 2
    assert make_fault(*_fault("delay:seconds=2"))["seconds"] == 2.0
    assert make_fault(*_fault("reject_handshake:status=403"))["times"] is None
    assert make_fault(*_fault("close_mid_stream:code=None"))["code"] is None
