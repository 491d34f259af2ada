"""The NLS gateway emulator driven with raw websocket-client connections (no nls_lite client)."""
import asyncio
import json
import os
import threading
import time

import pytest
import websocket

from nls_emu_helpers import APPKEY, RawClient, chunks, command, names, silence, tone

from nls_lite.emulator import NlsEmulator
from nls_lite.emulator import speech

SAMPLE_WAV = os.path.join(os.path.dirname(__file__), '..', '..', 'nls_lite', 'samples', 'beijing_weather.wav')
HEADER_KEYS = ['namespace', 'name', 'status', 'message_id', 'task_id', 'status_text']



def speech_pcm():
    return silence(200) + tone(900) + silence(1000)


# -- lifecycle --

def test_context_manager_serves_and_stop_joins_everything():
    before = set(threading.enumerate())
    with NlsEmulator() as emu:
        assert emu.url.startswith('ws://127.0.0.1:') and emu.url.endswith('/ws/v1')
        assert emu.token_url.startswith('http://127.0.0.1:') and emu.token_url.endswith('/')
        assert emu.open_connections == 0
        c = RawClient(emu.url)
        c.start()
        assert c.recv()['header']['name'] == 'RecognitionStarted'
        assert emu.open_connections == 1
    # stop() closed the live connection (going away) and joined the loop and HTTP threads
    assert c.recv_close() == 1001
    c.close()
    assert set(threading.enumerate()) - before == set()
    emu.stop()  # idempotent


def test_async_with_runs_in_the_callers_loop():
    async def main():
        async with NlsEmulator() as emu:
            loop = asyncio.get_running_loop()

            def roundtrip():
                c = RawClient(emu.url)
                try:
                    c.start()
                    return c.recv()['header']['name']
                finally:
                    c.close()
            return await loop.run_in_executor(None, roundtrip)
    assert asyncio.run(main()) == 'RecognitionStarted'


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match='no_such_knob'):
        NlsEmulator(no_such_knob=1)


# -- recognizer --

