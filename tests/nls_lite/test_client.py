"""nls_lite clients against the emulator: the wire as sent, callbacks and their threads, blocking,
reuse, and every fault of the matrix ending in its documented path with exactly one on_close."""
import json
import socket
import threading
import time

import pytest

import nls_lite as nls
from nls_lite import exception

from nls_emu_helpers import chunks
from nls_helpers import RECOGNIZER_CALLBACKS, TRANSCRIBER_CALLBACKS, make_pcm

TOKEN, APPKEY = 'test-token', 'test-appkey'


def recognizer(emu, recorder, **kwargs):
    options = dict(url=emu.url, token=TOKEN, appkey=APPKEY, **recorder.kwargs(*RECOGNIZER_CALLBACKS))
    options.update(kwargs)
    return nls.NlsSpeechRecognizer(**options)


def transcriber(emu, recorder, **kwargs):
    options = dict(url=emu.url, token=TOKEN, appkey=APPKEY, **recorder.kwargs(*TRANSCRIBER_CALLBACKS))
    options.update(kwargs)
    return nls.NlsSpeechTranscriber(**options)


def status_of(message):
    return json.loads(message)['header']['status']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# -- happy paths ---------------------------------------------------------------------------------------

def test_recognizer_session_wire_and_callbacks(nls_emulator, recorder):
    pcm = make_pcm([('tone', 1.0), ('silence', 0.3)])
    sr = recognizer(nls_emulator, recorder, callback_args=['thread0'])
    assert sr.start(aformat='pcm', ex={'hello': 123}) is True
    assert recorder.names() == ['on_start']
    for piece in chunks(pcm, 640):
        assert sr.send_audio(piece) is True
    assert sr.stop() is True
    # on_completed and on_close have both run when stop() returns
    assert recorder.names() == ['on_start', 'on_completed', 'on_close']
    assert recorder.args('on_close') == [('thread0',)]
    message, extra = recorder.args('on_completed')[0]
    assert extra == 'thread0'
    assert json.loads(message)['payload']['result'] == '北京的天气'   # punctuation prediction off
    assert len(recorder.threads()) == 1 and threading.current_thread().name not in recorder.threads()

    record, = nls_emulator.wait_for_sessions(1)
    assert record.token == TOKEN and record.token_source == 'header'
    assert len(record.sec_websocket_keys) == 1
    assert [name for name, _ in record.headers].count('X-NLS-Token') == 1
    assert 'token' not in record.query
    start, stop = record.received
    assert list(start) == ['header', 'payload', 'context']
    assert list(start['header']) == ['message_id', 'task_id', 'namespace', 'name', 'appkey']
    assert start['header']['name'] == 'StartRecognition' and start['header']['appkey'] == APPKEY
    assert start['payload'] == {'format': 'pcm', 'sample_rate': 16000, 'enable_intermediate_result': False,
                                'enable_punctuation_prediction': False,
                                'enable_inverse_text_normalization': False, 'hello': 123}
    assert start['context'] == {'sdk': {'name': 'nls-python-sdk', 'version': '1.1.0', 'language': 'python'}}
    assert list(stop) == ['header', 'context'] and stop['header']['name'] == 'StopRecognition'
    assert stop['header']['task_id'] == start['header']['task_id']
    assert stop['header']['message_id'] != start['header']['message_id']
    assert record.binary_frames == len(chunks(pcm, 640)) and record.binary_bytes == len(pcm)
    assert record.closed_by == 'client' and record.close_code == 1000


def test_transcriber_sentences_partials_and_control(nls_emulator, recorder, two_sentences):
    st = transcriber(nls_emulator, recorder, callback_args=['t1'])
    assert st.start(enable_intermediate_result=True, enable_punctuation_prediction=True,
                    ex={'x_emulator_script': ['今天天气不错。', '明天下雨。']}) is True
    for piece in chunks(two_sentences):
        assert st.send_audio(piece) is True
    # Results are dispatched as they arrive: the first sentence ends while audio is still being sent.
    recorder.wait('on_sentence_end')
    st.ctrl(ex={'test': 'tttt'})
    assert st.stop() is True
    names = recorder.names()
    assert names[0] == 'on_start' and names[-2:] == ['on_completed', 'on_close']
    assert names.count('on_sentence_begin') == 2 and names.count('on_sentence_end') == 2
    assert 'on_result_changed' in names
    ends = [json.loads(args[0])['payload'] for args in recorder.args('on_sentence_end')]
    assert [e['result'] for e in ends] == ['今天天气不错。', '明天下雨。']
    assert all(args[-1] == 't1' for args in recorder.args('on_result_changed'))
    record, = nls_emulator.wait_for_sessions(1)
    control = record.received[1]
    assert control['header']['name'] == 'ControlTranscriber'
    assert control['payload'] == {'ex': {'test': 'tttt'}}
    assert 'x_emulator_script' in record.received[0]['payload']


