"""The vendor's raw samples run against the emulator with only the URL changed (reference 7)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import dds_client

SAMPLE_WAV = os.path.join(os.path.dirname(os.path.abspath(dds_client.__file__)), "samples",
                          "weather_16k.wav")

# Seed 000 ("python代码示例"), verbatim; the tests change only the host:port of the URL (the
# emulator is started with the sample's own credentials, productId "x" and apikey "x").
SEED_000 = '''
    import json
    import asyncio
    import websockets
    from uuid import uuid4
    
    # 音频文件测试路径。
    audioFile = "test.mp3"
    
    # 使用自己产品Id和apikey替换下列参数。
    productId = "x"
    apikey = "x"
    
    
    #发送文本请求
    async def textRequest(ws):
        content = {
            "aiType":"dm",
            "topic": 'nlu.input.text',
            "recordId": uuid4().hex,
            "refText": "测试"   #修改文本请求的输入
        }
        try:
            await ws.send(json.dumps(content))
            resp = await ws.recv()
            print(resp)
        except websockets.exceptions.ConnectionClosed as exp:
            print(exp)
    
    #发送音频请求
    async def audioRequest(ws):
        content = {
            "aiType": "dm",   #可选dm/asr, dm获取对话结果，asr只获取asr结果
            "topic": "recorder.stream.start",
            "recordId": uuid4().hex,
            "audio": {
                "audioType": "mp3",   #修改为测试文件的类型
                "sampleRate": 16000, #修改为测试文件的sampleRate
                "channel": 1,        #修改为测试文件的channel
                "sampleBytes": 2     #修改为测试文件的sampleBytes
            },
            "asrParams": {
                "realBack": True,      #实时返回asr结果
                "enableVAD": True,     #启动VAD
                "enablePunctuation": True,     #返回结果是否带拼音
                "enableTone": True,     #返回结果是否带声调
                "enableConfidence": True,     #返回结果是否带置信度
                "enableNumberConvert": True,    #返回结果是否进行数字转换
            },
        }
    
        try:
            #发送文本消息
            await ws.send(json.dumps(content))
            # 发送音频消息
            with open(audioFile, 'rb') as f:
                while True:
                    chunk = f.read(400) #wav buffsize=3200 其他的400
                    if not chunk:
                        await ws.send(bytes("", encoding="utf-8"))
                        break
                    print(len(chunk))
                    await ws.send(chunk)
            async for message in ws:
                print(message)
                resp = json.loads(message)
                if 'dm' in resp:
                    break
        except websockets.exceptions.ConnectionClosed as exp:
            print(exp)
            ws.close()
    
    async def dds_demo():
        url = f"ws://botai-dsg.and-home.cn:4443/dsg/v1/prod?productId={productId}&apikey={apikey}"
        print(url)
        async with websockets.connect(url) as websocket:
            #await textRequest(websocket)    #发送文本请求
            await audioRequest(websocket)    #发送音频请求
    
    asyncio.get_event_loop().run_until_complete(dds_demo())
'''

pytestmark = pytest.mark.dds_emulator(product_id="x", apikey="x")

# The seed ends with asyncio.get_event_loop().run_until_complete(...), which raises on Python
# 3.14 whatever the server does (reference 6, quirk 35).
seed_runs = pytest.mark.skipif(sys.version_info >= (3, 14),
                               reason="seed 000 needs asyncio.get_event_loop() (Python <= 3.13)")


def run_sample(tmp_path, emu, source):
    source = textwrap.dedent(source).replace("botai-dsg.and-home.cn:4443",
                                             "127.0.0.1:%d" % emu.port)
    script = tmp_path / "seed000.py"
    script.write_text(source, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=45, encoding="utf-8")
    assert proc.returncode == 0, proc.stderr
    assert "ConnectionClosed" not in proc.stdout
    return [line for line in proc.stdout.splitlines() if line.startswith("{")]


@seed_runs
def test_seed_000_audio_mp3_as_written(tmp_path, dds_emulator):
    (tmp_path / "test.mp3").write_bytes(b"\xff\xfb\x90\x00" * 1500)
    messages = [json.loads(m) for m in run_sample(tmp_path, dds_emulator, SEED_000)]
    assert [m.get("eof") for m in messages[:-1]][-1] == 1
    assert all(m["eof"] == 0 and m["var"] for m in messages[:-2])
    assert len(messages) >= 3
    final, dialog = messages[-2], messages[-1]
    assert final["text"] == "今 天 天 气 怎 么 样" and final["conf"] == 0.95
    assert final["pinyin"] == "jin1 tian1 tian1 qi4 zen3 me5 yang4"
    assert "dm" in dialog and dialog["dm"]["nlg"] and dialog["recordId"] == final["recordId"]
    binary = [f[3] for f in dds_emulator.frames if f[1] == "in" and f[2] == "binary"]
    assert binary == [400] * 15 + [0]
    assert dds_emulator.wait_for(lambda e: e.connections and
                                 e.connections[0]["close_code"] == 1000)


@seed_runs
def test_seed_000_text_request(tmp_path, dds_emulator):
    source = SEED_000.replace("#await textRequest(websocket)", "await textRequest(websocket)") \
        .replace("await audioRequest(websocket)    #", "#await audioRequest(websocket)    #")
    messages = run_sample(tmp_path, dds_emulator, source)
    assert len(messages) == 1
    reply = json.loads(messages[0])
    dm = reply["dm"]
    assert dm["nlg"] and isinstance(dm["speak"], dict) and set(dm["speak"]) == {"text", "type"}
    assert isinstance(dm["widget"], dict) and isinstance(dm["shouldEndSession"], bool)
    assert reply["sessionId"] and reply["recordId"] == dds_emulator.requests[0]["recordId"]


@seed_runs
def test_seed_000_audio_wav_as_the_comments_instruct(tmp_path, dds_emulator):
    with open(SAMPLE_WAV, "rb") as f:
        (tmp_path / "test.wav").write_bytes(f.read())
    source = SEED_000.replace('audioFile = "test.mp3"', 'audioFile = "test.wav"') \
        .replace('"audioType": "mp3"', '"audioType": "wav"')
    messages = [json.loads(m) for m in run_sample(tmp_path, dds_emulator, source)]
    assert messages[-2]["eof"] == 1 and messages[-2]["text"] == "今 天 天 气 怎 么 样"
    assert "dm" in messages[-1]
    assert [m.get("eof") for m in messages[:-2]] == [0] * (len(messages) - 2)


@seed_runs
def test_seed_000_asr_variant_ends_on_eof_without_dm(tmp_path, dds_emulator):
    (tmp_path / "test.mp3").write_bytes(b"\xff\xfb\x90\x00" * 500)
    source = SEED_000.replace('"aiType": "dm",   #', '"aiType": "asr",   #') \
        .replace("if 'dm' in resp:", "if resp.get('eof') == 1:")
    messages = [json.loads(m) for m in run_sample(tmp_path, dds_emulator, source)]
    assert messages[-1]["eof"] == 1
    assert not any("dm" in m for m in messages)
    out = [f for f in dds_emulator.frames if f[1] == "out"]
    assert not any('"dm"' in f[3] for f in out if f[2] == "text")


@pytest.mark.dds_emulator(product_id="100200300", apikey="k")
def test_go_sample_null_and_empty_fields(dds_emulator):
    """The and-home Go sample's struct serialises unused fields as "" and null."""
    from websockets.sync.client import connect

    url = dds_emulator.auth_url(apikey="k")
    with connect(url) as ws:
        ws.send('{"topic":"nlu.input.text","recordId":"r1","sessionId":"","audio":null,'
                '"refText":"测试","wakeupWord":"","asrParams":null,"aiType":"dm"}')
        reply = json.loads(ws.recv(timeout=5))
        assert reply["recordId"] == "r1" and "dm" in reply and "sessionId" in reply
        ws.send('{"topic":"recorder.stream.start","recordId":"r2","sessionId":"","audio":'
                '{"audioType":"mp3","sampleRate":16000,"channel":1,"sampleBytes":2},'
                '"refText":"","wakeupWord":"","asrParams":{"realBack":true,"enableVAD":true,'
                '"phraseHints":null},"aiType":"dm"}')
        for _ in range(8):
            ws.send(b"\x01" * 400)
        ws.send(b"")
        seen = []
        while not seen or "dm" not in seen[-1]:
            seen.append(json.loads(ws.recv(timeout=5)))
        assert seen[-2]["eof"] == 1 and seen[0]["var"] == "今"


