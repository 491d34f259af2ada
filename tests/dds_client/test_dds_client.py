"""DDSClient against the emulator: every topic, auth modes, correlation, completion rules,
multi-turn sessions, callbacks and observers."""

import json
import os
import threading

import pytest

from dds_client import (AsrResult, AuthError, DDSClient, DialogResult, InvalidStateError,
                        NluResult, SettingsAck, ConnectionClosedError, DDSTimeoutError)

SAMPLE_WAV = os.path.join(os.path.dirname(os.path.abspath(__import__('dds_client').__file__)),
                          "samples", "weather_16k.wav")


def sent_requests(emu, topic=None):
    return [r for r in emu.requests if topic is None or r.get("topic") == topic]


def sent_text_frames(emu):
    return [f[3] for f in emu.frames if f[1] == "in" and f[2] == "text"]


def test_text_turn_wire_and_result(dds_emulator, make_client):
    c = make_client()
    r = c.send_text("测试", record_id="0123456789abcdef0123456789abcdef").result()
    assert isinstance(r, DialogResult)
    assert r.record_id == "0123456789abcdef0123456789abcdef"
    assert r.nlg == "我还不太明白“测试”是什么意思。" and r.should_end_session is True
    assert sent_text_frames(dds_emulator) == [
        '{"topic": "nlu.input.text", "recordId": "0123456789abcdef0123456789abcdef", '
        '"refText": "\\u6d4b\\u8bd5"}']
    assert c.connected and c.pending == 0


def test_multi_turn_continuation_and_reset(dds_emulator, make_client):
    c = make_client()
    first = c.send_text("今天天气怎么样").result()
    assert first.should_end_session is False and first.nlg == "请问你要查询哪个城市的天气？"
    assert c.session_id == first.session_id
    second = c.send_text("苏州").result()
    assert second.nlg == "苏州今天全天多云，气温18到25度。" and second.should_end_session
    assert second.session_id == first.session_id
    assert c.session_id is None        # dialogue over: the next request starts a new one
    third = c.send_text("你好")
    third.result()
    texts = [json.loads(t) for t in sent_text_frames(dds_emulator)]
    assert "sessionId" not in texts[0]
    assert texts[1]["sessionId"] == first.session_id
    assert "sessionId" not in texts[2] and third.session_id_sent is None


def test_session_override_and_new_session(dds_emulator, make_client):
    c = make_client()
    c.send_text("今天天气怎么样").result()
    pending_sid = c.session_id
    r = c.send_text("你好", new_session=True).result()
    assert r.session_id != pending_sid
    own = "my-own-session-id"
    r = c.send_text("今天天气怎么样", session_id=own).result()
    assert r.session_id == own and c.session_id == own
    assert c.send_text("上海").result().nlg.startswith("上海")
    with pytest.raises(ValueError, match="give session_id or new_session, not both"):
        c.send_text("x", session_id="a", new_session=True)
    c.reset_session()
    assert c.session_id is None


def test_independent_sessions(dds_emulator, make_client):
    c = make_client()
    a, b = c.session(), c.session()
    assert a.send_text("今天天气怎么样").result().should_end_session is False
    assert b.send_text("放首歌").result().command_api == "DUI.MediaController.Play"
    assert b.session_id is None and a.session_id is not None
    assert a.send_text("北京").result().nlg.startswith("北京")


def test_session_adopted_before_callbacks(dds_emulator, make_client):
    seen = []
    c = make_client()
    c.on_dialog = lambda r: seen.append(c.session_id)
    r = c.send_text("今天天气怎么样").result()
    assert seen == [r.session_id]


def test_device_signature_auth(dds_emulator, make_client):
    c = make_client(apikey=None, device_name="emulator-device",
                    device_secret="emulator-device-secret")
    assert c.send_text("你好").result().nlg == "你好，我是你的语音助手。"
    query = dds_emulator.connections[-1]["query"]
    assert "deviceName=emulator-device" in query and "sig=***" in query
    assert "emulator-device-secret" not in c.url and "sig=***" in c.url


