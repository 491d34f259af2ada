"""The NLS gateway wire format and the client session state machine.

Pure: builds every client command (exact JSON and key order of the original SDK), parses every server
frame into one event, and says which transitions a session may take. No socket, no thread, no clock.
"""
import http.client
import json
import uuid

from .util import GetDefaultContext

SUCCESS = 20000000

# Client-side status codes (borrowed from the vendor C++ SDK's 10000xxx table) for synthetic TaskFailed.
SSL_ERROR = 10000002
SYS_ERROR = 10000003
CONNECT_FAILED = 10000015
HANDSHAKE_REJECTED = 10000100
RECV_TIMEOUT = 10000102
CONNECTION_LOST = 10000105
INVALID_SERVER_MESSAGE = 10000106   # nls_lite's own: a server frame that is not a gateway message

RECOGNIZER_FORMATS = ('pcm', 'opus', 'opu', 'wav', 'mp3', 'speex', 'aac', 'amr')
TRANSCRIBER_FORMATS = ('pcm', 'opus', 'opu', 'wav', 'amr', 'speex', 'mp3', 'aac')


class Service(object):
    """The names one NLS service uses on the wire, and the user callback each server event goes to."""

    def __init__(self, namespace, start, stop, started, completed, events, control=None):
        self.namespace = namespace
        self.start = start
        self.stop = stop
        self.started = started
        self.completed = completed
        self.events = events          # server header.name -> callback name
        self.control = control


RECOGNIZER = Service('SpeechRecognizer', 'StartRecognition', 'StopRecognition',
                     'RecognitionStarted', 'RecognitionCompleted',
                     {'RecognitionResultChanged': 'on_result_changed'})
TRANSCRIBER = Service('SpeechTranscriber', 'StartTranscription', 'StopTranscription',
                      'TranscriptionStarted', 'TranscriptionCompleted',
                      {'SentenceBegin': 'on_sentence_begin',
                       'TranscriptionResultChanged': 'on_result_changed',
                       'SentenceEnd': 'on_sentence_end'},
                      control='ControlTranscriber')


def new_id():
    """32 lowercase hex characters, as the original's message_id and task_id."""
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------------
# Client -> server

def command(service, name, task_id, appkey, payload=None, message_id=None):
    """One client command as the original serializes it: json.dumps defaults (ensure_ascii, ', '/': '
    separators), header keys message_id, task_id, namespace, name, appkey; no payload key when None."""
    message = {'header': {'message_id': message_id or new_id(), 'task_id': task_id,
                          'namespace': service.namespace, 'name': name, 'appkey': appkey}}
    if payload is not None:
        message['payload'] = payload
    message['context'] = GetDefaultContext()
    return json.dumps(message)


def start_payload(aformat, sample_rate, enable_intermediate_result, enable_punctuation_prediction,
                  enable_inverse_text_normalization, ex=None):
    """StartRecognition/StartTranscription payload; `ex` is merged last and may override any key."""
    payload = {'format': aformat,
               'sample_rate': sample_rate,
               'enable_intermediate_result': enable_intermediate_result,
               'enable_punctuation_prediction': enable_punctuation_prediction,
               'enable_inverse_text_normalization': enable_inverse_text_normalization}
    if ex:
        payload.update(ex)
    return payload


def start_command(service, task_id, appkey, payload):
    return command(service, service.start, task_id, appkey, payload)


def stop_command(service, task_id, appkey):
    return command(service, service.stop, task_id, appkey)


def control_command(service, task_id, appkey, payload):
    return command(service, service.control, task_id, appkey, payload)


def check_ping(ping_interval, ping_timeout):
    """None when the ping settings are usable; otherwise the InvalidParameter text."""
    if (ping_interval is not None and ping_interval < 0) or (ping_timeout is not None and ping_timeout < 0):
        return 'Ensure ping_interval > ping_timeout'
    if ping_timeout and ping_interval and ping_interval <= ping_timeout:
        return 'Ensure ping_interval > ping_timeout'
    return None


# ---------------------------------------------------------------------------------------------------
# Server -> client

STARTED = 'started'
RESULT = 'result'
COMPLETED = 'completed'
FAILED = 'failed'
UNKNOWN = 'unknown'        # well-formed, but a name this service does not handle: logged and dropped
MALFORMED = 'malformed'    # not JSON, or no header/name: the session cannot be trusted any more


