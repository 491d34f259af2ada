"""Recognition against the emulator: call(), streaming callbacks, wire frames, kwargs, getters."""
import json
import threading
import time
from http import HTTPStatus

import pytest

from dashscope_asr.audio.asr import Recognition, RecognitionCallback, RecognitionResult
from dashscope_asr.common.error import (AuthenticationError, InputDataRequired, InputRequired,
                                        InvalidParameter, ModelRequired)

from dsasr_helpers import SAMPLE_WAV, SCRIPT, Recorder, frames


def run_task_of(record):
    return json.loads(record.texts()[0])


def stream(rec, data, size=3200):
    for chunk in frames(data, size):
        rec.send_audio_frame(chunk)


def test_call_returns_final_sentences(emu):
    r = Recognition('paraformer-realtime-v2', None, 'wav', 16000)
    result = r.call(SAMPLE_WAV)
    assert result.status_code == HTTPStatus.OK
    assert [s['text'] for s in result.get_sentence()] == SCRIPT
    assert all(RecognitionResult.is_sentence_end(s) for s in result.get_sentence())
    assert result.request_id == r.get_last_request_id() and len(result.request_id) == 32
    assert (result.code, result.message) == ('', '')
    assert result.usage == {'duration': 6}
    assert result.get_usage(result.get_sentence()[-1]) == {'duration': 6}
    assert result['output']['sentence'][0]['words'][0]['text'] == '北'
    assert r.get_first_package_delay() > 0 and r.get_last_package_delay() > 0
    # the file goes out raw (WAV header included) in 12 800-byte chunks, then finish-task
    record = emu.records[-1]
    with open(SAMPLE_WAV, 'rb') as f:
        size = len(f.read())
    lengths = record.binary_lengths()
    assert sum(lengths) == size and lengths[0] == 12800
    assert record.actions() == ['run-task', 'finish-task']
    # str() works (the vendor's 2.0.2 raises) and is the <=1.25 JSON
    assert list(json.loads(str(result))) == ['status_code', 'request_id', 'code', 'message',
                                             'output', 'usage']


def test_call_with_nothing_recognised_has_no_output(emu):
    emu.script_next([])
    result = Recognition('paraformer-realtime-v2', None, 'wav', 16000).call(SAMPLE_WAV)
    assert result.status_code == HTTPStatus.OK
    assert result.output is None and result.get_sentence() is None


def test_call_argument_errors(emu, tmp_path):
    r = Recognition('m', None, 'pcm', 16000)
    with pytest.raises(FileNotFoundError) as e:
        r.call(str(tmp_path / 'missing.wav'))
    assert e.value.args == ('No such file or directory: ' + str(tmp_path / 'missing.wav'),)
    with pytest.raises(IsADirectoryError, match='Is a directory: '):
        r.call(str(tmp_path))
    empty = tmp_path / 'empty.pcm'
    empty.write_bytes(b'')
    with pytest.raises(InputDataRequired, match=r'The supplied file was empty \(zero bytes long\)'):
        r.call(str(empty))
    assert emu.records == []  # nothing touched the network
    assert r.call(SAMPLE_WAV).status_code == 200  # and the instance is still usable


def test_constructor_validation():
    with pytest.raises(ModelRequired, match='Model is required!'):
        Recognition(None, None, 'pcm', 16000)
    with pytest.raises(InputRequired, match='format is required!'):
        Recognition('m', None, None, 16000)
    with pytest.raises(InputRequired, match='sample_rate is required!'):
        Recognition('m', None, 'pcm', None)
    with pytest.raises(AssertionError, match='Please set the callback'):
        Recognition('m', None, 'pcm', 16000).start()


def test_streaming_callback_order_and_threads(emu, sample_bytes):
    cb = Recorder()
    r = Recognition('paraformer-realtime-v2', cb, 'wav', 16000)
    r.start()
    assert cb.calls == ['on_open']  # synchronously, before any network I/O
    stream(r, sample_bytes)
    r.stop()
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']
    assert cb.finals() == SCRIPT
    main = threading.current_thread().name
    assert cb.threads['on_open'] == main and cb.threads['on_close'] == main
    assert cb.threads['on_event'].startswith('dashscope_asr-callback-')
    assert cb.threads['on_complete'] == cb.threads['on_event']
    partial = cb.results[0]
    assert partial.get_sentence()['end_time'] is None and partial.usage is None
    final = [x for x in cb.results if x.is_sentence_end(x.get_sentence())][0]
    assert final.usages == [{'end_time': final.get_sentence()['end_time'],
                             'usage': final.usage}]
    assert final.get_request_id() == r.get_last_request_id()
    assert isinstance(final.get_sentence(), dict)
    assert r.get_first_package_delay() > 0 and r.get_last_package_delay() >= 0
    # one binary frame per send_audio_frame, in order
    assert emu.records[-1].binary_lengths() == [len(c) for c in frames(sample_bytes)]
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.stop()