def test_apikey_never_in_url_or_repr(dds_emulator, make_client):
    c = make_client()
    c.connect()
    assert "emulator-apikey" not in c.url and "apikey=***" in c.url
    assert "emulator-apikey" not in repr(c)


@pytest.mark.parametrize("kwargs, reason", [
    ({"apikey": "wrong"}, "invalid apikey"),
    ({"product_id": "999"}, "invalid productId"),
    ({"apikey": None, "device_name": "emulator-device", "device_secret": "bad"},
     "invalid signature"),
    ({"apikey": None, "device_name": "nobody", "device_secret": "x"}, "unknown deviceName"),
])
def test_auth_rejected_401(dds_emulator, make_client, recorder, kwargs, reason):
    c = make_client(on_open=recorder("on_open"), on_close=recorder("on_close"),
                    on_error=recorder("on_error"), **kwargs)
    with pytest.raises(AuthError) as info:
        c.connect(timeout=5)
    err = info.value
    assert err.status == 401 and reason in err.body
    assert str(err).startswith("handshake rejected with HTTP 401 Unauthorized: 401 Unauthorized")
    assert "whitelisted" in str(err)
    assert "wrong" not in str(err) and recorder.calls == []
    assert not c.connected


def test_audio_stream_partials_final_dialog(dds_emulator, make_client, recorder):
    c = make_client(on_asr_partial=recorder("partial"), on_asr_final=recorder("final"),
                    on_dialog=recorder("dialog"), on_message=recorder("message"))
    with open(SAMPLE_WAV, "rb") as f:
        data = f.read()
    with c.start_audio("wav", 16000, real_back=True, enable_tone=True,
                       record_id="a" * 32) as stream:
        for pos in range(0, len(data), 3200):
            stream.write(data[pos:pos + 3200])
            if stream.finalized:
                break
    r = stream.result(timeout=10)
    assert isinstance(r, DialogResult) and r.nlg == "请问你要查询哪个城市的天气？"
    assert r.asr.text == "今 天 天 气 怎 么 样" and r.asr.text_compact == "今天天气怎么样"
    assert r.asr.pinyin == "jin1 tian1 tian1 qi4 zen3 me5 yang4"
    partials = [p[0].var for p in recorder.of("partial")]
    assert partials and partials == sorted(partials, key=len) and partials[0] == "今"
    assert stream.request.partials[-1].var == partials[-1]
    order = [n for n in recorder.names() if n != "message"]
    assert order.index("final") < order.index("dialog")
    assert json.loads(sent_text_frames(dds_emulator)[0]) == {
        "topic": "recorder.stream.start", "recordId": "a" * 32,
        "audio": {"audioType": "wav", "sampleRate": 16000, "channel": 1, "sampleBytes": 2},
        "asrParams": {"realBack": True, "enableTone": True}}
    binary = [f for f in dds_emulator.frames if f[1] == "in" and f[2] == "binary"]
    assert binary[-1][3] == 0 and all(n == 3200 for n in [f[3] for f in binary[:-2]])


def test_asr_completes_on_eof_without_dm(dds_emulator, make_client):
    c = make_client()
    r = c.send_audio_file(SAMPLE_WAV, ai_type="asr").result(timeout=10)
    assert isinstance(r, AsrResult) and r.is_final and r.text_compact == "今天天气怎么样"
    out = [json.loads(f[3]) for f in dds_emulator.frames if f[1] == "out" and f[2] == "text"]
    assert not any("dm" in m for m in out)
    assert c.session_id is None        # ASR-only turns never change the session


