"""The wire format, byte for byte, and the pure state machine (no network)."""
import json

import pytest

from nls_lite import _protocol as protocol

TASK = '0123456789abcdef0123456789abcdef'
MSG = 'fedcba9876543210fedcba9876543210'

# Reference §4.4: captured from the original SDK 1.1.0.
START_VECTOR = ('{"header": {"message_id": "fedcba9876543210fedcba9876543210", "task_id": '
                '"0123456789abcdef0123456789abcdef", "namespace": "SpeechRecognizer", "name": '
                '"StartRecognition", "appkey": "myAppkey"}, "payload": {"format": "pcm", "sample_rate": 16000, '
                '"enable_intermediate_result": false, "enable_punctuation_prediction": false, '
                '"enable_inverse_text_normalization": false, "hello": 123}, "context": {"sdk": {"name": '
                '"nls-python-sdk", "version": "1.1.0", "language": "python"}}}')
STOP_VECTOR = ('{"header": {"message_id": "fedcba9876543210fedcba9876543210", "task_id": '
               '"0123456789abcdef0123456789abcdef", "namespace": "SpeechRecognizer", "name": "StopRecognition", '
               '"appkey": "myAppkey"}, "context": {"sdk": {"name": "nls-python-sdk", "version": "1.1.0", '
               '"language": "python"}}}')


def test_start_recognition_matches_the_original_byte_for_byte():
    payload = protocol.start_payload('pcm', 16000, False, False, False, {'hello': 123})
    text = protocol.command(protocol.RECOGNIZER, 'StartRecognition', TASK, 'myAppkey', payload, MSG)
    assert text == START_VECTOR


def test_stop_recognition_has_no_payload_key():
    text = protocol.command(protocol.RECOGNIZER, 'StopRecognition', TASK, 'myAppkey', message_id=MSG)
    assert text == STOP_VECTOR


def test_ex_overrides_a_default_in_place():
    payload = protocol.start_payload('pcm', 16000, False, False, False, {'format': 'opus', 'hello': 1})
    assert list(payload) == ['format', 'sample_rate', 'enable_intermediate_result',
                             'enable_punctuation_prediction', 'enable_inverse_text_normalization', 'hello']
    assert payload['format'] == 'opus'


def test_falsy_ex_is_ignored():
    assert protocol.start_payload('pcm', 8000, True, True, True, {}) == protocol.start_payload(
        'pcm', 8000, True, True, True, None)


def test_transcriber_commands_and_control_payload_verbatim():
    stop = json.loads(protocol.stop_command(protocol.TRANSCRIBER, TASK, 'k'))
    assert stop['header']['namespace'] == 'SpeechTranscriber'
    assert stop['header']['name'] == 'StopTranscription'
    assert 'payload' not in stop
    ctrl = protocol.control_command(protocol.TRANSCRIBER, TASK, 'k', {'ex': {'test': 'tttt'}})
    assert '"name": "ControlTranscriber"' in ctrl
    assert '"payload": {"ex": {"test": "tttt"}}' in ctrl


def test_non_ascii_is_escaped_like_json_dumps_defaults():
    text = protocol.command(protocol.RECOGNIZER, 'StartRecognition', TASK, 'k', {'x': '北京'}, MSG)
    assert '\\u5317\\u4eac' in text


def test_new_ids_are_32_lowercase_hex_and_fresh():
    ids = {protocol.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and i == i.lower() and int(i, 16) >= 0 for i in ids)


def _server(name, namespace='SpeechTranscriber', payload=None):
    message = {'header': {'namespace': namespace, 'name': name, 'status': 20000000}}
    if payload is not None:
        message['payload'] = payload
    return json.dumps(message, ensure_ascii=False, separators=(',', ':'))


@pytest.mark.parametrize('name, kind, callback', [
    ('TranscriptionStarted', protocol.STARTED, None),
    ('SentenceBegin', protocol.RESULT, 'on_sentence_begin'),
    ('TranscriptionResultChanged', protocol.RESULT, 'on_result_changed'),
    ('SentenceEnd', protocol.RESULT, 'on_sentence_end'),
    ('TranscriptionCompleted', protocol.COMPLETED, None),
    ('TaskFailed', protocol.FAILED, None),
    ('ResultTranslated', protocol.UNKNOWN, None),
    ('RecognitionStarted', protocol.UNKNOWN, None),
])
def test_transcriber_events(name, kind, callback):
    text = _server(name, payload={'result': '北京'})
    event = protocol.parse(protocol.TRANSCRIBER, text)
    assert (event.kind, event.callback) == (kind, callback)
    assert event.text is text


