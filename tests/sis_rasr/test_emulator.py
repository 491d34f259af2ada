"""The emulator on its own: raw-protocol clients, handshake checks, START validation, per-mode rules,
the standalone command line."""
import json
import math
import os
import signal
import struct
import subprocess
import sys

import pytest
import websocket

from sis_helpers import SAMPLE_WAV, pcm_silence, pcm_tone


class Raw(object):
    """A bare websocket-client connection, like the vendor's raw-protocol samples."""

    def __init__(self, emu, path='rasr/continue-stream', token=None, header=None):
        if header is None:
            header = ['X-Auth-Token: %s' % (token or emu.issue_token())]
        self.ws = websocket.create_connection(emu.mode_url(path), header=header, timeout=5)

    def send(self, obj):
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def recv(self):
        return json.loads(self.ws.recv())

    def start(self, fmt='pcm16k16bit', prop='chinese_16k_general', **config):
        config.update({'audio_format': fmt, 'property': prop})
        self.send({'command': 'START', 'config': config})
        return self.recv()

    def until_end(self):
        messages = []
        while True:
            m = self.recv()
            messages.append(m)
            if m['resp_type'] in ('END', 'FATAL_ERROR'):
                return messages

    def close(self):
        self.ws.close()


@pytest.fixture
def raw(sis_emulator):
    conns = []

    def make(*args, **kwargs):
        conns.append(Raw(sis_emulator, *args, **kwargs))
        return conns[-1]
    yield make
    for c in conns:
        c.close()


def test_raw_vendor_sample_flow(sis_emulator, raw):
    sis_emulator.push_script(['欢迎使用。'])
    r = raw('rasr/short-stream')
    assert r.start('pcm8k16bit', 'chinese_8k_common')['resp_type'] == 'START'
    r.ws.send_binary(pcm_tone(500, rate=8000))
    r.send('{ "command": "END"}')
    messages = r.until_end()
    assert [m['resp_type'] for m in messages] == ['RESULT', 'END']
    assert messages[0]['segments'][0]['result']['text'] == '欢迎使用'    # add_punc defaults to no
    assert messages[-1]['reason'] == 'NORMAL'
    assert list(messages[-1]) == ['resp_type', 'trace_id', 'reason']
    raw_text = sis_emulator.connections[0].sent[0][2]
    assert raw_text.startswith('{"resp_type":"START","trace_id":"')          # compact JSON


@pytest.mark.parametrize('config,code,msg', [
    ({'audio_format': 'wav'}, 'SIS.0032', "'audio_format' is invalid"),
    ({'property': 'chinese_8k_common'}, 'SIS.0301', "'audio_format' is not match model"),
    ({'property': 'Chinese'}, 'SIS.0032', "'property' is invalid"),
    ({'add_punc': 'true'}, 'SIS.0032', "'add_punc' is invalid"),
    ({'vad_head': 60001}, 'SIS.0032', "'vad_head' is invalid"),
    ({'vad_tail': True}, 'SIS.0032', "'vad_tail' is invalid"),
    ({'max_seconds': 61}, 'SIS.0032', "'max_seconds' is invalid"),
    ({'vad_threshold': 'x'}, 'SIS.0032', "'vad_threshold' is invalid"),
    ({'user_words': 'x'}, 'SIS.0032', "'user_words' is invalid"),
    ({'vocabulary_id': ''}, 'SIS.0201', 'vocabulary is not found'),
])
def test_start_validation(sis_emulator, raw, config, code, msg):
    r = raw()
    full = {'audio_format': 'pcm16k16bit', 'property': 'chinese_16k_general'}
    full.update(config)
    r.send({'command': 'START', 'config': full})
    reply = r.recv()
    assert (reply['resp_type'], reply['error_code'], reply['error_msg']) == ('ERROR', code, msg)
    assert reply['trace_id']
    assert r.start()['resp_type'] == 'START'      # no END after a pre-session error; a new START works