def test_nlu_ai_type_text_and_audio(dds_emulator, make_client):
    c = make_client(ai_type="nlu")
    r = c.send_text("苏州的天气").result()
    assert isinstance(r, NluResult) and r.slots == {"国内城市": "苏州"} and r.intent == "查询天气"
    dds_emulator.push_transcripts("播放音乐周杰伦")
    r = c.send_audio_file(SAMPLE_WAV).result(timeout=10)
    assert isinstance(r, NluResult) and r.task == "音乐" and r.slots == {"歌手": "周杰伦"}
    assert json.loads(sent_text_frames(dds_emulator)[0])["aiType"] == "nlu"


def test_text_with_asr_ai_type(dds_emulator, make_client):
    c = make_client()
    r = c.send_text("苏州的天气", ai_type="asr").result()
    assert isinstance(r, AsrResult) and r.text == "苏 州 的 天 气"


def test_tts_ai_type_has_speak_url(dds_emulator, make_client):
    c = make_client()
    r = c.send_text("你好", ai_type="tts").result()
    assert r.speak_url.startswith("http://127.0.0.1:%d/runtime/v1/longtext/" % dds_emulator.port)


def test_correlation_with_suffixed_record_id(dds_emulator, make_client):
    dds_emulator.set_fault("suffix_record_id", times=None)
    c = make_client()
    req = c.send_text("你好", record_id="b" * 32)
    r = req.result()
    assert r.record_id.startswith("b" * 32 + ":") and len(r.record_id) == 65
    assert req.messages[0]["recordId"] == r.record_id
    r = c.send_audio_file(SAMPLE_WAV, ai_type="asr").result(timeout=10)
    assert ":" in r.record_id


def test_trigger_intent_and_slots_forms(dds_emulator, make_client):
    c = make_client()
    r = c.trigger_intent("天气", "天气", "查询天气", {"城市": "苏州"}).result()
    assert r.nlg == "苏州今天全天多云，气温18到25度。"
    r = c.triggerIntent(task="天气", intent="查询天气", skill_id="2018040200000004",
                        slots=[{"name": "国内城市", "value": "北京"}], input="查北京").result()
    assert r.nlg.startswith("北京") and r.input == "查北京"
    frames = [json.loads(t) for t in sent_text_frames(dds_emulator)]
    assert frames[0]["skill"] == "天气" and frames[0]["slots"] == {"城市": "苏州"}
    assert frames[1]["skillId"] == "2018040200000004"
    with pytest.raises(ValueError, match="intent is required"):
        c.trigger_intent("天气", "天气")
    with pytest.raises(ValueError, match="skill or skill_id is required"):
        c.trigger_intent(task="天气", intent="查询天气")
    with pytest.raises(TypeError, match="slots must be a dict or a list"):
        c.trigger_intent("天气", "天气", "查询天气", "苏州")


def test_native_api_round_trip_with_observers(dds_emulator, make_client):
    c = make_client()
    done = threading.Event()
    topics = []

    def on_native(topic, r):
        topics.append(topic)
        c.feedback_native_api_result(r.native_api, {"duiWidget": "list", "extra": {
            "contacts": [{"name": r.native_param["name"], "phone": "13800000000"}]}})

    def on_command(topic, r):
        topics.append(topic)
        done.set()

    c.subscribe("native://*", on_native)
    c.subscribe(["command://*", "sys.dm.end"], on_command)
    first = c.send_text("打电话给张三").result()
    assert first.native_api == "sys.query.contacts" and first.should_end_session is False
    assert done.wait(5)
    assert topics[:2] == ["native://sys.query.contacts", "command://DUI.Phone.Call"]
    frame = json.loads(sent_text_frames(dds_emulator)[1])
    assert list(frame)[:4] == ["topic", "recordId", "sessionId", "nativeApi"]
    assert frame["sessionId"] == first.session_id and frame["duiWidget"] == "list"
    reply = [json.loads(f[3]) for f in dds_emulator.frames if f[1] == "out"][-1]
    assert reply["dm"]["command"] == {"api": "DUI.Phone.Call",
                                      "param": {"name": "张三", "phone": "13800000000"}}