@pytest.mark.dds_emulator(product_id="100200300", apikey="k")
def test_dui_python_samples_settings_intent_and_device(dds_emulator):
    """Official DUI Python sample requests, including the seconds-timestamp device revision."""
    from websockets.sync.client import connect

    base = dds_emulator.url.replace("/dsg/v1/prod", "/dds/v2/prod")
    with connect(base + "?serviceType=websocket&productId=100200300&apikey=k") as ws:
        ws.send(json.dumps({"topic": "skill.settings", "skillId": "2018040200000004",
                            "option": "set", "settings": [{"key": "city", "value": "苏州"}]}))
        ack = json.loads(ws.recv(timeout=5))
        assert ack["topic"] == "skill.settings.response" and ack["recordId"] and "dm" not in ack
        ws.send(json.dumps({"topic": "system.settings", "settings": [
            {"key": "location", "value": {"city": "suzhou"}}]}))
        assert json.loads(ws.recv(timeout=5))["topic"] == "system.settings.response"
        ws.send(json.dumps({"aiType": "dm", "topic": "dm.input.intent", "recordId": "i1",
                            "skillId": "2018040200000004", "intent": "查询天气", "task": "天气",
                            "slots": {"国内城市": "苏州"}}))
        assert json.loads(ws.recv(timeout=5))["dm"]["nlg"].startswith("苏州")
    device_url = dds_emulator.device_url(timestamp_unit="s").replace("/dsg/v1/prod",
                                                                     "/dds/v2/test")
    sig = device_url.rsplit("sig=", 1)[1]
    with connect(device_url.replace(sig, sig.upper())) as ws:
        ws.send(json.dumps({"aiType": "dm", "topic": "nlu.input.text", "recordId": "t1",
                            "refText": "姚明是谁"}))
        assert "姚明是谁" in json.loads(ws.recv(timeout=5))["dm"]["nlg"]
    # Java sample spelling: apiKey, dashed recordId, serviceType last.
    with connect(base + "?productId=100200300&apiKey=k&serviceType=websocket") as ws:
        ws.send(json.dumps({"topic": "dm.input.intent", "recordId": "8f14e45f-ceea-467f-a0e6-"
                            "e1b9f9a0c1d2", "skillId": "2018040200000004", "intent": "查询天气",
                            "task": "天气", "slots": {"城市": "苏州"}}))
        assert json.loads(ws.recv(timeout=5))["dm"]["nlg"].startswith("苏州")


