# -*- coding: utf-8 -*-
"""The RASR wire protocol, pure: client frames, server message parsing, the status state machine.

No socket, no thread, no clock. ``rasr_client`` feeds it and acts on what it returns.
"""
import json
from collections import namedtuple

from sis_rasr.bean.sis_enum import WebsocketStatus
from sis_rasr.exception.exceptions import ClientException

S = WebsocketStatus

# Paths appended to the endpoint, per connect method.
PATH_SHORT = '/rasr/short-stream'
PATH_SENTENCE = '/rasr/sentence-stream'
PATH_CONTINUE = '/rasr/continue-stream'
PATH_SASR = '/asr/short-audio'

# The vendor SDK sends cancel as the *string* "false"; kept byte for byte.
END_FRAME = '{"command": "END", "cancel": "false"}'
CANCEL_FRAME = '{"command": "END", "cancel": true}'

START_WAIT_SET = frozenset((S.STATE_START, S.STATE_CLOSE, S.STATE_ERROR))
END_WAIT_SET = frozenset((S.STATE_END, S.STATE_CLOSE, S.STATE_ERROR))
CONNECT_WAIT_SET = frozenset((S.STATE_CONNECTED, S.STATE_CLOSE, S.STATE_ERROR))
# Statuses in which a recognition session is in flight (a server close there cuts results off).
IN_SESSION = frozenset((S.STATE_START_WAITING, S.STATE_START, S.STATE_END_WAITING))

# Kinds of server events.
START = 'START'
EVENT = 'EVENT'
RESULT = 'RESULT'
END = 'END'
ERROR = 'ERROR'          # ERROR and FATAL_ERROR: delivered as the raw text
UNKNOWN = 'UNKNOWN'      # unknown or missing resp_type: delivered as the raw text
MALFORMED = 'MALFORMED'  # not JSON / not an object / binary: delivered as an exception

ServerEvent = namedtuple('ServerEvent', 'kind trace_id payload raw')


def url(endpoint, project_id, path):
    """ endpoint + '/v1/' + project_id + path; plain concatenation like the vendor (None raises TypeError). """
    return endpoint + '/v1/' + project_id + path


def start_frame(request):
    """ The START text frame: default json.dumps separators and ASCII escaping, as the vendor sends it. """
    return json.dumps(request.construct_params())


def end_frame(cancel=False):
    return CANCEL_FRAME if cancel else END_FRAME


def parse(message):
    """ One server TEXT (str) or BINARY (bytes) frame -> ServerEvent. Never raises. """
    if not isinstance(message, str):
        return ServerEvent(MALFORMED, None, ValueError('unexpected binary frame from server (%d bytes)'
                                                       % len(message)), message)
    try:
        result = json.loads(message)
    except ValueError as exc:
        return ServerEvent(MALFORMED, None, exc, message)
    if not isinstance(result, dict):
        return ServerEvent(MALFORMED, None, ValueError('server message is not a JSON object: %.200s' % message),
                           message)
    resp_type = result.get('resp_type')
    trace_id = result.get('trace_id')
    if resp_type == 'START':
        return ServerEvent(START, trace_id, 'trace id is %s' % trace_id, message)
    if resp_type == 'EVENT':
        return ServerEvent(EVENT, trace_id, result.get('event'), message)
    if resp_type == 'RESULT':
        return ServerEvent(RESULT, trace_id, result, message)
    if resp_type == 'END':
        return ServerEvent(END, trace_id, 'trace id is %s' % trace_id, message)
    if resp_type in ('ERROR', 'FATAL_ERROR'):
        return ServerEvent(ERROR, trace_id, message, message)
    return ServerEvent(UNKNOWN, trace_id, message, message)


def status_after(event):
    """ The status a server event moves the client to, or None to keep the current one. """
    if event.kind == START:
        return S.STATE_START
    if event.kind == END:
        return S.STATE_END
    if event.kind in (ERROR, UNKNOWN, MALFORMED):
        return S.STATE_ERROR
    return None


def connect_action(status):
    """ 'connect', 'close_then_connect' or 'ignore' (the vendor warns and returns). """
    if status == S.STATE_ERROR:
        return 'close_then_connect'
    if status in (S.STATE_INIT, S.STATE_CLOSE):
        return 'connect'
    return 'ignore'


def check_start(status):
    if status in (S.STATE_CONNECTED, S.STATE_END):
        return
    raise ClientException("status %s can't send start" % status)


def check_binary(status):
    """ True: send; False: warn and return (END); raises otherwise. """
    if status == S.STATE_START:
        return True
    if status == S.STATE_END:
        return False
    raise ClientException("status %s can't send binary data" % status)


def check_end(status):
    """ True: send; False: warn and return (END); raises otherwise. """
    if status == S.STATE_START:
        return True
    if status == S.STATE_END:
        return False
    raise ClientException("status %s can't send end" % status)


def format_status_set(statuses):
    """ A set printed like the vendor's, in ascending value order so messages are stable. """
    return '{' + ', '.join(repr(s) for s in sorted(statuses, key=lambda s: s.value)) + '}'


def wait_timeout_message(status, statuses, wait_time):
    return "status %s is not received %s in %s time" % (status, format_status_set(statuses), wait_time)


def connect_failed_message(ws_url, status):
    # The comma after "failed" is full-width in the vendor SDK.
    return 'websocket connect failed\uff0c url is %s, status is %s' % (ws_url, status)