def test_send_data_without_native_call(dds_emulator, make_client):
    c = make_client()
    r = c.send_data({"duiWidget": "custom", "extra": {"a": 1}}).result()
    assert r.nlg == "已收到数据。"
    with pytest.raises(ValueError, match="widget must be a dict with a 'duiWidget' key"):
        c.feedback_native_api_result("api", {"extra": {}})


def test_settings_acks_and_context(dds_emulator, make_client, recorder):
    c = make_client(on_settings=recorder("settings"))
    acks = []
    c.subscribe(["system.settings.response", "skill.settings.response"],
                lambda t, a: acks.append(t))
    ack = c.update_skill_settings("2018040200000004", {"city": "苏州"}).result()
    assert isinstance(ack, SettingsAck) and ack.topic == "skill.settings.response"
    assert ack.request_topic == "skill.settings"
    assert c.send_text("今天天气怎么样").result().nlg.startswith("苏州")
    ack = c.update_system_settings({"location": {"city": "杭州"}}).result()
    assert ack.topic == "system.settings.response"
    c.update_skill_settings("2018040200000004", [{"key": "city"}], option="delete").result()
    assert c.send_text("今天天气怎么样").result().nlg.startswith("杭州")
    assert len(recorder.of("settings")) == 3
    assert acks == ["skill.settings.response", "system.settings.response",
                    "skill.settings.response"]


def test_sync_context_writes_frame_without_reply(dds_emulator, make_client):
    c = make_client()
    c.send_text("今天天气怎么样").result()
    sid = c.session_id
    assert c.sync_context("2019042500000544", task="音乐", player_state="on") is None
    assert dds_emulator.wait_for(lambda e: any(r.get("topic") == "dm.context.sync"
                                               for r in e.requests))
    frame = sent_text_frames(dds_emulator)[-1]
    assert frame == ('{"topic": "dm.context.sync", "sessionId": "%s", "skillId": '
                     '"2019042500000544", "async": {"task": "\\u97f3\\u4e50", '
                     '"dispatchEvent": {"playerState": "on"}}}' % sid)
    assert c.session_id == sid
    with pytest.raises(ValueError, match="give player_state or dispatch_event, not both"):
        c.sync_context("x", player_state="on", dispatch_event={})


def test_dispatch_order_and_observer_topics(dds_emulator, make_client, recorder):
    c = make_client(on_message=recorder("on_message"), on_dialog=recorder("on_dialog"),
                    on_nlu=recorder("on_nlu"))
    seen = []
    c.subscribe("*", lambda topic, data: seen.append(topic))
    req = c.send_text("放首歌周杰伦")
    req.add_done_callback(recorder("done"))
    req.result()
    assert recorder.names() == ["on_message", "on_nlu", "on_dialog", "done"]
    assert seen == ["nlu.output", "dm.output", "context.output.text", "context.widget.media",
                    "command://DUI.MediaController.Play", "sys.dm.end"]


def test_unsubscribe(dds_emulator, make_client):
    c = make_client()
    seen = []
    observer = seen.append
    c.subscribe("dm.output", lambda t, d: observer(t))
    fn = lambda t, d: seen.append("other")  # noqa: E731
    c.subscribe("dm.output", fn)
    c.unSubscribe(fn)
    c.send_text("你好").result()
    assert seen == ["dm.output"]


def test_one_audio_stream_per_connection(dds_emulator, make_client):
    c = make_client()
    stream = c.start_audio()
    with pytest.raises(InvalidStateError, match="an audio request is already streaming"):
        c.start_audio()
    assert c.send_text("你好").result().nlg  # text requests still work
    stream.end()
    with pytest.raises(InvalidStateError, match="audio stream already ended"):
        stream.write(b"\x00\x00")
    stream.result(timeout=10)
    c.start_audio().result(timeout=10)


