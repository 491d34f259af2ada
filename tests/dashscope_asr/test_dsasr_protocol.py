"""The pure protocol layer: client frames key for key, server messages to outcomes."""
import json
from http import HTTPStatus

from dashscope_asr import _protocol
from dashscope_asr.common.constants import WEBSOCKET_ERROR_CODE

VERIFIED_RUN_TASK = (
    '{"header": {"streaming": "duplex", "task_id": "8513240f947341789ab1bc2bafdb1682", "action": '
    '"run-task"}, "payload": {"model": "paraformer-realtime-v2", "parameters": {"sample_rate": '
    '16000, "format": "pcm", "language_hints": ["zh", "en"], "semantic_punctuation_enabled": false, '
    '"vocabulary_id": "vocab-x", "disfluency_removal_enabled": true, "heartbeat": true}, "input": '
    '{}, "task": "asr", "task_group": "audio", "function": "recognition", "resources": '
    '[{"resource_id": "phrase-1", "resource_type": "asr_phrase"}]}}')


def test_run_task_matches_the_vendor_frame_byte_for_byte():
    kwargs = {'language_hints': ['zh', 'en'], 'semantic_punctuation_enabled': False,
              'vocabulary_id': 'vocab-x', 'disfluency_removal_enabled': True, 'heartbeat': True,
              'resources': _protocol.phrase_resources('phrase-1'), 'api_key': 'k', 'dropped': None}
    parameters, reserved = _protocol.split_kwargs(kwargs)
    frame = _protocol.build_run_task('8513240f947341789ab1bc2bafdb1682', 'paraformer-realtime-v2',
                                     16000, 'pcm', parameters, reserved['resources'])
    assert frame == VERIFIED_RUN_TASK
    assert 'dropped' not in kwargs and reserved['api_key'] == 'k'


def test_run_task_without_resources_and_non_ascii_kept():
    frame = _protocol.build_run_task('t', 'm', 8000, 'wav', {'context': '阿里'})
    assert '"resources"' not in frame
    assert '阿里' in frame
    assert list(json.loads(frame)['payload']) == ['model', 'parameters', 'input', 'task',
                                                  'task_group', 'function']


def test_finish_and_continue_frames():
    assert _protocol.build_finish_task('abc') == (
        '{"header": {"streaming": "duplex", "task_id": "abc", "action": "finish-task"}, '
        '"payload": {"input": {}}}')
    assert _protocol.build_continue_task('abc', {'context': [1]}) == (
        '{"header": {"streaming": "duplex", "task_id": "abc", "action": "continue-task"}, '
        '"payload": {"input": {"context": [1]}}}')


def test_reserved_keys_are_not_parameters():
    kwargs = dict(headers={'a': 'b'}, base_address='ws://x', user_agent='u', request_timeout=3,
                  workspace='w', session=1, stream=True, raw_input={'x': 1}, foo='bar')
    parameters, reserved = _protocol.split_kwargs(kwargs)
    assert parameters == {'foo': 'bar'}
    assert set(reserved) == set(kwargs) - {'foo'}


def _msg(event, payload=None, **header):
    h = {'task_id': 't1', 'event': event}
    h.update(header)
    h['attributes'] = {}
    return json.dumps({'header': h, 'payload': payload if payload is not None else {}})


def _started():
    p = _protocol.RecognitionProtocol('t1')
    assert p.receive_text(_msg('task-started')).kind == 'started'
    return p


def test_result_outcomes_and_usage_substitution():
    p = _started()
    sentence = {'begin_time': 0, 'end_time': None, 'text': '好', 'heartbeat': False}
    o = p.receive_text(_msg('result-generated', {'output': {'sentence': sentence}, 'usage': None}))
    assert o.kind == 'event' and o.has_text and o.usages is None
    assert o.response.status_code == HTTPStatus.OK and o.response.request_id == 't1'
    final = dict(sentence, end_time=500)
    o = p.receive_text(_msg('result-generated', {'output': {'sentence': final}}))
    assert o.usages == [{'end_time': 500, 'usage': {}}]  # absent usage becomes {}
    hb = dict(sentence, text='', heartbeat=True)
    assert p.receive_text(_msg('result-generated', {'output': {'sentence': hb}})).kind == 'heartbeat'
    assert p.receive_text(_msg('result-generated', {})).kind == 'ignore'
    assert p.receive_text(_msg('task-finished', {})).kind == 'complete'
    assert p.receive_text(_msg('task-finished', {})).kind == 'ignore'