def test_objects_are_reusable_and_each_start_has_a_new_task_id(nls_emulator, recorder):
    sr = recognizer(nls_emulator, recorder)
    pcm = make_pcm([('tone', 0.3)])
    for _ in range(3):
        assert sr.start() is True
        sr.send_audio(pcm)
        assert sr.stop() is True
    records = nls_emulator.wait_for_sessions(3)
    task_ids = {r.received[0]['header']['task_id'] for r in records}
    assert len(task_ids) == 3 and all(len(t) == 32 for t in task_ids)
    assert recorder.names().count('on_close') == 3


def test_start_while_active_returns_false_and_keeps_the_session(nls_emulator, recorder):
    st = transcriber(nls_emulator, recorder)
    assert st.start() is True
    assert st.start() is False
    assert st.send_audio(make_pcm([('tone', 0.2)])) is True
    assert st.stop() is True
    assert len(nls_emulator.wait_for_sessions(1)) == 1
    assert nls_emulator.open_connections == 0


def test_stop_and_shutdown_from_inside_callbacks_do_not_deadlock(nls_emulator, recorder):
    results = {}

    def on_start(message, *args):
        results['stop'] = st.stop()

    def on_completed(message, *args):
        st.shutdown()
        results['completed'] = True

    st = transcriber(nls_emulator, recorder, on_start=on_start, on_completed=on_completed)
    assert st.start() is True
    recorder.wait('on_close')
    assert results == {'stop': True, 'completed': True}
    assert recorder.names().count('on_close') == 1


def test_raising_callback_is_reported_and_the_session_goes_on(nls_emulator, recorder, monkeypatch):
    reported = []
    monkeypatch.setattr(threading, 'excepthook', lambda args: reported.append(args.exc_value))

    def on_start(message, *args):
        raise RuntimeError('user bug')

    sr = recognizer(nls_emulator, recorder, on_start=on_start)
    assert sr.start() is True
    sr.send_audio(make_pcm([('tone', 0.2)]))
    assert sr.stop() is True
    assert [str(e) for e in reported] == ['user bug']
    assert recorder.names() == ['on_completed', 'on_close']


def test_shutdown_is_idempotent_and_closes_at_once(nls_emulator, recorder):
    st = transcriber(nls_emulator, recorder)
    assert st.start() is True
    st.shutdown()
    st.shutdown()
    assert recorder.names() == ['on_start', 'on_close']
    record, = nls_emulator.wait_for_sessions(1)
    assert record.closed_by == 'client' and record.close_code == 1000
    assert st.send_audio(b'\0\0') is False


def test_context_manager_shuts_down(nls_emulator, recorder):
    with transcriber(nls_emulator, recorder) as st:
        assert st.start() is True
    assert recorder.names() == ['on_start', 'on_close']


def test_seed_sample_timing_pattern_many_small_frames(nls_emulator, recorder):
    """640-byte frames (20 ms) as the vendor samples send them, over one connection."""
    sr = recognizer(nls_emulator, recorder)
    assert sr.start(enable_intermediate_result=True) is True
    pcm = make_pcm([('tone', 1.5), ('silence', 0.2)])
    for piece in chunks(pcm, 640):
        sr.send_audio(piece)
    assert sr.stop() is True
    partials = [json.loads(a[0])['payload']['result'] for a in recorder.args('on_result_changed')]
    assert partials and all('。' not in p for p in partials)
    assert partials == sorted(partials, key=len)


# -- fault matrix --------------------------------------------------------------------------------------

def _one_close_and_no_thread(recorder):
    assert recorder.names().count('on_close') == 1
    assert not [t for t in threading.enumerate() if t.name.startswith('nls-Speech')]


@pytest.mark.parametrize('make', [recognizer, transcriber])
def test_refused_connection(make, recorder):
    class Nowhere(object):
        url = 'ws://127.0.0.1:%d/ws/v1' % free_port()
    client = make(Nowhere, recorder)
    began = time.monotonic()
    assert client.start(timeout=5) is False
    assert time.monotonic() - began < 5
    assert recorder.names() == ['on_error', 'on_close']
    assert status_of(recorder.args('on_error')[0][0]) == 10000015
    _one_close_and_no_thread(recorder)