def test_audio_stream_exception_cancels(dds_emulator, make_client, recorder):
    c = make_client(on_dialog=recorder("dialog"), on_message=recorder("message"))
    with pytest.raises(RuntimeError):
        with c.start_audio("mp3", real_back=True) as stream:
            stream.write(b"\x01" * 400)
            raise RuntimeError("user code failed")
    assert stream.request.cancelled()
    with pytest.raises(InvalidStateError, match="was cancelled"):
        stream.request.result()
    assert recorder.wait("message")
    r = c.send_text("你好").result()     # the connection stays usable
    assert r.nlg and recorder.of("dialog")[-1][0].nlg == r.nlg


def test_send_audio_file_mp3_frames_and_header_checks(dds_emulator, make_client, tmp_path):
    c = make_client()
    path = tmp_path / "test.mp3"
    path.write_bytes(b"\xff\xfb" * 1000)
    r = c.send_audio_file(str(path), real_back=True).result(timeout=10)
    assert r.asr.text == "今 天 天 气 怎 么 样"
    sizes = [f[3] for f in dds_emulator.frames if f[1] == "in" and f[2] == "binary"]
    assert sizes == [400] * 5 + [0]
    assert json.loads(sent_text_frames(dds_emulator)[0])["audio"]["audioType"] == "mp3"
    with pytest.raises(ValueError, match=r"sample_rate=8000 does not match the WAV header"):
        c.send_audio_file(SAMPLE_WAV, sample_rate=8000)
    with pytest.raises(ValueError, match="cannot infer audio_type"):
        c.send_audio_file(b"\x00" * 10)
    with pytest.raises(ValueError, match="frame_interval needs realtime=True"):
        c.send_audio_file(SAMPLE_WAV, frame_interval=0.1)


def test_send_audio_file_realtime_stops_at_vad_end(dds_emulator, make_client):
    # 0.6 s of speech-like noise then 10 s of silence: the cloud VAD ends the turn early.
    import math
    from array import array
    speech = array("h", (int(3000 * math.sin(i / 3.0)) for i in range(9600))).tobytes()
    silence = b"\x00\x00" * 160000
    c = make_client()
    req = c.send_audio_file(speech + silence, audio_type="wav", realtime=True, ai_type="asr")
    assert req.result(timeout=10).is_final
    sent = sum(f[3] for f in dds_emulator.frames if f[1] == "in" and f[2] == "binary")
    assert sent < len(speech + silence) // 4


def test_request_argument_errors_before_io(dds_emulator):
    c = DDSClient(**dds_emulator.client_kwargs())
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        c.send_text("")
    with pytest.raises(ValueError, match="ai_type must be one of"):
        c.send_text("x", ai_type="chat")
    with pytest.raises(ValueError, match="record_id must be a non-empty string"):
        c.send_text("x", record_id="")
    with pytest.raises(ValueError, match="session_id must be a non-empty string"):
        c.send_text("x", session_id="")
    with pytest.raises(ValueError, match="audio_type must be one of"):
        c.start_audio("pcm")
    with pytest.raises(ValueError, match="skill_id is required"):
        c.update_skill_settings("", {"a": 1})
    assert dds_emulator.connections == [] and not c.connected


