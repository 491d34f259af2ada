"""The fault matrix: every failure ends in on_error with the documented result, one on_close,
bounded time and no thread or socket left behind (the suite's leak guard checks the last two)."""
import socket
import threading
import time

import pytest

from dashscope_asr.audio.asr import Recognition
from dashscope_asr.common.error import InvalidParameter

from dsasr_helpers import SAMPLE_WAV, Recorder, frames

UNEXPECTED = "Error type: <class 'dashscope_asr.common.error.UnexpectedMessageReceived'>, message: "


def fast(recognition, timeout_s=0.5):
    """Short client timeouts: 0.5 s where a test waits for one to expire, 5 s elsewhere (a loaded
    machine must not turn a normal session into a timeout)."""
    recognition.START_TIMEOUT_S = timeout_s
    recognition.FINISH_TIMEOUT_S = timeout_s
    return recognition


def run_stream(cb, n_frames=10, frame=None, timeout_s=5.0, **kwargs):
    """start, send, stop: returns (recognition, seconds stop() took)."""
    r = fast(Recognition('paraformer-realtime-v2', cb, 'pcm', 16000, **kwargs), timeout_s)
    r.start()
    chunk = frame if frame is not None else b'\0' * 3200
    try:
        for _ in range(n_frames):
            r.send_audio_frame(chunk)
    except InvalidParameter:
        pass  # the session already failed: the documented state after on_error
    began = time.monotonic()
    try:
        r.stop()
    except InvalidParameter:
        pass
    assert cb.closed.wait(10)
    return r, time.monotonic() - began


def assert_error_path(cb, status, code, message=None, startswith=None):
    assert cb.errored.is_set()
    assert cb.lifecycle()[-2:] == ['on_error', 'on_close']
    assert cb.close_count == 1
    err = cb.errors[0]
    assert (err.status_code, err.code) == (status, code)
    assert err.output is None and err.usage is None and err.usages is None
    if message is not None:
        assert err.message == message
    if startswith is not None:
        assert err.message.startswith(startswith), err.message
    assert 'on_complete' not in cb.calls
    return err


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused(configured):
    configured.api_key = 'k'
    configured.base_websocket_api_url = 'ws://127.0.0.1:%d/api-ws/v1/inference' % closed_port()
    cb = Recorder()
    run_stream(cb)
    err = assert_error_path(cb, -1, 'ClientConnectorError')
    assert err.message.startswith('Cannot connect to host 127.0.0.1:')
    assert 'ssl:None' in err.message and err.request_id == ''
    result = Recognition('m', None, 'wav', 16000).call(SAMPLE_WAV)
    assert (result.status_code, result.code) == (-1, 'ClientConnectorError')