def test_heartbeats_are_results_outside_streaming():
    p = _protocol.RecognitionProtocol('t1', streaming=False)
    p.receive_text(_msg('task-started'))
    hb = {'begin_time': 0, 'end_time': None, 'text': '', 'heartbeat': True}
    assert p.receive_text(_msg('result-generated', {'output': {'sentence': hb}})).kind == 'event'


def test_finished_flag_completes_once():
    p = _started()
    assert p.receive_text(_msg('result-generated', {'output': {'finished': True}})).kind == 'complete'
    assert p.receive_text(_msg('task-finished', {'output': {}})).kind == 'ignore'


def test_task_failed_and_bare_task_failed():
    p = _started()
    o = p.receive_text(_msg('task-failed', error_code='CLIENT_ERROR',
                            error_message='request timeout after 23 seconds.'))
    assert (o.kind, o.response.status_code, o.response.code, o.response.message,
            o.response.request_id) == ('error', WEBSOCKET_ERROR_CODE, 'CLIENT_ERROR',
                                       'request timeout after 23 seconds.', 't1')
    p = _started()
    o = p.receive_text(_msg('task-failed'))
    assert (o.response.status_code, o.response.code, o.response.message) == (44, None, None)


def test_error_texts():
    p = _started()
    o = p.receive_text('{"header":')
    assert o.response.status_code == -1 and o.response.code == 'Unknown'
    assert o.response.message.startswith(
        "Error type: <class 'json.decoder.JSONDecodeError'>, message: Expecting value")
    o = _started().receive_text('{"payload":{}}')
    assert o.response.message == "Error type: <class 'KeyError'>, message: 'header'"
    o = _started().receive_text(_msg('error', {'message': 'x'}))
    assert o.response.message.startswith(
        "Error type: <class 'dashscope_asr.common.error.UnknownMessageReceived'>, message: "
        "Receive unknown message: {'header': {'task_id': 't1', 'event': 'error'")
    o = _started().closed()
    assert o.response.message == (
        "Error type: <class 'dashscope_asr.common.error.UnexpectedMessageReceived'>, message: "
        'Receive unexpected websocket close message, details: WSMsgType.CLOSE, data: None, '
        'extra: None')
    assert _started().receive_binary().response.message.endswith(
        'Receive unexpected binary message')
    waiting = _protocol.RecognitionProtocol('t1')
    assert waiting.receive_binary().response.message.endswith(
        'Receive unexpected binary message when wait for task-started')
    waiting = _protocol.RecognitionProtocol('t1')
    assert waiting.receive_text(_msg('result-generated')).response.message.endswith(
        'Receive unexpected message, expect task-started, real: result-generated.')


def test_handshake_and_connect_errors():
    r = _protocol.handshake_error(401)
    assert (r.status_code, r.code, r.message, r.request_id) == (
        401, 401, 'Unauthorized, your api-key is invalid!', None)
    assert _protocol.handshake_error(503).message == (
        'Service temporarily unavailable, possibly overloaded or not ready.')
    assert _protocol.handshake_error(429).message == 'Invalid response status'
    r = _protocol.connect_error('127.0.0.1', 1, False, 'Connection refused')
    assert (r.status_code, r.code, r.request_id) == (-1, 'ClientConnectorError', '')
    assert r.message == 'Cannot connect to host 127.0.0.1:1 ssl:None [Connection refused]'
    assert _protocol.timeout_error('x').message == "Error type: <class 'TimeoutError'>, message: x"