class Event(object):
    __slots__ = ('kind', 'name', 'text', 'callback', 'parsed')

    def __init__(self, kind, name, text, callback=None, parsed=True):
        self.kind = kind
        self.name = name
        self.text = text            # the raw frame: callbacks get it verbatim, never re-serialized
        self.callback = callback    # user callback name for RESULT events
        self.parsed = parsed        # False when the text was not JSON at all

    def __repr__(self):
        return 'Event(%s, %r)' % (self.kind, self.name)


def parse(service, text):
    """Turn one server text frame into one Event."""
    try:
        message = json.loads(text)
    except ValueError:
        return Event(MALFORMED, None, text, parsed=False)
    header = message.get('header') if isinstance(message, dict) else None
    name = header.get('name') if isinstance(header, dict) else None
    if not isinstance(name, str):
        return Event(MALFORMED, None, text)
    if name == service.started:
        return Event(STARTED, name, text)
    if name == service.completed:
        return Event(COMPLETED, name, text)
    if name == 'TaskFailed':
        return Event(FAILED, name, text)
    callback = service.events.get(name)
    if callback:
        return Event(RESULT, name, text, callback)
    return Event(UNKNOWN, name, text)


def task_failed(status, status_text, task_id, namespace='Default'):
    """A TaskFailed message in the gateway's compact form, for errors the SDK itself detects."""
    return json.dumps({'header': {'namespace': namespace, 'name': 'TaskFailed', 'status': status,
                                  'message_id': new_id(), 'task_id': task_id or '',
                                  'status_text': status_text}},
                      ensure_ascii=False, separators=(',', ':'))


def sdk_error(status, name, detail, task_id):
    return task_failed(status, 'SDK:%s:%s' % (name, detail), task_id)


def handshake_rejected(http_status, body, task_id):
    """TaskFailed text for an upgrade answered with a status other than 101.

    A gateway-style JSON body passes its status and text through; otherwise the HTTP status speaks.
    """
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    body = body or ''
    try:
        message = json.loads(body)
        header = message['header']
        status, text = header['status'], header['status_text']
    except (ValueError, KeyError, TypeError):
        pass
    else:
        return task_failed(status, text, header.get('task_id') or task_id,
                           header.get('namespace') or 'Default')
    reason = http.client.responses.get(http_status, '')
    detail = ' '.join(part for part in ('HTTP %s' % http_status, reason, body.strip()[:200]) if part)
    code = HANDSHAKE_REJECTED if http_status == 403 else http_status
    return sdk_error(code, 'HANDSHAKE_REJECTED', detail, task_id)


# ---------------------------------------------------------------------------------------------------
# Session state machine

CONNECTING = 'connecting'   # socket being opened; the Start command goes out as the first frame
STARTING = 'starting'       # Start sent, waiting for *Started
RUNNING = 'started'         # *Started received: audio, control and stop allowed
STOPPING = 'stopping'       # Stop sent, waiting for *Completed
ENDING = 'ending'           # Completed/TaskFailed/error seen, the close handshake is under way
CLOSED = 'closed'           # on_close has run

_NEXT = {
    CONNECTING: (STARTING, ENDING, CLOSED),
    STARTING: (RUNNING, ENDING, CLOSED),
    RUNNING: (STOPPING, ENDING, CLOSED),
    STOPPING: (ENDING, CLOSED),
    ENDING: (CLOSED,),
    CLOSED: (),
}


class SessionState(object):
    """Where one session (one start() .. on_close) stands, and how it ended."""

    def __init__(self):
        self.phase = CONNECTING
        self.outcome = None         # 'completed', 'failed' or None (closed by us / lost)
        self.started = False        # *Started arrived and on_start has returned
        self.completed = False      # *Completed arrived and on_completed has returned
        self.reporter = None        # who reports an abnormal end: 'callback' (on_error) or 'exception'
        self.closing = False        # we asked for the close (stop done, shutdown, timeout)

    def advance(self, phase):
        """Move to `phase`; False (and no change) when the session is already past it."""
        if phase == self.phase:
            return True
        if phase not in _NEXT[self.phase]:
            return False
        self.phase = phase
        return True

    @property
    def active(self):
        return self.phase != CLOSED

    @property
    def accepts_audio(self):
        return self.phase in (RUNNING, STOPPING)

    def claim_report(self, reporter):
        """The first party to detect an abnormal end reports it; the other stays silent."""
        if self.reporter is None:
            self.reporter = reporter
            return True
        return self.reporter == reporter
