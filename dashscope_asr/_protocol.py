"""The Paraformer real-time protocol, pure: client frames, server-message parsing, session state.

No socket, no thread, no clock. ``_connection`` feeds it what the socket delivers and forwards the
outcomes it returns; ``audio.asr.recognition`` turns outcomes into the vendor's callbacks.
"""
import json
from http import HTTPStatus

from .api_entities.dashscope_response import DashScopeAPIResponse
from .common.constants import SERVICE_503_MESSAGE, WEBSOCKET_ERROR_CODE
from .common.error import UnexpectedMessageReceived, UnknownMessageReceived

# Keys of Recognition kwargs consumed by the request builder instead of going to `parameters`.
RESERVED_KEYS = frozenset((
    'api_key', 'headers', 'base_address', 'user_agent', 'request_timeout', 'resources',
    'workspace', 'session', 'enable_encryption', 'extra_url_parameters', 'flattened_output',
    'task_id', 'sdk_module', 'pre_task_id', 'is_service', 'api_protocol', 'http_method', 'stream',
    'async_request', 'ws_stream_mode', 'is_binary_input', 'query', 'form', 'raw_input'))

UNAUTHORIZED_MESSAGE = 'Unauthorized, your api-key is invalid!'
CLOSE_MESSAGE = ('Receive unexpected websocket close message, details: WSMsgType.CLOSE, '
                 'data: None, extra: None')


def _dumps(obj):
    # The vendor's serialisation: default separators, non-ASCII kept.
    return json.dumps(obj, ensure_ascii=False)


def split_kwargs(kwargs):
    """Drop None values from the sticky kwargs (in place, as the vendor does), split off reserved keys.

    Returns ``(parameters, reserved)``; ``parameters`` keeps insertion order.
    """
    for key in [k for k, v in kwargs.items() if v is None]:
        del kwargs[key]
    parameters = {}
    reserved = {}
    for key, value in kwargs.items():
        (reserved if key in RESERVED_KEYS else parameters)[key] = value
    return parameters, reserved


def phrase_resources(phrase_id):
    return [{'resource_id': phrase_id, 'resource_type': 'asr_phrase'}]


def build_run_task(task_id, model, sample_rate, format, parameters, resources=None, input=None):
    """The ``run-task`` frame, key for key as the vendor SDK sends it."""
    params = {'sample_rate': sample_rate, 'format': format}
    params.update(parameters)
    payload = {'model': model, 'parameters': params, 'input': input if input is not None else {},
               'task': 'asr', 'task_group': 'audio', 'function': 'recognition'}
    if resources:
        payload['resources'] = resources
    return _dumps({'header': {'streaming': 'duplex', 'task_id': task_id, 'action': 'run-task'},
                   'payload': payload})


def build_continue_task(task_id, payload_input):
    return _dumps({'header': {'streaming': 'duplex', 'task_id': task_id, 'action': 'continue-task'},
                   'payload': {'input': payload_input}})


def build_finish_task(task_id):
    return _dumps({'header': {'streaming': 'duplex', 'task_id': task_id, 'action': 'finish-task'},
                   'payload': {'input': {}}})


def error_text(exc_type, message):
    """The vendor's ``Error type: <class '…'>, message: …`` wording for an ``Unknown`` error."""
    return 'Error type: %s, message: %s' % (exc_type, message)


def error_response(status_code, code, message, request_id=''):
    return DashScopeAPIResponse(status_code=status_code, request_id=request_id, code=code,
                                message=message)


def unknown_error(exc_type, message):
    return error_response(-1, 'Unknown', error_text(exc_type, message))


def handshake_error(status):
    """Result for a rejected WebSocket handshake (status is an int, also used as the code)."""
    status = int(status)
    if status in (401, 403):
        message = UNAUTHORIZED_MESSAGE
    elif status == 503:
        message = SERVICE_503_MESSAGE
    else:
        message = 'Invalid response status'
    return error_response(status, status, message, request_id=None)


def connect_error(host, port, secure, reason):
    return error_response(-1, 'ClientConnectorError', 'Cannot connect to host %s:%s ssl:%s [%s]'
                          % (host, port, 'default' if secure else 'None', reason))


def timeout_error(what):
    return unknown_error(TimeoutError, what)