def test_result_reaches_on_event_while_caller_is_not_sending(emu):
    # The emulator answers 300 ms after the audio that triggers the result; the caller has sent
    # its last frame by then and is blocked on the event, not in send_audio_frame.
    emu.knobs['result_delay_ms'] = 300
    emu.script_next([{'text': '你好', 'begin_time': 0, 'end_time': 100}])
    cb = Recorder()
    r = Recognition('paraformer-realtime-v2', cb, 'pcm', 16000)
    r.start()
    r.send_audio_frame(b'\0' * 6400)  # 200 ms
    sent_at = time.monotonic()
    assert cb.final_event.wait(5)
    assert time.monotonic() - sent_at >= 0.25
    assert cb.finals() == ['你好']
    r.stop()
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_wire_kwargs_phrase_and_headers(emu, monkeypatch):
    monkeypatch.setenv('DASHSCOPE_DISABLE_DATA_INSPECTION', 'false')
    cb = Recorder()
    r = Recognition('paraformer-realtime-v2', cb, 'pcm', 16000, workspace='ws1',
                    language_hints=['zh'], semantic_punctuation_enabled=False, dropped=None,
                    disfluency_removal_enabled=True, headers={'X-Extra': '1', 'user-agent': 'app/1'},
                    user_agent='suffix')
    r.start(phrase_id='phrase-1', vocabulary_id='vocab-x', heartbeat=True)
    r.send_audio_frame(b'\0' * 3200)
    r.stop()
    record = emu.records[-1]
    frame = record.texts()[0]
    assert frame == (
        '{"header": {"streaming": "duplex", "task_id": "%s", "action": "run-task"}, "payload": '
        '{"model": "paraformer-realtime-v2", "parameters": {"sample_rate": 16000, "format": "pcm", '
        '"language_hints": ["zh"], "semantic_punctuation_enabled": false, '
        '"disfluency_removal_enabled": true, "vocabulary_id": "vocab-x", "heartbeat": true}, '
        '"input": {}, "task": "asr", "task_group": "audio", "function": "recognition", '
        '"resources": [{"resource_id": "phrase-1", "resource_type": "asr_phrase"}]}}'
        % r.get_last_request_id())
    assert record.header('Authorization') == 'Bearer sk-…ator'  # masked in the record
    ua = record.header('user-agent')
    assert ua.startswith('dashscope/2.0.2; python/') and ua.endswith('; app/1; suffix')
    assert record.header('X-DashScope-WorkSpace') == 'ws1'
    assert record.header('X-DashScope-DataInspection') == 'enable'
    assert record.header('x-dashscope-sdk-client') == 'python-sdk/2.0.2/audio'
    assert record.header('X-Extra') == '1'
    assert record.header('Origin') is None
    assert json.loads(record.texts()[-1])['header']['action'] == 'finish-task'


def test_no_kwargs_leak_and_fresh_task_id_per_session(emu):
    cb = Recorder()
    r = Recognition('paraformer-realtime-v2', cb, 'pcm', 16000, base_param=1)
    first_id = r.get_last_request_id()
    r.start(phrase_id='p1', once=True)
    r.send_audio_frame(b'\0' * 3200)
    r.stop()
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    r.stop()
    one, two = (run_task_of(rec) for rec in emu.records[-2:])
    assert one['header']['task_id'] == first_id
    assert two['header']['task_id'] == r.get_last_request_id() != first_id
    assert one['payload']['parameters'] == {'sample_rate': 16000, 'format': 'pcm',
                                            'base_param': 1, 'once': True}
    assert two['payload']['parameters'] == {'sample_rate': 16000, 'format': 'pcm',
                                            'base_param': 1}
    assert 'resources' in one['payload'] and 'resources' not in two['payload']
    # a constructor phrase_id is a parameter, not a resource
    r = Recognition('m', None, 'wav', 16000, phrase_id='ctor')
    r.call(SAMPLE_WAV)
    payload = run_task_of(emu.records[-1])['payload']
    assert payload['parameters']['phrase_id'] == 'ctor' and 'resources' not in payload


