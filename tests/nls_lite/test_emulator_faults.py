"""Fault injection (§5.9) of the NLS emulator, observed from raw websocket-client connections."""
import json
import socket
import time

import pytest
import websocket

from nls_emu_helpers import RawClient, names, silence



def test_unknown_fault_name_is_rejected(nls_emulator):
    with pytest.raises(ValueError, match='unknown fault'):
        nls_emulator.inject('explode')
    with pytest.raises(ValueError, match='times'):
        nls_emulator.inject('no_started', times=0)


def test_refuse_resets_before_any_http(nls_emulator, clients):
    nls_emulator.inject('refuse')
    with pytest.raises((ConnectionResetError, websocket.WebSocketConnectionClosedException, BrokenPipeError)):
        RawClient(nls_emulator.url)
    record = nls_emulator.wait_for_sessions(1, 5)[0]
    assert record.end_reason == 'refused (fault)' and record.handshake_status is None
    c = clients(nls_emulator)  # times=1: the next connection is served again
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'


def test_reject_handshake_with_status_and_body(nls_emulator):
    nls_emulator.inject('reject_handshake', status=503, body='busy, try later')
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        RawClient(nls_emulator.url)
    assert info.value.status_code == 503 and info.value.resp_body == b'busy, try later'
    assert info.value.resp_headers['content-type'].startswith('text/plain')


def test_reject_handshake_per_token(nls_emulator, clients):
    nls_emulator.add_token('doomed')
    nls_emulator.inject('reject_handshake', token='doomed', status=500,
                        body={'header': {'status': 50000000, 'status_text': 'x'}})
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        RawClient(nls_emulator.url, token='doomed')
    assert info.value.status_code == 500 and json.loads(info.value.resp_body)['header']['status'] == 50000000
    c = clients(nls_emulator)  # other tokens are untouched
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'


def test_hang_handshake_never_answers(nls_emulator):
    nls_emulator.inject('hang_handshake')
    started = time.monotonic()
    with pytest.raises(websocket.WebSocketTimeoutException):
        websocket.create_connection(nls_emulator.url, header=['X-NLS-Token: test-token'], timeout=0.3)
    assert time.monotonic() - started < 3


def test_hang_handshake_for_some_seconds_then_drops(nls_emulator):
    nls_emulator.inject('hang_handshake', seconds=0.2)
    with pytest.raises((websocket.WebSocketException, ConnectionError)):
        websocket.create_connection(nls_emulator.url, header=['X-NLS-Token: test-token'], timeout=5)


def test_no_started(nls_emulator, clients):
    nls_emulator.inject('no_started')
    c = clients(nls_emulator, timeout=0.3)
    c.start()
    with pytest.raises(websocket.WebSocketTimeoutException):
        c.recv()


def test_delay_started_and_completed(nls_emulator, clients):
    nls_emulator.inject('delay', event='started', ms=200)
    nls_emulator.inject('delay', event='completed', ms=200)
    c = clients(nls_emulator)
    t0 = time.monotonic()
    c.start()
    c.recv()
    t1 = time.monotonic()
    c.stop()
    c.recv()
    t2 = time.monotonic()
    assert t1 - t0 >= 0.19 and t2 - t1 >= 0.19


def test_delay_each_reply(nls_emulator, clients):
    nls_emulator.inject('delay', event='each', ms=150)
    c = clients(nls_emulator)
    t0 = time.monotonic()
    c.start()
    c.recv()
    assert time.monotonic() - t0 >= 0.14


@pytest.mark.parametrize('code', [1011, None])
def test_close_mid_stream(nls_emulator, clients, code):
    nls_emulator.inject('close_mid_stream', after_audio_ms=200, code=code, reason='boom')
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.send_audio(silence(100))
    if code is None:
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            c.send_audio(silence(200))
            c.recv()
    else:
        c.send_audio(silence(200))
        assert c.recv_close() == 1011
    record = nls_emulator.wait_for_sessions(1, 5)[0] if code is None else None
    if record is not None:
        assert record.end_reason == 'closed mid-stream (fault)'


def test_close_before_started(nls_emulator, clients):
    nls_emulator.inject('close_before_started')
    c = clients(nls_emulator)
    c.start()
    assert c.recv_close() == 1000


@pytest.mark.parametrize('fault,check', [
    ('malformed_json', lambda raw: raw.startswith('{"header":') and not raw.endswith('}')),
    ('missing_header', lambda raw: raw == '{"payload":{}}'),
    ('unknown_event', lambda raw: json.loads(raw)['header']['name'] == 'UnknownEvent'),
    ('binary_to_asr', lambda raw: raw == b'\x00' * 32),
])
def test_point_faults_after_start(nls_emulator, clients, fault, check):
    nls_emulator.inject(fault)
    c = clients(nls_emulator)
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'
    assert check(c.recv_raw())
    c.stop()  # the session goes on
    assert c.recv()['header']['name'] == 'RecognitionCompleted'