def test_numeric_strings_are_accepted(raw):
    assert raw().start(vad_head='5000', max_seconds='0')['resp_type'] == 'START'


def test_sequence_errors(sis_emulator, raw):
    r = raw()
    r.send({'command': 'END'})
    assert r.recv()['error_msg'] == 'no recognition session is started'
    r.send('not json')
    assert r.recv()['error_code'] == 'SIS.0032'
    r.send({'command': 'PAUSE'})
    assert r.recv()['error_code'] == 'SIS.0031'
    r.start()
    r.send({'command': 'START', 'config': {}})
    assert [m['resp_type'] for m in r.until_end()] == ['ERROR', 'END']
    assert sis_emulator.connections[0].sessions[0]['end_reason'] == 'ERROR'


@pytest.mark.parametrize('header,msg', [
    ([], 'x-auth-token not found'),
    (['X-Auth-Token: forged'], 'decrypt token fail'),
    (['Authorization: SDK-HMAC-SHA256 Access=x'], 'verify aksk signature fail'),
])
def test_handshake_rejections(sis_emulator, header, msg):
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(sis_emulator.mode_url(), header=header, timeout=5)
    assert excinfo.value.status_code == 401
    body = json.loads(excinfo.value.resp_body)
    assert body['error_msg'] == 'Incorrect IAM authentication information: ' + msg


def test_unknown_route_and_expired_token(sis_emulator):
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(sis_emulator.mode_url('rasr/nope'), timeout=5)
    assert excinfo.value.status_code == 404 and b'APIG.0101' in excinfo.value.resp_body
    sis_emulator.token_ttl_s = -1
    token = sis_emulator.issue_token()
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(sis_emulator.mode_url(), header=['X-Auth-Token: ' + token], timeout=5)
    assert b'token expires, expires_at: ' in excinfo.value.resp_body


def test_reject_handshake_fault_and_stop_listening(sis_emulator):
    sis_emulator.add_fault('handshake', 'reject_handshake', connections=1, status=503, body='{"x":1}')
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        websocket.create_connection(sis_emulator.mode_url(), timeout=5)
    assert excinfo.value.status_code == 503
    sis_emulator.stop_listening()
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(sis_emulator.mode_url(), timeout=5)