class Outcome(object):
    """What one server message means to the client.

    kind: ``started``, ``event`` (a result for on_event), ``heartbeat`` (a result on_event skips),
    ``complete``, ``error`` or ``ignore``. ``response`` is a DashScopeAPIResponse for results and
    errors; ``has_text`` marks the first-package moment; ``usages`` is the vendor's per-sentence list.
    """
    __slots__ = ('kind', 'response', 'usages', 'has_text', 'sentence', 'at')

    def __init__(self, kind, response=None, usages=None, has_text=False, sentence=None):
        self.kind = kind
        self.response = response
        self.usages = usages
        self.has_text = has_text
        self.sentence = sentence
        self.at = None

    def __repr__(self):
        return 'Outcome(%s, %r)' % (self.kind, self.response)


class RecognitionProtocol(object):
    """State of one task on one connection: waiting for task-started, running, finished."""

    def __init__(self, task_id, streaming=True):
        self.task_id = task_id
        self.streaming = streaming  # heartbeats are filtered in streaming mode only
        self.started = False
        self.finished = False  # a terminal outcome (complete or error) was produced

    def _terminal(self, outcome):
        self.finished = True
        return outcome

    def receive_text(self, text):
        if self.finished:
            return Outcome('ignore')
        try:
            message = json.loads(text)
            header = message['header']
            event = header['event']
        except (ValueError, KeyError, TypeError) as exc:
            return self._terminal(Outcome('error', unknown_error(type(exc), exc)))
        if event == 'task-failed':
            # A bare task-failed (no error fields) is still a task failure (reference D-83).
            return self._terminal(Outcome('error', error_response(
                WEBSOCKET_ERROR_CODE, header.get('error_code'), header.get('error_message'),
                request_id=header.get('task_id'))))
        if not self.started:
            if event == 'task-started':
                self.started = True
                return Outcome('started')
            return self._terminal(Outcome('error', unknown_error(
                UnexpectedMessageReceived,
                'Receive unexpected message, expect task-started, real: %s.' % event)))
        payload = message.get('payload')
        if event == 'result-generated':
            if not isinstance(payload, dict) or 'output' not in payload:
                return Outcome('ignore')  # the vendor took this for completion (reference D-33)
            return self._result(payload)
        if event == 'task-finished':
            return self._terminal(self._complete())
        return self._terminal(Outcome('error', unknown_error(
            UnknownMessageReceived, 'Receive unknown message: %s' % (message,))))

    def _complete(self, usage=None):
        return Outcome('complete', DashScopeAPIResponse(
            status_code=HTTPStatus.OK, request_id=self.task_id, code='', message='', output={},
            usage=usage))

    def _result(self, payload):
        output = payload.get('output') or {}
        usage = payload.get('usage', {})
        if len(output) == 0 or output.get('finished'):
            return self._terminal(self._complete(usage))
        response = DashScopeAPIResponse(status_code=HTTPStatus.OK, request_id=self.task_id, code='',
                                        message='', output=output, usage=usage)
        sentence = output.get('sentence')
        usages = None
        has_text = False
        if 'sentence' in output and isinstance(sentence, dict):
            has_text = bool(sentence.get('text'))
            if usage is not None:
                usages = [{'end_time': sentence.get('end_time'), 'usage': usage}]
            if self.streaming and sentence.get('heartbeat') is True:
                return Outcome('heartbeat', response, usages, has_text, sentence)
        return Outcome('event', response, usages, has_text, sentence)

    def receive_binary(self):
        if self.finished:
            return Outcome('ignore')
        if not self.started:
            text = 'Receive unexpected binary message when wait for task-started'
        else:
            text = 'Receive unexpected binary message'
        return self._terminal(Outcome('error', unknown_error(UnexpectedMessageReceived, text)))

    def closed(self):
        """The server closed (or dropped) the connection."""
        if self.finished:
            return Outcome('ignore')
        return self._terminal(Outcome('error', unknown_error(UnexpectedMessageReceived,
                                                             CLOSE_MESSAGE)))

    def fail(self, response):
        """A client-side failure (connect, handshake, timeout): terminal unless already finished."""
        if self.finished:
            return Outcome('ignore')
        return self._terminal(Outcome('error', response))