def test_name_resolution_failure(recorder, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    monkeypatch.setattr(socket, 'getaddrinfo', no_dns)

    class Unknown(object):
        url = 'wss://nls-gateway.invalid/ws/v1'
    sr = recognizer(Unknown, recorder)
    assert sr.start(timeout=5) is False
    assert recorder.names() == ['on_error', 'on_close']
    header = json.loads(recorder.args('on_error')[0][0])['header']
    assert header['status'] == 10000003 and header['status_text'].startswith('SDK:SYS_ERROR:')
    _one_close_and_no_thread(recorder)


def test_rejected_token_passes_the_gateway_status_through(nls_emulator, recorder):
    sr = recognizer(nls_emulator, recorder, token='wrong-token')
    assert sr.start() is False
    assert recorder.names() == ['on_error', 'on_close']
    header = json.loads(recorder.args('on_error')[0][0])['header']
    assert header['status'] == 40000001 and header['name'] == 'TaskFailed'
    assert header['status_text'] == "Meta:ACCESS_DENIED:The token 'wrong-token' is invalid!"
    _one_close_and_no_thread(recorder)


def test_rejected_token_after_upgrade(nls_emulator_factory, recorder):
    emu = nls_emulator_factory(auth_failure_mode='taskfailed')
    sr = recognizer(emu, recorder, token='wrong-token')
    assert sr.start() is False
    assert recorder.names() == ['on_error', 'on_close']
    assert status_of(recorder.args('on_error')[0][0]) == 40000001


def test_handshake_rejected_with_a_plain_body(nls_emulator, recorder):
    nls_emulator.inject('reject_handshake', status=503, body='upstream down', content_type='text/plain')
    st = transcriber(nls_emulator, recorder)
    assert st.start() is False
    header = json.loads(recorder.args('on_error')[0][0])['header']
    assert header['status'] == 503
    assert header['status_text'].startswith('SDK:HANDSHAKE_REJECTED:HTTP 503 Service Unavailable')
    assert 'upstream down' in header['status_text']
    _one_close_and_no_thread(recorder)


def test_tls_failure_reaches_on_error(nls_emulator, recorder):
    sr = recognizer(nls_emulator, recorder, url=nls_emulator.url.replace('ws://', 'wss://'))
    assert sr.start(timeout=5) is False
    assert status_of(recorder.args('on_error')[0][0]) == 10000002
    _one_close_and_no_thread(recorder)


def test_hanging_handshake_times_out_with_the_callers_timeout(nls_emulator, recorder):
    nls_emulator.inject('hang_handshake')
    sr = recognizer(nls_emulator, recorder)
    began = time.monotonic()
    with pytest.raises(exception.ConnectionTimeout, match='^Wait response timeout! Please check local network!$'):
        sr.start(timeout=0.5)
    assert time.monotonic() - began < 3
    assert recorder.names() == ['on_close']
    _one_close_and_no_thread(recorder)


def test_never_started_raises_and_closes(nls_emulator, recorder):
    nls_emulator.inject('no_started')
    st = transcriber(nls_emulator, recorder)
    with pytest.raises(exception.StartTimeoutException, match=r'^Waiting Start over 0\.5s$'):
        st.start(timeout=0.5)
    assert recorder.names() == ['on_close']
    record, = nls_emulator.wait_for_sessions(1)
    assert record.closed_by == 'client'
    _one_close_and_no_thread(recorder)


def test_task_failed_on_start(nls_emulator, recorder):
    nls_emulator.inject('send_error', status=40000003, status_text='Gateway:PARAMETER_INVALID:bad', at='start')
    sr = recognizer(nls_emulator, recorder)
    assert sr.start() is False
    assert recorder.names() == ['on_error', 'on_close']
    assert json.loads(recorder.args('on_error')[0][0])['header']['status_text'] == 'Gateway:PARAMETER_INVALID:bad'
    _one_close_and_no_thread(recorder)


def test_gateway_validation_error_is_delivered_verbatim(nls_emulator, recorder):
    sr = recognizer(nls_emulator, recorder)
    assert sr.start(sample_rate=44100) is False
    message = recorder.args('on_error')[0][0]
    assert status_of(message) == 40000003
    record, = nls_emulator.wait_for_sessions(1)
    assert message in record.sent


def test_close_mid_stream_transcriber(nls_emulator, recorder):
    nls_emulator.inject('close_mid_stream', after_audio_ms=300, code=1011)
    st = transcriber(nls_emulator, recorder)
    assert st.start() is True
    for piece in chunks(make_pcm([('tone', 2.0)])):
        if st.send_audio(piece) is False:
            break
    recorder.wait('on_close')
    names = recorder.names()
    assert names[0] == 'on_start' and names[-2:] == ['on_error', 'on_close'] and 'on_completed' not in names
    header = json.loads(recorder.args('on_error')[0][0])['header']
    assert header['status'] == 10000105 and '1011' in header['status_text']
    assert st.send_audio(b'\0\0') is False
    assert st.stop() is False
    _one_close_and_no_thread(recorder)


def test_dropped_tcp_mid_stream_recognizer(nls_emulator, recorder):
    nls_emulator.inject('close_mid_stream', after_audio_ms=100, code=None)
    sr = recognizer(nls_emulator, recorder)
    assert sr.start() is True
    failures = []
    for piece in chunks(make_pcm([('tone', 1.0)])):
        try:
            sr.send_audio(piece)
        except (exception.NotStartException, exception.ConnectionUnavailable, ConnectionResetError) as exc:
            failures.append(exc)
            break
    recorder.wait('on_close')
    # Reported once: through on_error when the receive thread saw it first, else by the exception.
    reports = recorder.names().count('on_error') + len(failures)
    assert reports >= 1
    assert recorder.names().count('on_close') == 1


def test_malformed_json_ends_the_session_through_on_error(nls_emulator, recorder):
    nls_emulator.inject('malformed_json', at='after_start')
    st = transcriber(nls_emulator, recorder)
    st.start()
    recorder.wait('on_close')
    assert recorder.names()[-2:] == ['on_error', 'on_close']
    assert status_of(recorder.args('on_error')[0][0]) == 10000106
    _one_close_and_no_thread(recorder)


def test_missing_header_ends_the_session_through_on_error(nls_emulator, recorder):
    nls_emulator.inject('missing_header', at='after_start')
    st = transcriber(nls_emulator, recorder)
    st.start()
    recorder.wait('on_close')
    assert status_of(recorder.args('on_error')[0][0]) == 10000106


def test_unknown_event_and_binary_frames_are_ignored(nls_emulator, recorder, caplog):
    nls_emulator.inject('unknown_event', at='after_start')
    nls_emulator.inject('binary_to_asr', at='after_start')
    sr = recognizer(nls_emulator, recorder)
    assert sr.start() is True
    sr.send_audio(make_pcm([('tone', 0.3)]))
    assert sr.stop() is True
    assert recorder.names() == ['on_start', 'on_completed', 'on_close']
    assert 'cannot handle cmd' in caplog.text


def test_stop_timeout_closes_the_connection(nls_emulator, recorder):
    nls_emulator.inject('no_completed')
    sr = recognizer(nls_emulator, recorder)
    assert sr.start() is True
    sr.send_audio(make_pcm([('tone', 0.2)]))
    with pytest.raises(exception.StopTimeoutException, match=r'^Waiting stop over 0\.5s$'):
        sr.stop(timeout=0.5)
    assert recorder.names() == ['on_start', 'on_close']
    record, = nls_emulator.wait_for_sessions(1)
    assert record.closed_by == 'client'
    _one_close_and_no_thread(recorder)


def test_server_ignoring_our_close_is_cut_off_within_the_bound(nls_emulator, recorder):
    nls_emulator.inject('ignore_client_close')
    st = transcriber(nls_emulator, recorder)
    assert st.start() is True
    began = time.monotonic()
    st.shutdown()
    assert time.monotonic() - began < 5
    assert recorder.names() == ['on_start', 'on_close']


def test_ping_timeout_reaches_on_error(nls_emulator, recorder):
    # The server stops reading at once, so it never sees Start: the unanswered ping ends the session.
    nls_emulator.inject('no_pong')
    st = transcriber(nls_emulator, recorder)
    began = time.monotonic()
    assert st.start(ping_interval=0.3, ping_timeout=0.2, timeout=10) is False
    assert time.monotonic() - began < 5
    assert recorder.names() == ['on_error', 'on_close']
    assert status_of(recorder.args('on_error')[0][0]) == 10000102


def test_idle_timeout_from_the_gateway(nls_emulator_factory, recorder):
    emu = nls_emulator_factory(idle_timeout_s=0.3)
    st = transcriber(emu, recorder)
    assert st.start() is True
    recorder.wait('on_close')
    header = json.loads(recorder.args('on_error')[0][0])['header']
    assert header['status'] == 40000004
    assert header['status_text'].endswith("the last directive is 'StartTranscription'!")