@pytest.fixture
def mute_server(configured):
    """A TCP listener that never answers the WebSocket handshake."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    configured.api_key = 'k'
    configured.base_websocket_api_url = ('ws://127.0.0.1:%d/api-ws/v1/inference'
                                         % listener.getsockname()[1])
    yield listener
    listener.close()  # resets connections still queued: their connect() ends


def test_handshake_timeout_is_request_timeout(mute_server):
    cb = Recorder()
    _, took = run_stream(cb, request_timeout=0.5)
    assert_error_path(cb, -1, 'Unknown', startswith="Error type: <class 'TimeoutError'>, message: "
                      'Connection timeout to host 127.0.0.1:')
    assert took < 5


def test_stop_timeout_while_connecting(mute_server):
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000, request_timeout=30)
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    began = time.monotonic()
    r.stop(timeout=0.3)
    assert time.monotonic() - began < 3
    assert_error_path(cb, -1, 'Unknown', startswith="Error type: <class 'TimeoutError'>, message: "
                      'stop() did not complete within 0.3 s')
    mute_server.close()  # the sender, still inside connect(), ends now (leak guard checks)


def test_connection_reset_at_accept(emu, caplog):
    emu.inject('refuse')
    cb = Recorder()
    run_stream(cb)
    err = assert_error_path(cb, -1, 'Unknown')
    assert err.message.startswith('Error type: <class ')
    assert not [r for r in caplog.records if r.name.startswith('dashscope_asr.emulator')
                and r.levelname == 'ERROR']


@pytest.mark.parametrize('status', [401, 403])
def test_handshake_rejected_for_a_bad_key(emu, status):
    emu.knobs['auth_failure_status'] = status
    emu.api_keys = {'another-key'}
    cb = Recorder()
    run_stream(cb)
    err = assert_error_path(cb, status, status, 'Unauthorized, your api-key is invalid!')
    assert err.request_id is None
    result = Recognition('m', None, 'wav', 16000).call(SAMPLE_WAV)
    assert (result.status_code, result.message) == (status, 'Unauthorized, your api-key is invalid!')


def test_unknown_workspace_is_refused_when_workspaces_are_configured(emu):
    emu.knobs['workspaces'] = {'ws-good'}
    ok = Recognition('m', None, 'wav', 16000, workspace='ws-good').call(SAMPLE_WAV)
    bad = Recognition('m', None, 'wav', 16000, workspace='ws-other').call(SAMPLE_WAV)
    assert ok.status_code == 200
    assert (bad.status_code, bad.code) == (403, 403)


@pytest.mark.parametrize('status, message', [
    (503, 'Service temporarily unavailable, possibly overloaded or not ready.'),
    (429, 'Invalid response status')])
def test_handshake_rejected_by_the_server(emu, status, message):
    emu.inject('reject:%d' % status)
    cb = Recorder()
    run_stream(cb)
    assert_error_path(cb, status, status, message)


def test_never_task_started_times_out(emu):
    emu.inject('no_task_started')
    cb = Recorder()
    _, took = run_stream(cb, timeout_s=0.5)
    assert_error_path(cb, -1, 'Unknown',
                      "Error type: <class 'TimeoutError'>, message: No task-started within 0.5 s")
    assert took < 5


def test_never_task_finished_times_out(emu):
    emu.inject('no_task_finished')
    cb = Recorder()
    _, took = run_stream(cb, timeout_s=0.5)
    assert_error_path(cb, -1, 'Unknown', startswith="Error type: <class 'TimeoutError'>, message: "
                      'No server message within 0.5 s after finish-task')
    assert took < 5


def test_call_bounded_when_task_never_starts(emu):
    emu.inject('no_task_started')
    result = fast(Recognition('m', None, 'wav', 16000)).call(SAMPLE_WAV)
    assert (result.status_code, result.code) == (-1, 'Unknown')
    assert 'TimeoutError' in result.message


def test_stop_timeout_argument(emu):
    emu.inject('no_task_finished')
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)  # default 30 s finish timeout; stop(timeout) cuts it
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    began = time.monotonic()
    r.stop(timeout=0.3)
    assert time.monotonic() - began < 5
    assert_error_path(cb, -1, 'Unknown', startswith="Error type: <class 'TimeoutError'>")


def test_task_failed_mid_stream(emu):
    emu.inject('task_failed:InvalidParameter:bad things', at='after_audio_ms:300')
    cb = Recorder()
    r, _ = run_stream(cb)
    err = assert_error_path(cb, 44, 'InvalidParameter', 'bad things')
    assert err.request_id == r.get_last_request_id()
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')


def test_task_failed_from_bad_parameters(emu):
    cb = Recorder()
    run_stream(cb, max_sentence_silence=50)
    assert_error_path(cb, 44, 'InvalidParameter', 'max_sentence_silence must be in [200, 6000]')


def test_task_failed_without_error_fields(emu):
    emu.inject('task_failed_bare')
    cb = Recorder()
    run_stream(cb)
    err = assert_error_path(cb, 44, None)
    assert err.message is None


def test_server_silence_limit(emu):
    emu.knobs['task_idle_timeout_s'] = 0.3
    cb = Recorder()
    r = fast(Recognition('m', cb, 'pcm', 16000), 5.0)
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    assert cb.closed.wait(10)
    assert_error_path(cb, 44, 'CLIENT_ERROR', 'request timeout after 0.3 seconds.')
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')


@pytest.mark.parametrize('fault', ['close:1011:going away', 'drop'])
def test_connection_lost_mid_stream(emu, fault):
    emu.inject(fault, at='after_audio_ms:200')
    cb = Recorder()
    run_stream(cb)
    assert_error_path(cb, -1, 'Unknown', UNEXPECTED + 'Receive unexpected websocket close message, '
                      'details: WSMsgType.CLOSE, data: None, extra: None')


@pytest.mark.parametrize('fault, message', [
    ('malformed', "Error type: <class 'json.decoder.JSONDecodeError'>, message: Expecting value"),
    ('no_header', "Error type: <class 'KeyError'>, message: 'header'"),
    ('binary', UNEXPECTED + 'Receive unexpected binary message'),
    ('unknown_event:error', "Error type: <class 'dashscope_asr.common.error.UnknownMessageReceived'>"
                            ", message: Receive unknown message: {'header'"),
])
def test_malformed_server_messages(emu, fault, message):
    emu.inject(fault)
    cb = Recorder()
    run_stream(cb)
    assert_error_path(cb, -1, 'Unknown', startswith=message)


def test_call_returns_error_results(emu):
    emu.inject('task_failed:NO_VALID_AUDIO_ERROR:x', at='after_results:1')
    result = Recognition('m', None, 'wav', 16000).call(SAMPLE_WAV)
    assert (result.status_code, result.code, result.message) == (44, 'NO_VALID_AUDIO_ERROR', 'x')
    assert result.output is None and result.get_sentence() is None


def test_zero_audio_is_no_valid_audio_error(emu):
    cb = Recorder()
    run_stream(cb, n_frames=0)
    assert_error_path(cb, 44, 'NO_VALID_AUDIO_ERROR', 'No valid audio data received.')


def test_raising_callback_is_reported_and_dispatch_continues(emu, sample_bytes, monkeypatch):
    reported = []
    monkeypatch.setattr(threading, 'excepthook', reported.append)
    cb = Recorder(raise_in='on_event')
    r = Recognition('m', cb, 'wav', 16000)
    r.start()
    for chunk in frames(sample_bytes):
        r.send_audio_frame(chunk)
    r.stop()
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']
    assert len(cb.finals()) == 2  # later events still delivered
    assert reported and all(isinstance(a.exc_value, RuntimeError) for a in reported)
    assert reported[0].thread.name.startswith('dashscope_asr-callback-')


def test_system_exit_in_on_error_ends_dispatch_quietly(emu):
    class Exiting(Recorder):
        def on_error(self, result):
            Recorder.on_error(self, result)
            raise SystemExit(1)

    emu.inject('task_failed:X:y')
    cb = Exiting()
    r = fast(Recognition('m', cb, 'pcm', 16000), 5.0)
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    assert cb.errored.wait(10)
    # the session is torn down (the leak guard checks threads and sockets); no on_close follows
    assert cb.lifecycle() == ['on_open', 'on_error']


def test_empty_task_finished_still_completes_once(emu):
    emu.inject('empty_task_finished')
    cb = Recorder()
    run_stream(cb)
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_finished_flag_then_task_finished_completes_once(emu):
    emu.inject('finished_flag')
    cb = Recorder()
    run_stream(cb)
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_result_without_output_is_ignored_and_without_sentence_is_an_event(emu):
    emu.script_next([])
    emu.inject('result_without_output')
    emu.inject('result_without_sentence')
    cb = Recorder()
    run_stream(cb)
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']
    assert cb.results[0].output is None and cb.results[0].get_sentence() is None


def test_results_arrive_while_task_started_is_delayed(emu):
    emu.inject('delay:300')  # task-started 300 ms late: audio is held, then flushed in order
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    r.start()
    for _ in range(5):
        r.send_audio_frame(b'\0' * 3200)
    r.stop()
    assert emu.records[-1].binary_lengths() == [3200] * 5
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


@pytest.fixture
def tls_emulator(tmp_path, configured):
    import shutil
    import ssl
    import subprocess
    from dashscope_asr.emulator import Emulator
    if not shutil.which('openssl'):
        pytest.skip('openssl not installed')
    cert, key = str(tmp_path / 'cert.pem'), str(tmp_path / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                    '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1'], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Emulator(ssl_context=context, default_sentences=['加密。']) as emu:
        emu.apply_to(configured)
        yield emu, cert


def test_tls_is_verified_by_default(tls_emulator, monkeypatch):
    emu, cert = tls_emulator
    assert emu.ws_url.startswith('wss://')
    monkeypatch.delenv('WEBSOCKET_CLIENT_CA_BUNDLE', raising=False)
    cb = Recorder()
    run_stream(cb)
    err = assert_error_path(cb, -1, 'ClientConnectorError')
    assert 'ssl:default' in err.message and 'CERTIFICATE_VERIFY_FAILED' in err.message
    # trusted through websocket-client's CA bundle variable, the same server works
    monkeypatch.setenv('WEBSOCKET_CLIENT_CA_BUNDLE', cert)
    result = Recognition('m', None, 'wav', 16000).call(SAMPLE_WAV)
    assert [s['text'] for s in result.get_sentence()] == ['加密。']