@pytest.mark.dds_emulator(product_id="100200300", apikey="k")
def test_dui_python_sample_audio_8k(dds_emulator):
    """DUI sample audioRequest: 8 kHz WAV, no asrParams, 3200-byte frames, loop until 'dm'."""
    import io
    import math
    import wave
    from array import array
    from websockets.sync.client import connect

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(array("h", (int(3000 * math.sin(i / 2.0)) for i in range(8000))).tobytes()
                      + b"\x00\x00" * 8000)
    data = buf.getvalue()
    url = dds_emulator.url.replace("/dsg/v1/prod", "/dds/v2/prod")
    with connect(url + "?serviceType=websocket&productId=100200300&apikey=k") as ws:
        ws.send(json.dumps({"aiType": "dm", "topic": "recorder.stream.start",
                            "recordId": "d" * 32, "audio": {"audioType": "wav",
                                                            "sampleRate": 8000, "channel": 1,
                                                            "sampleBytes": 2}}))
        for pos in range(0, len(data), 3200):
            ws.send(data[pos:pos + 3200])
        ws.send(b"")
        seen = []
        while not seen or "dm" not in seen[-1]:
            seen.append(json.loads(ws.recv(timeout=5)))
    assert len(seen) == 2 and seen[0]["eof"] == 1 and seen[0]["text"] == "今 天 天 气 怎 么 样"
    assert seen[1]["recordId"] == "d" * 32 and seen[1]["dm"]["intentName"] == "查询天气"