@pytest.mark.parametrize('name, kind', [
    ('RecognitionStarted', protocol.STARTED), ('RecognitionResultChanged', protocol.RESULT),
    ('RecognitionCompleted', protocol.COMPLETED), ('TaskFailed', protocol.FAILED),
    ('SentenceEnd', protocol.UNKNOWN),
])
def test_recognizer_events(name, kind):
    assert protocol.parse(protocol.RECOGNIZER, _server(name, 'SpeechRecognizer')).kind == kind


@pytest.mark.parametrize('text, parsed', [
    ('{"header":{"name":', False), ('not json', False), ('[1, 2]', True), ('{"payload":{}}', True),
    ('{"header":"x"}', True), ('{"header":{"status":1}}', True),
])
def test_malformed_frames(text, parsed):
    event = protocol.parse(protocol.RECOGNIZER, text)
    assert event.kind == protocol.MALFORMED
    assert event.parsed is parsed


def test_synthetic_task_failed_shape():
    text = protocol.sdk_error(protocol.CONNECTION_LOST, 'CONNECTION_LOST', 'close code 1011', TASK)
    assert text.startswith('{"header":{"namespace":"Default","name":"TaskFailed","status":10000105,"message_id":"')
    header = json.loads(text)['header']
    assert list(header) == ['namespace', 'name', 'status', 'message_id', 'task_id', 'status_text']
    assert header['task_id'] == TASK
    assert header['status_text'] == 'SDK:CONNECTION_LOST:close code 1011'


def test_handshake_rejection_with_gateway_body_passes_through():
    body = json.dumps({'header': {'namespace': 'Default', 'name': 'TaskFailed', 'status': 40000001,
                                  'message_id': MSG, 'task_id': '',
                                  'status_text': "Meta:ACCESS_DENIED:The token 'x' is invalid!"}})
    header = json.loads(protocol.handshake_rejected(403, body.encode(), TASK))['header']
    assert header['status'] == 40000001
    assert header['name'] == 'TaskFailed'
    assert header['status_text'] == "Meta:ACCESS_DENIED:The token 'x' is invalid!"
    assert header['task_id'] == TASK


@pytest.mark.parametrize('status, code', [(403, 10000100), (400, 400), (503, 503)])
def test_handshake_rejection_with_plain_body(status, code):
    header = json.loads(protocol.handshake_rejected(status, b'<html>nope</html>', TASK))['header']
    assert header['status'] == code
    assert header['status_text'].startswith('SDK:HANDSHAKE_REJECTED:HTTP %d ' % status)
    assert 'nope' in header['status_text']


@pytest.mark.parametrize('interval, timeout, ok', [
    (8, None, True), (8, 0, True), (0, None, True), (None, None, True), (10, 8, True), (0, 5, True),
    (8, 10, False), (8, 8, False), (-1, None, False), (8, -1, False),
])
def test_ping_settings(interval, timeout, ok):
    assert (protocol.check_ping(interval, timeout) is None) is ok


def test_state_machine_moves_forward_only():
    state = protocol.SessionState()
    assert state.phase == protocol.CONNECTING and state.active and not state.accepts_audio
    assert state.advance(protocol.STARTING)
    assert not state.advance(protocol.CONNECTING)
    assert state.advance(protocol.RUNNING) and state.accepts_audio
    assert state.advance(protocol.STOPPING) and state.accepts_audio
    assert not state.advance(protocol.RUNNING)
    assert state.advance(protocol.ENDING) and not state.accepts_audio
    assert state.advance(protocol.CLOSED) and not state.active
    assert not state.advance(protocol.ENDING)


def test_first_reporter_wins():
    state = protocol.SessionState()
    assert state.claim_report('exception')
    assert not state.claim_report('callback')
    assert state.claim_report('exception')