def test_update_context_is_a_continue_task_in_order(emu):
    cb = Recorder()
    r = Recognition('fun-asr-realtime', cb, 'pcm', 16000)
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    r.update_context({'context': ['阿里云']})
    r.send_audio_frame(b'\0' * 3200)
    with pytest.raises(InvalidParameter, match='Context is required.'):
        r.update_context(None)
    r.stop()
    record = emu.records[-1]
    kinds = [(f.kind, (f.json or {}).get('header', {}).get('action')) for f in record.received]
    assert kinds == [('text', 'run-task'), ('binary', None), ('text', 'continue-task'),
                     ('binary', None), ('text', 'finish-task')]
    assert json.loads(record.texts()[1])['payload'] == {'input': {'context': ['阿里云']}}


def test_send_audio_frame_arguments(emu):
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')
    r.start()
    with pytest.raises(InvalidParameter, match='Speech recognition has started.'):
        r.start()
    with pytest.raises(TypeError):
        r.send_audio_frame('text')
    r.send_audio_frame(b'')                    # skipped
    r.send_audio_frame(bytearray(320))
    r.send_audio_frame(memoryview(b'\0' * 640))
    r.stop()
    assert emu.records[-1].binary_lengths() == [320, 640]


def test_delay_getters_are_minus_one_when_unknown():
    r = Recognition('m', None, 'pcm', 16000)
    assert r.get_first_package_delay() == -1 and r.get_last_package_delay() == -1
    assert len(r.get_last_request_id()) == 32


def test_setup_errors_reach_the_caller_before_on_open(configured, recorder, monkeypatch):
    configured.api_key = None
    configured.api_key_file_path = None
    r = Recognition('m', recorder, 'pcm', 16000)
    with pytest.raises(AuthenticationError, match='No api key provided'):
        r.start()
    with pytest.raises(AuthenticationError):
        r.call(SAMPLE_WAV)
    configured.api_key = 'k'
    with pytest.raises(ModelRequired):
        Recognition('', recorder, 'pcm', 16000).start()
    configured.base_websocket_api_url = 'wss://{workspace_id}.x/api-ws/v1/inference'
    monkeypatch.delenv('DASHSCOPE_WORKSPACE_ID', raising=False)
    with pytest.raises(InputRequired, match='no workspace id is available'):
        r.start()
    with pytest.raises(ValueError, match='Invalid workspace_id'):
        Recognition('m', recorder, 'pcm', 16000, workspace='bad id!').start()
    assert recorder.calls == []
    # still usable afterwards
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.stop()


def test_on_open_raising_aborts_cleanly(emu):
    cb = Recorder(raise_in='on_open')
    r = Recognition('m', cb, 'pcm', 16000)
    with pytest.raises(RuntimeError, match='boom in on_open'):
        r.start()
    with pytest.raises(InvalidParameter):
        r.send_audio_frame(b'\0\0')
    assert emu.records == []


def test_silence_auto_stop_ends_with_on_close(emu):
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    r.SILENCE_TIMEOUT_S = 0.3
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    assert cb.closed.wait(10)
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']
    assert cb.threads['on_close'].startswith('dashscope_asr-callback-')
    assert emu.records[-1].actions() == ['run-task', 'finish-task']
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.stop()


def test_stop_from_inside_a_callback(emu, sample_bytes):
    class StopOnFinal(Recorder):
        def on_event(self, result):
            Recorder.on_event(self, result)
            if result.is_sentence_end(result.get_sentence()) and not hasattr(self, 'stopped'):
                self.stopped = True
                recognition.stop()

    cb = StopOnFinal()
    recognition = Recognition('m', cb, 'wav', 16000)
    recognition.start()
    stream(recognition, sample_bytes)
    assert cb.closed.wait(10)
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']
    assert cb.close_count == 1
    assert cb.threads['on_close'].startswith('dashscope_asr-callback-')


def test_heartbeat_results_are_not_events(emu):
    emu.script_next([])
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000, heartbeat=True)
    r.start()
    for _ in range(12):
        r.send_audio_frame(b'\0' * 3200)  # 1.2 s of silence: one heartbeat from the emulator
    r.stop()
    sent = [f.json for f in emu.records[-1].sent if f.json['header']['event'] == 'result-generated']
    assert any(m['payload']['output']['sentence']['heartbeat'] for m in sent)
    assert cb.results == []


def test_callback_base_class_hooks_are_no_ops():
    cb = RecognitionCallback()
    assert cb.on_open() is None and cb.on_complete() is None and cb.on_close() is None
    assert cb.on_event(None) is None and cb.on_error(None) is None


