"""Fault matrix: every failure ends in the documented error path, on_close once, in bounded time, with no
thread left behind (the suite's leak guard checks the last part)."""
import json
import socket
import threading
import time

import pytest
from websocket import WebSocketBadStatusException, WebSocketConnectionClosedException, WebSocketTimeoutException

from sis_rasr import RasrRequest
from sis_rasr.bean.sis_enum import WebsocketStatus
from sis_rasr.exception.exceptions import ClientException
from sis_helpers import fast_config, pcm_silence, pcm_tone


def request(fmt='pcm16k16bit', prop='chinese_16k_general'):
    return RasrRequest(fmt, prop)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def assert_connect_failed(excinfo, url_part='continue-stream'):
    msg = str(excinfo.value)
    assert msg.startswith('websocket connect failed\uff0c url is ') and url_part in msg
    assert msg.endswith('status is WebsocketStatus.STATE_CLOSE')


def test_refused(make_client, recorder):
    client = make_client(recorder, service_endpoint='ws://127.0.0.1:%d' % free_port())
    t0 = time.monotonic()
    with pytest.raises(ClientException) as excinfo:
        client.continue_stream_connect(request())
    assert time.monotonic() - t0 < 3
    assert_connect_failed(excinfo)
    assert recorder.names() == ['error', 'close']
    assert isinstance(recorder.args('error')[0], ConnectionRefusedError)


def test_bad_signature_401(sis_emulator, make_client, recorder):
    client = make_client(recorder, sk='wrong-secret')
    with pytest.raises(ClientException) as excinfo:
        client.continue_stream_connect(request())
    assert_connect_failed(excinfo)
    assert recorder.names() == ['error', 'close']
    error = recorder.args('error')[0]
    assert isinstance(error, WebSocketBadStatusException) and error.status_code == 401
    assert str(error).startswith('Handshake status 401 Unauthorized -+-+- ')
    body = error.resp_body
    body = json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
    assert list(body) == ['error_msg', 'error_code', 'request_id']
    assert body['error_msg'] == 'Incorrect IAM authentication information: verify aksk signature fail'
    assert body['error_code'] == 'APIG.0301'
    assert len(sis_emulator.connections) == 1    # a definitive failure is not retried


def test_stale_signature_and_unknown_ak(sis_emulator, make_client, recorder):
    sis_emulator.max_clock_skew_s = -1
    with pytest.raises(ClientException):
        make_client(recorder).short_stream_connect(request())
    assert 'signature expired' in str(recorder.args('error')[0])
    sis_emulator.max_clock_skew_s = 900
    with pytest.raises(ClientException):
        make_client(recorder, ak='NOSUCHAK').short_stream_connect(request())
    assert 'Get secretKey failed,ak:NOSUCHAK,err:ak not exist' in str(recorder.args('error')[1])
    assert recorder.names() == ['error', 'close', 'error', 'close']


def test_wrong_project_and_unknown_path(sis_emulator, make_client, recorder):
    with pytest.raises(ClientException):
        make_client(recorder, project_id='other').short_stream_connect(request())
    body = recorder.args('error')[0].resp_body
    assert "project_id doesn't match the token" in (body.decode() if isinstance(body, bytes) else body)


def test_handshake_never_answered_retries_then_fails(sis_emulator, make_client, recorder, caplog):
    sis_emulator.add_fault('handshake', 'never_answer')
    config = fast_config()
    config.set_connect_timeout(0.3)
    client = make_client(recorder, config=config)
    t0 = time.monotonic()
    with pytest.raises(ClientException) as excinfo:
        client.continue_stream_connect(request())
    assert time.monotonic() - t0 < 5
    assert_connect_failed(excinfo)
    assert recorder.names() == ['error', 'close']     # abandoned attempts stay silent
    assert isinstance(recorder.args('error')[0], WebSocketTimeoutException)
    attempts = [r.getMessage() for r in caplog.records if r.getMessage().startswith('connect attempt')]
    # the third attempt ends on the wait's bound or on the handshake's own timeout, whichever fires first
    assert [m.split(' timed out')[0] for m in attempts][:2] == ['connect attempt 1', 'connect attempt 2']
    assert str(recorder.args('error')[0]).startswith('websocket handshake timed out after 0.3 s, url is ws://')