def test_malformed_json_instead_of_completed(nls_emulator, clients):
    nls_emulator.inject('malformed_json', at='instead_of_completed')
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.stop()
    with pytest.raises(ValueError):
        json.loads(c.recv_raw())


def test_fault_at_audio_time(nls_emulator, clients):
    nls_emulator.inject('unknown_event', at='after_audio_ms:300')
    c = clients(nls_emulator, service='transcriber')
    c.start()
    c.recv()
    c.send_audio(silence(200))
    c.send_audio(silence(200))
    assert c.recv()['header']['name'] == 'UnknownEvent'
    assert nls_emulator.sessions[0].fired == ['unknown_event']


@pytest.mark.parametrize('at', ['start', 'audio_ms:100', 'stop'])
def test_send_error(nls_emulator, clients, at):
    nls_emulator.inject('send_error', status=50000001, status_text='Gateway:GRPC_ERROR:oops', at=at)
    c = clients(nls_emulator)
    c.start()
    if at != 'start':
        assert c.recv()['header']['name'] == 'RecognitionStarted'
        c.send_audio(silence(200))
    if at == 'stop':
        c.stop()
    msg = c.recv()
    assert msg['header']['name'] == 'TaskFailed' and msg['header']['status'] == 50000001
    assert msg['header']['status_text'] == 'Gateway:GRPC_ERROR:oops' and msg['header']['task_id'] == c.task_id
    assert c.recv_close() == 1000


def test_send_error_keep_open(nls_emulator, clients):
    nls_emulator.inject('send_error', status=50000000, at='stop', keep_open=True)
    c = clients(nls_emulator, timeout=0.3)
    c.start()
    c.recv()
    c.stop()
    assert c.recv()['header']['status'] == 50000000
    with pytest.raises(websocket.WebSocketTimeoutException):
        c.recv_close()  # no close from the server


def test_no_completed(nls_emulator, clients):
    nls_emulator.inject('no_completed')
    c = clients(nls_emulator, timeout=0.3)
    c.start()
    c.recv()
    c.stop()
    with pytest.raises(websocket.WebSocketTimeoutException):
        c.recv()


def test_ignore_client_close(nls_emulator):
    nls_emulator.inject('ignore_client_close')
    c = RawClient(nls_emulator.url, timeout=0.3)
    try:
        c.start()
        c.recv()
        c.ws.send_close()
        with pytest.raises(websocket.WebSocketTimeoutException):
            c.ws.recv_data(control_frame=True)  # the close reply never comes
    finally:
        c.ws.shutdown()


def test_no_pong(nls_emulator):
    nls_emulator.inject('no_pong')
    c = RawClient(nls_emulator.url, timeout=0.3)
    try:
        c.ws.ping('x')
        with pytest.raises(websocket.WebSocketTimeoutException):
            c.ws.recv_data(control_frame=True)
    finally:
        c.ws.shutdown()


def test_pong_without_fault(nls_emulator, clients):
    c = clients(nls_emulator)
    c.ws.ping('x')
    assert c.ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b'x')


def test_idle_timeout_override_per_session(nls_emulator, clients):
    nls_emulator.inject('idle_timeout_s', seconds=0.2)
    c = clients(nls_emulator)
    assert c.recv()['header']['status'] == 40000004


def test_inband_fault(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(x_emulator_fault={'name': 'send_error', 'status': 40000000, 'at': 'stop'})
    c.recv()
    c.stop()
    assert c.recv()['header']['status'] == 40000000
    assert 'x_emulator_fault' not in nls_emulator.sessions[0].start_payloads[0]


def test_global_fault_until_cleared(nls_emulator, clients):
    nls_emulator.inject('unknown_event', times=None)
    for _ in range(2):
        c = clients(nls_emulator)
        c.start()
        assert names([c.recv(), c.recv()]) == ['RecognitionStarted', 'UnknownEvent']
    nls_emulator.clear_faults()
    c = clients(nls_emulator, timeout=0.3)
    c.start()
    c.recv()
    with pytest.raises(websocket.WebSocketTimeoutException):
        c.recv()


def test_refusing_port_with_nothing_listening():
    # The plain "connection refused" case needs no emulator: a closed port.
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection('ws://127.0.0.1:%d/ws/v1' % port, timeout=2)


def test_idle_counts_pings_knob(nls_emulator, clients):
    nls_emulator.idle_counts_pings = True
    nls_emulator.idle_timeout_s = 1.0
    c = clients(nls_emulator, timeout=3)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # pings keep the session alive past its idle timeout
        c.ws.ping('k')
        assert c.ws.recv_data(control_frame=True)[0] == websocket.ABNF.OPCODE_PONG
        time.sleep(0.1)  # pacing: time must pass for the idle timer, nothing to wait on
    assert c.recv()['header']['status'] == 40000004


def test_inband_idle_timeout(nls_emulator, clients):
    c = clients(nls_emulator)
    t0 = time.monotonic()
    c.start(x_emulator_fault=[{'name': 'idle_timeout_s', 'seconds': 0.2}])
    c.recv()
    assert c.recv()['header']['status'] == 40000004
    assert time.monotonic() - t0 < 5