def g711_tone(ms, law, rate=8000):
    from sis_rasr.emulator import speech
    table = speech.ALAW_TABLE if law == 'alaw' else speech.ULAW_TABLE
    # nearest code for each sample: coarse but enough for the energy detector
    codes = sorted(range(256), key=lambda c: table[c])
    values = [table[c] for c in codes]
    import bisect
    out = bytearray()
    for i in range(rate * ms // 1000):
        v = int(8000 * math.sin(2 * math.pi * 440 * i / rate))
        out.append(codes[min(bisect.bisect_left(values, v), 255)])
    return bytes(out)


@pytest.mark.parametrize('law', ['alaw', 'ulaw'])
def test_g711_vad(sis_emulator, raw, law):
    sis_emulator.push_script(['一', '二'])
    silence = bytes([0xD5 if law == 'alaw' else 0xFF]) * 8000
    r = raw()
    r.start('%s8k8bit' % law, 'chinese_8k_general')
    audio = g711_tone(400, law) + silence + g711_tone(400, law) + silence
    for i in range(0, len(audio), 1600):
        r.ws.send_binary(audio[i:i + 1600])
    r.send({'command': 'END'})
    results = [m for m in r.until_end() if m['resp_type'] == 'RESULT']
    assert [m['segments'][0]['result']['text'] for m in results] == ['一', '二']
    assert results[1]['segments'][0]['start_time'] == 1400


def test_wav_header_split_across_frames_and_registered_audio(sis_emulator, raw):
    with open(SAMPLE_WAV, 'rb') as f:
        wav = f.read()
    sis_emulator.register_audio(SAMPLE_WAV, ['注册的音频'])
    sis_emulator.register_audio(b'\x01\x02' * 100, ['别的'])
    r = raw()
    r.start()
    r.ws.send_binary(wav[:10])
    r.ws.send_binary(wav[10:30])
    for i in range(30, len(wav), 6400):
        r.ws.send_binary(wav[i:i + 6400])
    r.send({'command': 'END'})
    finals = [s['result']['text'] for m in r.until_end() if m['resp_type'] == 'RESULT' for s in m['segments']]
    assert finals == ['注册的音频']
    first = [m for m in sis_emulator.connections[0].sent_messages if m['resp_type'] == 'RESULT'][0]
    assert first['segments'][0]['start_time'] == 320    # audio time excludes the 44-byte header


def test_timed_script_and_max_seconds(sis_emulator, raw):
    sis_emulator.push_script([{'text': 'a', 'start_ms': 100, 'end_ms': 300},
                              {'text': 'b', 'start_ms': 500, 'end_ms': 900}])
    r = raw()
    r.start(prop='english_16k_general')
    r.ws.send_binary(pcm_silence(1000))
    r.send({'command': 'END'})
    segs = [m['segments'][0] for m in r.until_end() if m['resp_type'] == 'RESULT']
    assert [(s['start_time'], s['end_time'], s['result']['text']) for s in segs] == [(100, 300, 'a'), (500, 900, 'b')]
    r.start(prop='english_16k_general', max_seconds=1)
    r.ws.send_binary(pcm_tone(1500))
    r.send({'command': 'END'})
    segs = [m['segments'][0] for m in r.until_end() if m['resp_type'] == 'RESULT']
    assert [(s['start_time'], s['end_time']) for s in segs] == [(0, 1000), (1000, 1500)]
    assert segs[0]['result']['text'] == 'simulated result 1'


def test_too_long_audio_per_mode(sis_emulator, raw):
    minute = pcm_silence(1000) * 61
    r = raw('asr/short-audio')
    r.start()
    for i in range(0, len(minute), 64000):
        r.ws.send_binary(minute[i:i + 64000])
    r.send({'command': 'END'})
    messages = r.until_end()
    assert messages[0] == {'resp_type': 'EVENT', 'trace_id': messages[0]['trace_id'], 'event': 'EXCEEDED_AUDIO',
                           'timestamp': 60000}
    assert messages[-1]['reason'] == 'NORMAL'
    s = raw('rasr/short-stream')
    s.start()
    for i in range(0, len(minute), 64000):
        s.ws.send_binary(minute[i:i + 64000])
    messages = s.until_end()
    assert [(m['resp_type'], m.get('error_code'), m.get('reason')) for m in messages] == [
        ('ERROR', 'SIS.0309', None), ('END', None, 'ERROR')]


def test_standalone_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, '-m', 'sis_rasr.emulator', '--port', '0', '--transcript', '你好',
                             '--ak', 'MYAK', '--sk', 'MYSK', '--project-id', 'p1'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        ws_url = proc.stdout.readline().decode().strip()
        iam_url = proc.stdout.readline().decode().strip()
        assert ws_url.startswith('ws://127.0.0.1:') and iam_url.startswith('http://127.0.0.1:')
        from sis_helpers import Recorder
        from sis_rasr import RasrClient, RasrRequest
        rec = Recorder()
        client = RasrClient(ak='MYAK', sk='MYSK', use_aksk=True, region='cn-north-4', project_id='p1', callback=rec,
                            service_endpoint=ws_url)
        try:
            client.short_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
            client.send_start()
            client.send_audio(pcm_tone(300), 4800, 0)
            client.send_end()
        finally:
            client.close()
        assert rec.finals() == ['你好']
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_cli_against_the_emulator():
    import io
    from sis_rasr.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    assert main(['--emulator', '--speed', '0', '--mode', 'sentence', '--punc'], out, err) == 0
    assert out.getvalue().strip().endswith('北京今天天气怎么样？')
    assert 'event: VOICE_START' in err.getvalue() and 'connection closed' in err.getvalue()


def test_cli_failures_are_clear(tmp_path):
    import io
    from sis_rasr.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    env_keys = [k for k in os.environ if k.startswith('HUAWEICLOUD_SIS_')]
    assert not env_keys
    assert main(['--speed', '0'], out, err) == 2
    assert 'give --project-id' in err.getvalue()
    raw_file = tmp_path / 'a.pcm'
    raw_file.write_bytes(b'\x00' * 10)
    err = io.StringIO()
    assert main([str(raw_file), '--emulator'], out, err) == 2
    assert 'give --audio-format' in err.getvalue()
    s = __import__('socket').socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    err = io.StringIO()
    assert main(['--project-id', 'p', '--ak', 'a', '--sk', 'b', '--endpoint', 'ws://127.0.0.1:%d' % port,
                 '--speed', '0'], out, err) == 1
    assert 'error: websocket connect failed' in err.getvalue()


def test_vendor_style_websocketapp_client(sis_emulator):
    """The vendor SDK's transport: WebSocketApp, signed header dict with content-length 0, Host left to
    websocket-client, run_forever(None, sslopt, clt + 10, clt) on a daemon thread."""
    import threading
    from sis_rasr.auth import aksk_service
    sis_emulator.push_script(['原版'])
    url = sis_emulator.mode_url('rasr/sentence-stream')
    headers = aksk_service.get_signed_headers(sis_emulator.ak, sis_emulator.sk, 'http' + url[2:], None, None, 'GET')
    del headers['host']
    got = []
    ended = threading.Event()
    opened = threading.Event()

    def on_message(ws, message):
        got.append(json.loads(message))
        if got[-1]['resp_type'] == 'END':
            ended.set()
    app = websocket.WebSocketApp(url, headers, on_open=lambda ws: opened.set(), on_message=on_message)
    thread = threading.Thread(target=app.run_forever, args=(None, None, 14, 4), daemon=True)
    thread.start()
    try:
        assert opened.wait(5)
        app.send(json.dumps({'command': 'START', 'config': {'audio_format': 'pcm16k16bit',
                                                            'property': 'chinese_16k_general'}}))
        app.send(pcm_tone(400) + pcm_silence(700), websocket.ABNF.OPCODE_BINARY)
        app.send('{"command": "END", "cancel": "false"}')
        assert ended.wait(5)
    finally:
        app.keep_running = False
        app.close()
        thread.join(10)
    assert [m['resp_type'] for m in got] == ['START', 'EVENT', 'RESULT', 'EVENT', 'END']
    assert sis_emulator.connections[0].header('content-length') == '0'


def test_aksk_lockout_knob(sis_emulator):
    from sis_rasr.auth import aksk_service
    sis_emulator.aksk_lockout = True
    url = sis_emulator.mode_url()

    def attempt(sk):
        headers = aksk_service.get_signed_headers(sis_emulator.ak, sk, 'http' + url[2:], None, None, 'GET')
        host = headers.pop('host')
        try:
            websocket.create_connection(url, header=headers, host=host, timeout=5).close()
            return 'ok'
        except websocket.WebSocketBadStatusException as e:
            return json.loads(e.resp_body)['error_msg'].split(': ', 1)[1]
    assert [attempt('bad') for _ in range(5)] == ['verify aksk signature fail'] * 5
    assert attempt(sis_emulator.sk) == 'AK access failed to reach the limit,forbidden.'


@pytest.mark.parametrize('auth,header,ok', [
    ('lenient', 'signed-with-other-keys', True),
    ('lenient', None, False),
    ('off', None, True),
])
def test_auth_modes(sis_emulator, auth, header, ok):
    from sis_rasr.auth import aksk_service
    sis_emulator.auth = auth
    url = sis_emulator.mode_url()
    headers, host = [], None
    if header:
        signed = aksk_service.get_signed_headers('USERAK', 'USERSK', 'http' + url[2:], None, None, 'GET')
        host = signed.pop('host')
        headers = signed
    if ok:
        websocket.create_connection(url, header=headers, host=host, timeout=5).close()
    else:
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(url, header=headers, host=host, timeout=5)