def test_start_never_answered(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('start', 'never_answer')
    config = fast_config()
    config.set_websocket_wait_time(0.3)
    client = make_client(recorder, config=config)
    client.continue_stream_connect(request())
    t0 = time.monotonic()
    with pytest.raises(ClientException) as excinfo:
        client.send_start()
    assert time.monotonic() - t0 < 2
    assert str(excinfo.value) == (
        'status WebsocketStatus.STATE_START_WAITING is not received {<WebsocketStatus.STATE_START: 4>, '
        '<WebsocketStatus.STATE_CLOSE: 7>, <WebsocketStatus.STATE_ERROR: 8>} in 0.3 time')
    assert recorder.names() == ['open', 'close']        # the timed-out connection was closed


def test_module_wait_time_is_the_default_bound(sis_emulator, make_client, recorder, monkeypatch):
    from sis_rasr.client import rasr_client
    monkeypatch.setattr(rasr_client, 'websocket_wait_time', 0.2)
    sis_emulator.add_fault('end', 'never_answer')
    config = fast_config()
    config.set_websocket_wait_time(20)    # the default value: the module's 18 s (here patched) applies
    client = make_client(recorder, config=config)
    client.short_stream_connect(request())
    client.send_start()
    with pytest.raises(ClientException, match='STATE_END_WAITING is not received .* in 0.2 time'):
        client.send_end()


@pytest.mark.parametrize('fmt,prop,code,msg', [
    ('mp3', 'chinese_16k_general', 'SIS.0032', "'audio_format' is invalid"),
    ('pcm16k16bit', 'chinese_8k_common', 'SIS.0301', "'audio_format' is not match model"),
])
def test_error_reply_to_start(sis_emulator, make_client, recorder, fmt, prop, code, msg):
    client = make_client(recorder)
    client.continue_stream_connect(request(fmt, prop))
    client.send_start()                 # returns normally, like the vendor; the error went to on_error
    assert recorder.names() == ['open', 'error']
    error = recorder.args('error')[0]
    assert isinstance(error, str)
    body = json.loads(error)
    assert list(body) == ['resp_type', 'trace_id', 'error_code', 'error_msg']
    assert (body['resp_type'], body['error_code'], body['error_msg']) == ('ERROR', code, msg)
    with pytest.raises(ClientException, match="status WebsocketStatus.STATE_ERROR can't send binary data"):
        client.send_audio(b'\x00' * 640)
    # a connect in ERROR closes and reconnects, as the vendor does
    client.continue_stream_connect(request())
    assert recorder.names() == ['open', 'error', 'close', 'open']


def test_fatal_error_mid_stream(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('audio_bytes>=6400', 'send_error', code='SIS.0304', msg='wait voice timeout', fatal=True)
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    try:
        client.send_audio(pcm_silence(2000), byte_len=3200, sleep_time=0.01)
    except ClientException as exc:       # the close may win the race against the remaining chunks
        assert isinstance(exc, WebSocketConnectionClosedException)
        assert "STATE_CLOSE can't send binary data" in str(exc)
    assert recorder.closed.wait(5)
    assert recorder.names() == ['open', 'start', 'error', 'close']   # no spurious on_error for the close
    assert json.loads(recorder.args('error')[0])['resp_type'] == 'FATAL_ERROR'
    with pytest.raises(ClientException, match="STATE_CLOSE can't send end"):
        client.send_end()


@pytest.mark.parametrize('action,params', [('close', {'code': 1011, 'reason': 'overload'}), ('abort', {})])
def test_server_close_mid_stream(sis_emulator, make_client, recorder, action, params):
    sis_emulator.add_fault('audio_bytes>=3200', action, **params)
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    with pytest.raises(ClientException) as excinfo:
        for _ in range(200):
            client.send_audio(pcm_silence(100), byte_len=3200, sleep_time=0.01)
    assert isinstance(excinfo.value, WebSocketConnectionClosedException)
    assert recorder.closed.wait(5)
    assert recorder.names() == ['open', 'start', 'error', 'close']
    error = recorder.args('error')[0]
    assert isinstance(error, WebSocketConnectionClosedException)
    if action == 'close':
        assert 'code 1011' in str(error) and 'overload' in str(error)


def test_normal_close_outside_a_session_is_not_an_error(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('after_ms=50', 'close', code=1000)
    client = make_client(recorder)
    client.continue_stream_connect(request())
    assert recorder.closed.wait(5)
    assert recorder.names() == ['open', 'close']


@pytest.mark.parametrize('kind,check', [
    ('text', lambda e: isinstance(e, ValueError)),
    ('unknown_type', lambda e: isinstance(e, str) and '"SURPRISE"' in e),
    ('no_trace_id', lambda e: isinstance(e, str) and json.loads(e)['error_code'] == 'SIS.0002'),
    ('binary', lambda e: isinstance(e, ValueError) and 'binary' in str(e)),
])
def test_malformed_server_messages(sis_emulator, make_client, recorder, kind, check):
    sis_emulator.add_fault('start', 'send_malformed', kind=kind)
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    assert recorder.names() == ['open', 'error']
    assert check(recorder.args('error')[0])
    assert client._status == WebsocketStatus.STATE_ERROR
    client.close()
    assert recorder.names() == ['open', 'error', 'close']


def test_error_without_trace_id_on_start(sis_emulator, make_client, recorder):
    sis_emulator.omit_trace_id = True
    client = make_client(recorder)
    client.continue_stream_connect(request('bad', 'chinese_16k_general'))
    client.send_start()
    assert 'trace_id' not in json.loads(recorder.args('error')[0])


def test_raising_on_response_is_reported(sis_emulator, make_client, recorder):
    boom = RuntimeError('user bug')
    recorder.raise_in['response'] = boom
    sis_emulator.push_script(['一'])
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    client.send_audio(pcm_tone(300) + pcm_silence(600), byte_len=6400, sleep_time=0)
    assert recorder.errored.wait(5)
    assert recorder.args('error') == [boom]
    assert client._status == WebsocketStatus.STATE_ERROR
    with pytest.raises(ClientException, match="STATE_ERROR can't send end"):
        client.send_end()
    client.close()
    assert recorder.names().count('close') == 1


def test_default_on_response_raises_into_on_error(sis_emulator, make_client):
    from sis_rasr import RasrCallBack

    class OnlyErrors(RasrCallBack):
        def __init__(self):
            self.errors = []
            self.got = threading.Event()

        def on_error(self, error):
            self.errors.append(error)
            self.got.set()
    cb = OnlyErrors()
    sis_emulator.push_script(['一'])
    client = make_client(cb)
    client.continue_stream_connect(request())
    client.send_start()
    client.send_audio(pcm_tone(300) + pcm_silence(600), byte_len=6400, sleep_time=0)
    assert cb.got.wait(5)
    assert str(cb.errors[0]) == 'no response implementation'


def test_raising_on_error_is_logged_and_reported(sis_emulator, make_client, recorder, monkeypatch, caplog):
    hooked = []
    monkeypatch.setattr(threading, 'excepthook', lambda args: hooked.append(args.exc_value))
    recorder.raise_in['error'] = ValueError('on_error bug')
    client = make_client(recorder)
    client.continue_stream_connect(request('bad', 'chinese_16k_general'))
    client.send_start()
    assert [type(e) for e in hooked] == [ValueError]
    assert 'on_error raised' in caplog.text
    client.close()
    assert recorder.names() == ['open', 'error', 'close']


def test_idle_timeout_fatal(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('handshake', 'configure', idle_timeout_s=0.3)
    client = make_client(recorder)
    client.continue_stream_connect(request())
    assert recorder.closed.wait(5)
    body = json.loads(recorder.args('error')[0])
    assert (body['resp_type'], body['error_code'], body['error_msg']) == ('FATAL_ERROR', 'SIS.0304',
                                                                         'wait voice timeout')
    assert recorder.names() == ['open', 'error', 'close']
    record = sis_emulator.connections[0]
    sis_emulator.wait_closed(record)
    assert record.server_close_code == 1000


def test_chunk_too_large_ends_the_session(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    client.send_audio(b'\x00' * 70000, byte_len=70000, sleep_time=0)
    assert recorder.ended.wait(5)
    assert json.loads(recorder.args('error')[0])['error_msg'] == 'audio data size is invalid'
    assert recorder.names() == ['open', 'start', 'error', 'end']
    client.send_audio(b'\x00' * 640)     # the session ended: warn, send nothing
    assert sis_emulator.connections[0].binary_sizes == [70000]
    assert sis_emulator.connections[0].sessions[0]['end_reason'] == 'ERROR'


def test_cancel(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    client.send_audio(pcm_tone(400), byte_len=6400, sleep_time=0)
    client.send_end(cancel=True)
    assert recorder.args('response') == []
    assert sis_emulator.connections[0].sessions[0]['end_reason'] == 'CANCEL'
    assert sis_emulator.connections[0].texts_received[-1] == '{"command": "END", "cancel": true}'


def test_ping_timeout_when_the_server_freezes(sis_emulator):
    """The receive loop's keep-alive: no pong within ping_timeout -> on_transport_error, then on_closed."""
    from sis_rasr._connection import Connection
    sis_emulator.auth = 'off'
    sis_emulator.add_fault('after_ms=0', 'freeze')
    events = []
    done = threading.Event()

    class Handler(object):
        def __getattr__(self, name):
            def record(conn, *args):
                events.append((name, args))
                if name == 'on_closed':
                    done.set()
            return record
    conn = Connection(sis_emulator.mode_url(), [], Handler(), connect_timeout=5, ping_interval=0.1, ping_timeout=0.2)
    conn.start()
    assert done.wait(5)
    conn.close()
    names = [e[0] for e in events]
    assert names == ['on_open', 'on_transport_error', 'on_closed']
    assert str(events[1][1][0]) == 'ping/pong timed out'


def test_handshake_dropped_by_the_server(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('handshake', 'refuse')
    client = make_client(recorder)
    with pytest.raises(ClientException) as excinfo:
        client.short_stream_connect(request())
    assert_connect_failed(excinfo, 'short-stream')
    assert recorder.names() == ['error', 'close']
    assert isinstance(recorder.args('error')[0], WebSocketConnectionClosedException)
    assert len(sis_emulator.connections) == 1      # a lost connection is definitive, not retried


def test_result_fault_and_delay(sis_emulator, make_client, recorder):
    sis_emulator.add_fault('results>=2', 'send_error', code='SIS.0305', msg='recognition error')
    sis_emulator.add_fault('start', 'delay', ms=50)
    sis_emulator.push_script(['一', '二', '三'])
    audio = (pcm_tone(300) + pcm_silence(600)) * 3
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    client.send_audio(audio, byte_len=6400, sleep_time=0)
    assert recorder.ended.wait(5)
    assert recorder.finals() == ['一']
    assert json.loads(recorder.args('error')[0])['error_code'] == 'SIS.0305'
    assert recorder.names()[-3:] == ['response', 'error', 'end']


@pytest.mark.parametrize('status', [403, 429, 503])
def test_rejected_handshake_status(sis_emulator, make_client, recorder, status):
    body = '{"error_msg":"rejected","error_code":"APIG.1000"}'
    sis_emulator.add_fault('handshake', 'reject_handshake', status=status, body=body)
    client = make_client(recorder)
    with pytest.raises(ClientException) as excinfo:
        client.sentence_stream_connect(request())
    assert_connect_failed(excinfo, 'sentence-stream')
    error = recorder.args('error')[0]
    assert isinstance(error, WebSocketBadStatusException) and error.status_code == status
    assert recorder.names() == ['error', 'close']
    assert len(sis_emulator.connections) == 1