def test_porting_import_surface():
    import dashscope_asr as dashscope
    namespace = {}
    exec('from dashscope_asr.audio.asr import *', namespace)
    assert 'Recognition' in namespace and 'VocabularyServiceException' in namespace
    from dashscope_asr.audio.asr.recognition import RecognitionCallback as RC
    assert RC is RecognitionCallback
    assert dashscope.audio.asr.Transcription is dashscope.Transcription
    assert set(dashscope.audio.asr.__all__) == {
        'Recognition', 'RecognitionCallback', 'RecognitionResult', 'Transcription',
        'VocabularyService', 'VocabularyServiceException'}
    assert Recognition.SILENCE_TIMEOUT_S == 23 and Recognition.START_TIMEOUT_S == 10
    assert Recognition.FINISH_TIMEOUT_S == 30


def test_keepalive_pings_while_idle(emu, monkeypatch):
    import websocket
    from dashscope_asr import _connection
    pings = []
    original = websocket.WebSocket.ping

    def counting_ping(self, payload=''):
        pings.append(1)
        return original(self, payload)

    monkeypatch.setattr(_connection, 'PING_INTERVAL_S', 0.02)
    monkeypatch.setattr(websocket.WebSocket, 'ping', counting_ping)
    emu.knobs['result_delay_ms'] = 300
    emu.script_next([{'text': '你好', 'begin_time': 0, 'end_time': 100}])
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    r.start()
    r.send_audio_frame(b'\0' * 6400)
    assert cb.final_event.wait(5)  # idle meanwhile: pings go out, pongs come back
    r.stop()
    assert pings and cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_forced_urls_win_over_hard_coded_ones(emu, configured, monkeypatch):
    from dashscope_asr.audio.asr import Transcription
    monkeypatch.setenv('DASHSCOPE_ASR_FORCE_WEBSOCKET_URL', emu.ws_url)
    monkeypatch.setenv('DASHSCOPE_ASR_FORCE_HTTP_URL', emu.http_url)
    configured.base_websocket_api_url = 'wss://dashscope.aliyuncs.com/api-ws/v1/inference'
    configured.base_http_api_url = 'https://dashscope.aliyuncs.com/api/v1'
    result = Recognition('m', None, 'wav', 16000).call(SAMPLE_WAV)
    assert result.status_code == HTTPStatus.OK
    assert Transcription.async_call('paraformer-v2', ['https://x/a.wav']).status_code == 200


def test_start_fails_cleanly_when_threads_cannot_start(emu, monkeypatch):
    from dashscope_asr import _connection

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_connection.Session, 'start', refuse)
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        r.start()
    assert cb.lifecycle() == ['on_open']
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0\0')


def test_restart_after_an_error_like_live_caption_apps(emu):
    emu.inject('task_failed:CLIENT_ERROR:request timeout after 23 seconds.')
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    r.start()
    assert cb.closed.wait(10)
    with pytest.raises(InvalidParameter, match='Speech recognition has stopped.'):
        r.send_audio_frame(b'\0' * 3200)
    cb2 = Recorder()
    r._callback = cb2  # the apps keep the instance; a new callback keeps the records apart
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    r.stop()
    assert cb2.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_finish_timeout_counts_from_finish_task_not_from_the_last_result(emu):
    emu.script_next([])  # silence: no server message at all while streaming
    cb = Recorder()
    r = Recognition('m', cb, 'pcm', 16000)
    r.FINISH_TIMEOUT_S = 0.3
    r.start()
    r.send_audio_frame(b'\0' * 3200)
    # Idle time (not synchronisation): longer than FINISH_TIMEOUT_S without a server message.
    threading.Event().wait(0.5)
    r.stop()
    assert cb.lifecycle() == ['on_open', 'on_complete', 'on_close']


def test_call_with_a_large_file_reads_while_sending(emu, tmp_path):
    # 120 s of 1 s tone / 1 s silence: 60 sentences and ~600 partials come back while the
    # 3.8 MB file is still going out in one burst.
    from array import array
    import math
    second = array('h', (int(6000 * math.sin(2 * math.pi * 300 * i / 16000.0))
                         for i in range(16000))).tobytes()
    path = tmp_path / 'long.pcm'
    path.write_bytes((second + b'\0' * 32000) * 60)
    emu.default_sentences = []
    result = Recognition('m', None, 'pcm', 16000).call(str(path))
    assert result.status_code == HTTPStatus.OK
    assert len(result.get_sentence()) == 60
    assert result.get_sentence()[-1]['text'] == '模拟识别结果第60句。'