def test_constructor_argument_errors():
    with pytest.raises(ValueError, match="product_id is required"):
        DDSClient(apikey="k")
    with pytest.raises(ValueError, match="apikey or device_name/device_secret is required"):
        DDSClient("1")
    with pytest.raises(ValueError, match="give either apikey or device_name/device_secret"):
        DDSClient("1", "k", device_name="d", device_secret="s")
    with pytest.raises(ValueError, match="device_name and device_secret must be given together"):
        DDSClient("1", device_name="d")
    with pytest.raises(ValueError, match="url must start with ws:// or wss://"):
        DDSClient("1", "k", url="http://x")
    with pytest.raises(ValueError, match="productId given both in url and as an argument"):
        DDSClient("1", "k", url="ws://h/p?productId=1")
    with pytest.raises(ValueError, match="ping_timeout must be smaller than ping_interval"):
        DDSClient("1", "k", ping_interval=5, ping_timeout=5)
    with pytest.raises(ValueError, match="ai_type must be one of"):
        DDSClient("1", "k", ai_type="x")
    c = DDSClient(url="ws://h/p?productId=7&apikey=SECRET")
    assert c.product_id == "7" and "SECRET" not in c.url
    d = DDSClient.for_dui("1", "k", branch="test")
    assert d.url == "wss://dds.dui.ai/dds/v2/test?serviceType=websocket&productId=1&apikey=***"


def test_pending_record_id_reuse_rejected(dds_emulator, make_client):
    dds_emulator.set_fault("never_answer")
    c = make_client()
    req = c.send_text("你好", record_id="same")
    with pytest.raises(ValueError, match="record_id same is already in use by a pending request"):
        c.send_text("你好", record_id="same")
    assert req.cancel() and not req.cancel()


def test_result_timeout_then_result(dds_emulator, make_client):
    dds_emulator.set_fault("delay", seconds=0.5)
    c = make_client()
    req = c.send_text("你好")
    with pytest.raises(DDSTimeoutError, match=r"no result for nlu.input.text recordId \w+ "
                                              r"within 0.1 s"):
        req.result(timeout=0.1)
    assert req.result(timeout=5).nlg
    with pytest.raises(ValueError, match="timeout must be positive"):
        req.result(timeout=0)


def test_result_on_ws_thread_refused(dds_emulator, make_client):
    c = make_client()
    errors = []
    got = threading.Event()

    def on_dialog(r):
        if got.is_set():
            return
        try:
            c.send_text("你好").result()
        except InvalidStateError as exc:
            errors.append(str(exc))
        got.set()
    c.on_dialog = on_dialog
    c.send_text("测试")
    assert got.wait(5)
    assert errors == ["Request.result() cannot block on the websocket thread; use "
                      "add_done_callback()"]


def test_connect_on_demand_and_no_silent_reconnect(dds_emulator, recorder):
    c = DDSClient(**dds_emulator.client_kwargs(), on_open=recorder("open"),
                  on_close=recorder("close"))
    try:
        assert c.send_text("你好").result().nlg
        assert recorder.names() == ["open"]
        c.close()
        assert recorder.of("close") == [(1000, "")]
        with pytest.raises(ConnectionClosedError, match="connection is closed"):
            c.send_text("你好")
        c.connect()
        assert c.send_text("你好").result().nlg and recorder.names().count("open") == 2
    finally:
        c.close()
    assert recorder.names() == ["open", "close", "open", "close"]


def test_v3_path_topics(dds_emulator, make_client):
    c = make_client(url=dds_emulator.url.replace("/dsg/v1/prod", "/dds/v3/prod"),
                    service_type="websocket")
    r = c.send_text("你好").result()
    assert r.topic == "dm.output"
    assert c.send_text("你好", ai_type="nlu").result().topic == "nlu.output"


def test_concurrent_requests_from_many_threads(dds_emulator, make_client):
    """Several non-audio requests in flight on one connection, each matched by recordId."""
    c = make_client()
    cities = ["北京", "上海", "广州", "深圳", "苏州", "杭州", "南京", "成都"]
    failures = []

    def worker(city):
        try:
            for _ in range(15):
                r = c.send_text(city + "的天气", new_session=True).result(timeout=10)
                if not r.nlg.startswith(city):
                    failures.append((city, r.nlg))
        except Exception as exc:  # reported through the failures list
            failures.append((city, exc))

    threads = [threading.Thread(target=worker, args=(city,)) for city in cities]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == [] and c.pending == 0
    assert len(dds_emulator.requests) == 15 * len(cities)