def test_recognizer_seed_flow_exact_wire(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(hello=123)
    raw = c.recv_raw()
    started = json.loads(raw)
    assert list(started) == ['header']  # no payload by default
    assert list(started['header']) == HEADER_KEYS
    assert started['header']['status'] == 20000000 and started['header']['task_id'] == c.task_id
    assert started['header']['status_text'] == 'Gateway:SUCCESS:Success.'
    assert ', ' not in raw and len(started['header']['message_id']) == 32
    for part in chunks(speech_pcm(), 640):
        c.ws.send_binary(part)
    c.stop()
    done_raw = c.recv_raw()
    assert '北京' in done_raw  # raw UTF-8, not \u escapes
    done = json.loads(done_raw)
    assert done['header']['name'] == 'RecognitionCompleted'
    assert done['payload'] == {'result': '北京的天气', 'duration': 2100}  # punctuation off by default
    c.close()
    record = nls_emulator.wait_for_sessions(1, 5)[0]
    assert record.directives == ['StartRecognition', 'StopRecognition']
    assert record.start_payloads[0]['hello'] == 123
    assert record.binary_bytes == len(speech_pcm()) - len(speech_pcm()) % 640 or record.binary_bytes > 0
    assert record.closed_by == 'client' and record.close_code == 1000
    assert record.token == 'test-token' and record.token_source == 'header'
    assert nls_emulator.open_connections == 0


def test_recognizer_partials_grow_and_omit_final_punctuation(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(enable_intermediate_result=True, enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(silence(100) + tone(1500) + silence(300), 640)
    c.stop()
    msgs = c.recv_until('RecognitionCompleted')
    partials = [m['payload']['result'] for m in msgs if m['header']['name'] == 'RecognitionResultChanged']
    assert partials[0] == '北' and partials[-1] == '北京的天气'
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(partials, partials[1:]))
    durations = [m['payload']['duration'] for m in msgs if m['header']['name'] == 'RecognitionResultChanged']
    assert all(b - a >= 200 for a, b in zip(durations, durations[1:]))
    assert msgs[-1]['payload']['result'] == '北京的天气。'


def test_recognizer_silence_only_gives_empty_result(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.send_audio(silence(1000))
    c.stop()
    assert c.recv()['payload'] == {'result': '', 'duration': 1000}


def test_recognizer_words_and_itn(nls_emulator, clients):
    nls_emulator.queue_script([{'text': '一百二十三。', 'itn_text': '123。', 'confidence': 0.5}])
    c = clients(nls_emulator)
    c.start(enable_words=True, enable_inverse_text_normalization=True, enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(silence(100) + tone(600) + silence(200))
    c.stop()
    payload = c.recv()['payload']
    assert payload['result'] == '123。'
    assert payload['words'] == [{'text': '123', 'startTime': 100, 'endTime': 700}]


def test_recognizer_voice_detection_completes_on_end_silence(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(enable_voice_detection=True, max_end_silence=400)
    c.recv()
    c.send_audio(tone(500) + silence(500) + tone(500))
    done = c.recv()
    assert done['header']['name'] == 'RecognitionCompleted' and done['payload']['result'] == '北京的天气'
    assert done['payload']['duration'] == 900  # decided when 400 ms of silence followed the speech
    c.stop()  # after a server-side completion Stop is accepted silently
    c.start_name = 'StartRecognition'
    c.task_id = 'f' * 32
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'


def test_recognizer_max_start_silence(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(enable_voice_detection=True, max_start_silence=300)
    c.recv()
    c.send_audio(silence(600))
    assert c.recv()['payload'] == {'result': '', 'duration': 300}


@pytest.mark.nls_emulator(max_audio_bytes=32000)
def test_recognizer_too_long_audio(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.start()
    c.recv()
    c.send_audio(silence(1100))
    failed = c.recv()
    assert failed['header']['status'] == 40000000
    assert failed['header']['status_text'] == 'Gateway:CLIENT_ERROR:Audio is too long!'
    assert c.recv_close() == 1000


def test_long_connection_reuse(nls_emulator, clients):
    c = clients(nls_emulator)
    for _ in range(2):
        c.task_id = os.urandom(16).hex()
        c.start()
        assert c.recv()['header']['name'] == 'RecognitionStarted'
        c.stop()
        done = c.recv()
        assert done['header']['name'] == 'RecognitionCompleted' and done['header']['task_id'] == c.task_id


# -- transcriber --

def test_transcriber_sentences_from_vad(nls_emulator, clients):
    nls_emulator.queue_script('今天天气很好。明天下雨。')
    c = clients(nls_emulator, service='transcriber')
    c.start(enable_punctuation_prediction=True, enable_intermediate_result=True)
    assert c.recv()['header']['name'] == 'TranscriptionStarted'
    c.send_audio(silence(300) + tone(1000) + silence(900) + tone(600) + silence(200), 640)
    c.stop()
    msgs = c.recv_until('TranscriptionCompleted')
    seq = [n for n in names(msgs) if n != 'TranscriptionResultChanged']
    assert seq == ['SentenceBegin', 'SentenceEnd', 'SentenceBegin', 'SentenceEnd', 'TranscriptionCompleted']
    begins = [m['payload'] for m in msgs if m['header']['name'] == 'SentenceBegin']
    ends = [m['payload'] for m in msgs if m['header']['name'] == 'SentenceEnd']
    assert begins == [{'index': 1, 'time': 300}, {'index': 2, 'time': 2200}]
    assert [e['result'] for e in ends] == ['今天天气很好。', '明天下雨。']
    assert [(e['begin_time'], e['time']) for e in ends] == [(300, 1300), (2200, 2800)]
    assert list(ends[0]) == ['index', 'time', 'result', 'confidence', 'words', 'status', 'gender', 'begin_time',
                             'fixed_result', 'unfixed_result', 'stash_result', 'audio_extra_info', 'sentence_id',
                             'gender_score']
    assert ends[0]['stash_result'] == {'sentenceId': 2, 'beginTime': 1300, 'text': '', 'fixedText': '',
                                       'unfixedText': '', 'currentTime': 1300, 'words': []}
    partial = next(m['payload'] for m in msgs if m['header']['name'] == 'TranscriptionResultChanged')
    assert list(partial) == ['index', 'time', 'result', 'confidence', 'words', 'status', 'fixed_result',
                             'unfixed_result']
    assert 'payload' not in msgs[-1]


def test_transcriber_leftover_script_goes_to_the_open_sentence(nls_emulator, clients):
    nls_emulator.queue_script(['一。', '二。', '三。'])
    c = clients(nls_emulator, service='transcriber')
    c.start(enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(tone(500) + silence(900) + tone(300))
    c.stop()
    ends = [m['payload']['result'] for m in c.recv_until('TranscriptionCompleted')
            if m['header']['name'] == 'SentenceEnd']
    assert ends == ['一。', '二。三。']


def test_control_changes_max_sentence_silence_without_reply(nls_emulator, clients):
    c = clients(nls_emulator, service='transcriber')
    c.start()
    c.recv()
    c.ctrl(max_sentence_silence=300)
    c.ctrl(ex={'test': 'tttt'})
    c.send_audio(tone(500) + silence(400))
    msgs = [c.recv(), c.recv()]
    assert names(msgs) == ['SentenceBegin', 'SentenceEnd']  # the 300 ms silence already ended it
    c.stop()
    assert names(c.recv_until('TranscriptionCompleted')) == ['TranscriptionCompleted']


@pytest.mark.nls_emulator(segmentation='script')
def test_script_segmentation_mode_is_deterministic(nls_emulator, clients):
    emu = nls_emulator
    emu.queue_script([{'text': '你好。', 'begin_ms': 100, 'end_ms': 500}, {'text': '再见。', 'begin_ms': 700,
                                                                        'end_ms': 900}])
    c = clients(emu, service='transcriber')
    c.start(enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(silence(1000))  # the VAD is ignored in this mode
    c.stop()
    msgs = c.recv_until('TranscriptionCompleted')
    assert [(n, m.get('payload', {}).get('time')) for n, m in zip(names(msgs), msgs)] == [
        ('SentenceBegin', 100), ('SentenceEnd', 500), ('SentenceBegin', 700), ('SentenceEnd', 900),
        ('TranscriptionCompleted', None)]


def test_undecoded_format_is_one_utterance(nls_emulator, clients):
    c = clients(nls_emulator, service='transcriber')
    c.start(format='opus')
    c.recv()
    c.send_audio(b'\x01' * 300)
    assert c.recv()['payload'] == {'index': 1, 'time': 0}
    c.stop()
    msgs = c.recv_until('TranscriptionCompleted')
    assert names(msgs) == ['SentenceEnd', 'TranscriptionCompleted']
    assert msgs[0]['payload']['result'] == '北京的天气'


# -- scripts --

def test_inband_script_and_precedence(nls_emulator, clients):
    nls_emulator.queue_script('队列。')
    c = clients(nls_emulator)
    c.start(x_emulator_script='带内。', enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(tone(300))
    c.stop()
    assert c.recv()['payload']['result'] == '带内。'
    record_payload = nls_emulator.sessions[0].start_payloads[0]
    assert 'x_emulator_script' not in record_payload
    c.task_id = 'a' * 32
    c.start(enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(tone(300))
    c.stop()
    assert c.recv()['payload']['result'] == '队列。'  # queued scripts are consumed FIFO


@pytest.mark.nls_emulator(appkeys={APPKEY: {'sample_rate': 16000, 'script': '按应用。'}})
def test_register_audio_matches_the_sample_wav(nls_emulator, clients):
    emu = nls_emulator
    emu.register_audio(SAMPLE_WAV, '注册的音频。')
    with open(SAMPLE_WAV, 'rb') as f:
        wav = f.read()
    c = clients(emu)
    c.start(format='wav', enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(wav, 640)
    c.stop()
    assert c.recv()['payload']['result'] == '注册的音频。'
    c.task_id = 'b' * 32
    c.start(enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(tone(500))
    c.stop()
    assert c.recv()['payload']['result'] == '按应用。'  # not registered: the appkey's script


def test_sample_wav_gives_one_sentence(nls_emulator, clients):
    with open(SAMPLE_WAV, 'rb') as f:
        wav = f.read()
    assert len(wav) < 200 * 1024
    c = clients(nls_emulator, service='transcriber')
    c.start(format='wav', enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(wav + silence(1000))
    c.stop()
    ends = [m['payload']['result'] for m in c.recv_until('TranscriptionCompleted')
            if m['header']['name'] == 'SentenceEnd']
    assert ends == ['北京的天气。']


def test_invalid_wav_header(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(format='wav')
    c.recv()
    c.ws.send_binary(b'NOTAWAVE' * 10)
    failed = c.recv()
    assert failed['header']['status'] == 40000009
    assert c.recv_close() == 1000


# -- handshake --

def test_duplicate_websocket_headers_of_the_original_sdk(nls_emulator, clients):
    c = clients(nls_emulator, header=['Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==', 'Sec-WebSocket-Version: 13'])
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'
    keys = nls_emulator.sessions[0].sec_websocket_keys
    assert len(keys) == 2 and keys[1] == 'x3JJHMbDL1EzLkh9GBhXDw=='


def test_query_token_raw_protocol_client(nls_emulator):
    ws = websocket.create_connection(nls_emulator.url + '?token=test-token', timeout=5)
    try:
        start = {'header': {'message_id': 'm' * 32, 'task_id': 't' * 32, 'namespace': 'SpeechTranscriber',
                            'name': 'StartTranscription', 'appkey': APPKEY},
                 'payload': {'format': 'PCM', 'sample_rate': 16000}}
        ws.send(json.dumps(start))
        assert json.loads(ws.recv())['header']['name'] == 'TranscriptionStarted'
    finally:
        ws.close()
    assert nls_emulator.wait_for_sessions(1, 5)[0].token_source == 'query'


@pytest.mark.parametrize('token,text', [
    (None, 'Gateway:ACCESS_DENIED:Missing authorization header!'),
    ('nope', "Meta:ACCESS_DENIED:The token 'nope' is invalid!"),
    ('old', "Gateway:ACCESS_DENIED:The token 'old' has expired!"),
])
def test_handshake_rejects_bad_tokens_with_403_json(nls_emulator, token, text):
    nls_emulator.add_token('old', time.time() - 1)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        RawClient(nls_emulator.url, token=token)
    assert info.value.status_code == 403
    body = json.loads(info.value.resp_body)
    assert body['header']['status'] == 40000001 and body['header']['status_text'] == text
    assert body['header']['namespace'] == 'Default' and body['header']['task_id'] == ''
    assert 'application/json' in info.value.resp_headers['content-type']


def test_wrong_path_is_404(nls_emulator):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(nls_emulator.url.replace('/ws/v1', '/ws/v2'),
                                    header=['X-NLS-Token: test-token'], timeout=5)
    assert info.value.status_code == 404


@pytest.mark.nls_emulator(auth_failure_mode='taskfailed')
def test_auth_failure_mode_taskfailed(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu, token='bad')
    failed = c.recv()
    assert failed['header']['status'] == 40000001 and failed['header']['name'] == 'TaskFailed'
    assert c.recv_close() == 1000


# -- validation and wrong order --

def expect_failure(client, status):
    msg = client.recv()
    assert msg['header']['name'] == 'TaskFailed' and msg['header']['namespace'] == 'Default', msg
    assert msg['header']['status'] == status, msg
    assert list(msg['header']) == HEADER_KEYS
    assert client.recv_close() == 1000
    return msg['header']['status_text']


@pytest.mark.parametrize('frame,prefix', [
    ('not json', 'Gateway:MESSAGE_INVALID:'),
    ('[1, 2]', 'Gateway:MESSAGE_INVALID:'),
    ('{"header": {"name": "StartRecognition"}}', 'Gateway:MESSAGE_INVALID:'),
    (command('SpeechRecognizer', 'Nope', 't' * 32), 'Gateway:MESSAGE_INVALID:'),
    (command('SpeechRecognizer', 'StartRecognition', ''), 'Gateway:MESSAGE_INVALID:'),
], ids=['not-json', 'array', 'no-namespace', 'unknown-command', 'empty-task-id'])
def test_invalid_messages(nls_emulator, clients, frame, prefix):
    c = clients(nls_emulator)
    c.ws.send(frame)
    assert expect_failure(c, 40000002).startswith(prefix)


@pytest.mark.parametrize('payload,status', [
    ({'format': 'flac'}, 40000003),
    ({'sample_rate': 44100}, 40000003),
    ({'enable_intermediate_result': 'yes'}, 40000003),
    ({'max_sentence_silence': 100}, 40000003),
    ({'max_end_silence': -1}, 40000003),
    ({'speech_noise_threshold': 2}, 40000003),
])
def test_invalid_parameters(nls_emulator, clients, payload, status):
    c = clients(nls_emulator)
    c.start(**payload)
    assert expect_failure(c, status).startswith('Gateway:PARAMETER_INVALID:')


def test_unknown_appkey(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start(appkey='other')
    assert expect_failure(c, 40020105) == 'Meta:APPKEY_NOT_EXIST:Appkey not exist!'


@pytest.mark.nls_emulator(appkeys={APPKEY: {'sample_rate': 16000}})
def test_sample_rate_mismatch_with_the_appkeys_model(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.start(sample_rate=8000)
    expect_failure(c, 41010101)


def test_audio_before_start(nls_emulator, clients):
    c = clients(nls_emulator)
    c.ws.send_binary(b'\x00' * 640)
    assert 'audio received before start' in expect_failure(c, 40000002)


@pytest.mark.nls_emulator(audio_before_start='ignore')
def test_audio_before_start_ignored_by_knob(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.ws.send_binary(b'\x00' * 640)
    c.start()
    assert c.recv()['header']['name'] == 'RecognitionStarted'


def test_stop_before_start(nls_emulator, clients):
    c = clients(nls_emulator)
    c.stop()
    assert 'no task started' in expect_failure(c, 40000002)


def test_second_start(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.start()
    expect_failure(c, 40000002)


@pytest.mark.nls_emulator(strict_ids=True)
def test_strict_ids(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.task_id = 'short'
    c.start()
    expect_failure(c, 40000002)


@pytest.mark.nls_emulator(trial_expired=True)
def test_trial_expired(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    expect_failure(c, 40000010)


@pytest.mark.nls_emulator(max_sessions=1)
def test_max_sessions(nls_emulator, clients):
    a, b = clients(nls_emulator), clients(nls_emulator)
    a.start()
    a.recv()
    b.start()
    assert expect_failure(b, 40000005) == 'Gateway:TOO_MANY_REQUESTS:Too many requests!'


@pytest.mark.nls_emulator(idle_timeout_s=0.3)
def test_idle_timeout_names_the_last_directive(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.start()
    c.recv()
    c.stop()
    c.recv()
    text = expect_failure(c, 40000004)
    assert text == ("Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time, the last directive "
                    "is 'StopRecognition'!")
    c.close()  # the server waits for the client to drop TCP after the close handshake
    record = emu.wait_for_sessions(1, 5)[0]
    assert record.closed_by == 'server' and record.end_reason == 'TaskFailed 40000004'


@pytest.mark.nls_emulator(idle_timeout_s=0.2)
def test_idle_timeout_before_any_directive(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    assert expect_failure(c, 40000004).endswith("the last directive is ''!")


@pytest.mark.nls_emulator(delay_started_ms=150)
def test_delay_started_buffers_audio_and_stop(nls_emulator, clients):
    emu = nls_emulator
    c = clients(emu)
    c.start()
    c.send_audio(tone(500))
    c.stop()  # held until Started has been sent, then handled in order
    msgs = c.recv_until('RecognitionCompleted')
    assert names(msgs) == ['RecognitionStarted', 'RecognitionCompleted']
    assert msgs[1]['payload']['duration'] == 500


def test_wait_for_sessions_times_out_clearly(nls_emulator):
    with pytest.raises(TimeoutError, match='0 session'):
        nls_emulator.wait_for_sessions(1, 0.05)


# -- speech.py units --

def test_parse_script_and_partials():
    assert [s.text for s in speech.parse_script('北京的天气。明天呢？ok')] == ['北京的天气。', '明天呢？', 'ok']
    assert speech.partial_text('北京的天气。', 5) == '北京的天气'
    assert speech.partial_text('hello big world.', 2) == 'hello big'
    assert speech.strip_punctuation('你好，世界！') == '你好世界'
    with pytest.raises(ValueError):
        speech.parse_script([{'nope': 1}])


def test_vad_times_and_threshold():
    vad = speech.EnergyVad(16000, max_silence_ms=800)
    events = vad.feed(silence(250) + tone(500))
    assert events == [('begin', 250)]
    assert vad.feed(silence(799)) == []
    assert vad.feed(silence(10)) == [('end', 750)]
    quiet = speech.EnergyVad(16000, threshold_dbfs=-40 + 10 * 1.0)  # speech_noise_threshold 1
    assert quiet.feed(tone(500, amplitude=200)) == []


def test_vad_handles_odd_chunking():
    whole = silence(100) + tone(300) + silence(900)
    vad = speech.EnergyVad(16000)
    events = []
    for i in range(0, len(whole), 333):
        events += vad.feed(whole[i:i + 333])
    assert events == [('begin', 100), ('end', 400)]


def test_wav_header_parsing():
    with open(SAMPLE_WAV, 'rb') as f:
        wav = f.read()
    offset = speech.parse_wav_header(wav)
    assert offset == 44 and speech.parse_wav_header(wav[:20]) is None
    with pytest.raises(speech.WavHeaderError):
        speech.parse_wav_header(b'RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00' + b'\x01\x00\x02\x00' + b'\x00' * 12)
    assert speech.word_list('北京的', 0, 300) == [{'text': '北', 'startTime': 0, 'endTime': 100},
                                                {'text': '京', 'startTime': 100, 'endTime': 200},
                                                {'text': '的', 'startTime': 200, 'endTime': 300}]


@pytest.mark.nls_emulator(strict_task_id=True)
def test_strict_task_id(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.task_id = 'x' * 32
    c.stop()
    expect_failure(c, 40000002)


def test_task_id_mismatch_is_ignored_by_default(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    started = c.recv()['header']['task_id']
    c.task_id = 'x' * 32
    c.stop()
    assert c.recv()['header']['task_id'] == started  # the reply carries the session's task_id


@pytest.mark.nls_emulator(delay_completed_ms=200)
def test_audio_while_stopping_is_ignored(nls_emulator, clients):
    c = clients(nls_emulator)
    c.start()
    c.recv()
    c.send_audio(tone(300))
    c.stop()
    c.send_audio(tone(300))  # between Stop and Completed: ignored, no error
    done = c.recv()
    assert done['header']['name'] == 'RecognitionCompleted' and done['payload']['duration'] == 300


@pytest.mark.nls_emulator(require_speech_for_text=False)
def test_no_speech_still_gives_text_when_not_required(nls_emulator, clients):
    c = clients(nls_emulator, service='transcriber')
    c.start()
    c.recv()
    c.send_audio(silence(500))
    c.stop()
    msgs = c.recv_until('TranscriptionCompleted')
    assert names(msgs) == ['SentenceBegin', 'SentenceEnd', 'TranscriptionCompleted']
    assert (msgs[1]['payload']['begin_time'], msgs[1]['payload']['time']) == (0, 500)
    assert msgs[1]['payload']['result'] == '北京的天气'


def test_vad_forced_end_after_max_sentence():
    vad = speech.EnergyVad(16000, max_sentence_ms=500)
    assert vad.feed(tone(1200)) == [('begin', 0), ('end', 500), ('begin', 500), ('end', 1000), ('begin', 1000)]


def test_stop_does_not_wait_for_a_silent_http_client():
    import socket
    emu = NlsEmulator().start()
    port = int(emu.token_url.rsplit(':', 1)[1].strip('/'))
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        s.sendall(b'POST / HTTP/1.1\r\n')  # an unfinished request keeps a worker thread reading
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 3
    finally:
        s.close()


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    import shutil
    import subprocess
    if not shutil.which('openssl'):
        pytest.skip('openssl is needed to make a test certificate')
    d = tmp_path_factory.mktemp('tls')
    cert, key = str(d / 'cert.pem'), str(d / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
                    '-days', '1', '-subj', '/CN=127.0.0.1'], check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_wss(certificate):
    import ssl
    cert, key = certificate
    with NlsEmulator(certfile=cert, keyfile=key) as emu:
        assert emu.url.startswith('wss://127.0.0.1:')
        ws = websocket.create_connection(emu.url, header=['X-NLS-Token: test-token'], timeout=5,
                                         sslopt={'cert_reqs': ssl.CERT_REQUIRED, 'ca_certs': cert,
                                                 'check_hostname': False})
        try:
            ws.send(command('SpeechRecognizer', 'StartRecognition', 't' * 32, payload={}))
            assert json.loads(ws.recv())['header']['name'] == 'RecognitionStarted'
        finally:
            ws.close()


@pytest.mark.nls_emulator(max_records=2)
def test_max_records_keeps_the_newest(nls_emulator):
    for _ in range(4):
        RawClient(nls_emulator.url).close()
    nls_emulator.wait_for_sessions(4, 5)  # counts ended connections, trimmed or not
    assert [r.number for r in nls_emulator.sessions] == [3, 4]


def test_stop_is_quick_with_a_silent_tcp_client():
    import socket
    emu = NlsEmulator().start()
    port = int(emu.url.rsplit(':', 1)[1].split('/')[0])
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 1.2  # without the cut it takes the 1.5 s escalation step
        assert emu.sessions[0].end_reason == 'connection lost during handshake'
    finally:
        s.close()


def test_register_short_pcm_bytes_decides_at_stop(nls_emulator, clients):
    short = tone(100)  # 3200 bytes: shorter than the 6400-byte fingerprint, so it is matched at Stop
    nls_emulator.register_audio(short, 'short one.')
    c = clients(nls_emulator)
    c.start(enable_punctuation_prediction=True)
    c.recv()
    c.send_audio(short)
    c.stop()
    assert c.recv()['payload']['result'] == 'short one.'


def test_latin_sentences_join_with_a_space(nls_emulator, clients):
    nls_emulator.queue_script(['Hello world.', 'Bye.'])
    c = clients(nls_emulator)
    c.start(enable_punctuation_prediction=True, enable_intermediate_result=True)
    c.recv()
    c.send_audio(tone(700))
    c.stop()
    msgs = c.recv_until('RecognitionCompleted')
    assert [m['payload']['result'] for m in msgs] == ['Hello', 'Hello world', 'Hello world. Bye', 'Hello world. Bye.']


@pytest.mark.nls_emulator(started_payload_session_id=True, accept_any_token=True, accept_any_appkey=True,
                          allow_reuse=False)
def test_knobs_session_id_any_credentials_no_reuse(nls_emulator, clients):
    c = clients(nls_emulator, token='whatever', service='transcriber')
    c.start(appkey='any-appkey')
    started = c.recv()
    assert list(started['payload']) == ['session_id'] and len(started['payload']['session_id']) == 32
    c.stop()
    assert c.recv()['header']['name'] == 'TranscriptionCompleted'
    c.task_id = 'n' * 32
    c.start(appkey='any-appkey')
    expect_failure(c, 40000002)  # allow_reuse=False: one task per connection
