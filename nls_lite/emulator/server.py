"""The gateway's WebSocket side: handshake checks and one state machine per connection (§5.3-5.9).

Everything here runs on the emulator's asyncio loop. The reader loop of a connection is the only
place that consumes frames; timers (idle, delays) are loop callbacks or small tasks, never polls.
"""
import asyncio
import json
import logging
import re
import socket
import struct
import uuid
from urllib.parse import parse_qsl

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import speech

__all__ = ['GatewayServer']

logger = logging.getLogger('nls_lite.emulator')

SUCCESS = 20000000
SUCCESS_TEXT = 'Gateway:SUCCESS:Success.'
MISSING_TOKEN_TEXT = 'Gateway:ACCESS_DENIED:Missing authorization header!'
INVALID_TOKEN_TEXT = "Meta:ACCESS_DENIED:The token '%s' is invalid!"
EXPIRED_TOKEN_TEXT = "Gateway:ACCESS_DENIED:The token '%s' has expired!"
APPKEY_TEXT = 'Meta:APPKEY_NOT_EXIST:Appkey not exist!'
TOO_MANY_TEXT = 'Gateway:TOO_MANY_REQUESTS:Too many requests!'
IDLE_TEXT = "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time, the last directive is '%s'!"
TOO_LONG_TEXT = 'Gateway:CLIENT_ERROR:Audio is too long!'

# (namespace, name) -> (service, verb)
COMMANDS = {
    ('SpeechRecognizer', 'StartRecognition'): ('recognizer', 'start'),
    ('SpeechRecognizer', 'StopRecognition'): ('recognizer', 'stop'),
    ('SpeechTranscriber', 'StartTranscription'): ('transcriber', 'start'),
    ('SpeechTranscriber', 'StopTranscription'): ('transcriber', 'stop'),
    ('SpeechTranscriber', 'ControlTranscriber'): ('transcriber', 'control'),
}
EVENTS = {
    'recognizer': ('SpeechRecognizer', 'RecognitionStarted', 'RecognitionResultChanged', 'RecognitionCompleted'),
    'transcriber': ('SpeechTranscriber', 'TranscriptionStarted', 'TranscriptionResultChanged',
                    'TranscriptionCompleted'),
}
FORMATS = ('pcm', 'wav', 'opus', 'opu', 'speex', 'amr', 'mp3', 'aac')
BOOL_KEYS = ('enable_intermediate_result', 'enable_punctuation_prediction', 'enable_inverse_text_normalization',
             'enable_words', 'enable_voice_detection', 'enable_semantic_sentence_detection', 'disfluency',
             'enable_ignore_sentence_timeout', 'enable_nlp', 'enable_gender_detect')
CONTROL_KEYS = ('max_sentence_silence', 'enable_intermediate_result', 'enable_words')
STRICT_ID = re.compile(r'^[0-9A-Za-z]{32}$')

READY, STARTING, STARTED, STOPPING, DONE, CLOSED = 'READY', 'STARTING', 'STARTED', 'STOPPING', 'DONE', 'CLOSED'


class _Redact(logging.Filter):
    """websockets' DEBUG log prints request headers and the request line: hide tokens there."""

    PATTERN = re.compile(r'(?i)(x-nls-token:\s*|[?&]token=)[^&\s]+')

    def filter(self, record):
        message = record.getMessage()
        if message == 'opening handshake failed' and record.levelno > logging.DEBUG:
            # websockets 13 says this at ERROR when a client (or the refuse fault) drops mid-handshake:
            # routine for an emulator.
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
            record.exc_info = record.exc_text = None
        redacted = self.PATTERN.sub(r'\1***', message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


ws_logger = logging.getLogger('nls_lite.emulator.websockets')
ws_logger.addFilter(_Redact())


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(',', ':'))


def new_id():
    return uuid.uuid4().hex


def task_failed(status, status_text, task_id=''):
    return dumps({'header': {'namespace': 'Default', 'name': 'TaskFailed', 'status': status,
                             'message_id': new_id(), 'task_id': task_id, 'status_text': status_text}})


class Failure(Exception):
    """A TaskFailed to send, then close."""

    def __init__(self, status, text):
        Exception.__init__(self, status, text)
        self.status = status
        self.text = text


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_at(at):
    """'after_start' / 'start' / 'stop' / 'instead_of_completed' / '[after_]audio_ms:X' -> (kind, ms)."""
    at = at or 'after_start'
    if ':' in at:
        kind, _, ms = at.partition(':')
        return 'audio', float(ms)
    return at, None


class ConnState(object):
    """Per-TCP-connection data kept on the websockets connection object."""

    __slots__ = ('record', 'faults', 'auth_failure', 'session', 'lost', 'upgraded', 'ignore_close')

    def __init__(self, record, faults):
        self.record = record
        self.faults = faults
        self.auth_failure = None
        self.session = None
        self.lost = None
        self.upgraded = False
        self.ignore_close = False


class _Connection(ServerConnection):
    """websockets connection with the emulator's hooks: TCP-level faults, ping accounting, close tracking."""

    gateway = None  # set on a per-server subclass

    def connection_made(self, transport):
        self.nls = self.gateway.on_connection_made(self, transport)
        self.nls.lost = self.gateway.loop.create_future()
        super().connection_made(transport)
        if any(name == 'refuse' for name, _ in self.nls.faults):
            # Reset before any HTTP: SO_LINGER 0 turns the close into an RST.
            sock = transport.get_extra_info('socket')
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                except OSError:
                    pass
            self.nls.record.end_reason = 'refused (fault)'
            transport.abort()

    def connection_lost(self, exc):
        try:
            super().connection_lost(exc)
        finally:
            self.gateway.on_connection_lost(self)

    def process_event(self, event):
        session = self.nls.session
        if session is not None and self.gateway.emulator.idle_counts_pings and \
                getattr(getattr(event, 'opcode', None), 'name', '') == 'PING':
            session.touch()
        super().process_event(event)

    def send_data(self):
        if self.nls.ignore_close and self.protocol.close_rcvd is not None:
            self.protocol.data_to_send()  # discard the close reply: the fault under test
            return
        super().send_data()


class GatewayServer(object):
    """The websockets server plus the bookkeeping of its connections."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.loop = None
        self.server = None
        self.port = None
        self.connections = set()
        self.stopping = None

    async def start(self, host, port, ssl_context=None):
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        conn_cls = type('NlsEmulatorConnection', (_Connection,), {'gateway': self})
        kwargs = {}
        if ssl_context is not None:
            kwargs['ssl'] = ssl_context
        self.server = await serve(
            self.handler, host, port, process_request=self.process_request, create_connection=conn_cls,
            ping_interval=None, ping_timeout=None, open_timeout=None, max_size=16 * 1024 * 1024,
            max_queue=64, close_timeout=self.emulator.close_timeout_s, compression=None,
            server_header=None, logger=ws_logger, **kwargs)
        sock = next(iter(self.server.sockets))
        self.port = sock.getsockname()[1]

    async def stop(self):
        self.stopping.set()  # releases hang_handshake waits
        if self.server is None:
            return
        for conn in list(self.connections):
            conn.close_timeout = min(conn.close_timeout or 1.0, 1.0)  # do not wait long for silent clients
        self.server.close()
        waiter = asyncio.ensure_future(self.server.wait_closed())
        # Escalate: cut connections still in the opening handshake (a silent TCP client would hold the
        # close for ever; a second pass catches ones accepted meanwhile), then any open connection that
        # neither answers the close nor drops TCP, then give up.
        for cut_all, timeout in ((False, 0.05), (False, 1.5), (True, 2.0)):
            for conn in list(self.connections):
                if cut_all or not conn.nls.upgraded:
                    conn.transport.abort()
            done, _ = await asyncio.wait([waiter], timeout=timeout)
            if done:
                break
        else:
            waiter.cancel()
            logger.warning('emulator: connections still open after stop')
        for conn in list(self.connections):
            conn.transport.abort()  # accepted in the same instant as the close: too late to be closed

    # -- connection lifecycle --

    def on_connection_made(self, conn, transport):
        peer = transport.get_extra_info('peername')
        record = self.emulator._new_record(peer)
        self.connections.add(conn)
        return ConnState(record, self.emulator._take_connection_faults())

    def on_connection_lost(self, conn):
        self.connections.discard(conn)
        state = conn.nls
        if not state.lost.done():
            state.lost.set_result(None)
        record = state.record
        protocol = conn.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        if state.upgraded:
            if rcvd is not None:
                record.close_code, record.close_reason = rcvd.code, rcvd.reason
            elif sent is not None:
                record.close_code, record.close_reason = sent.code, sent.reason
            else:
                record.close_code = 1006
            if record.closed_by is None:
                if rcvd is not None and (sent is None or protocol.close_rcvd_then_sent):
                    record.closed_by = 'client'
                elif sent is not None:
                    record.closed_by = 'server'
                else:
                    record.closed_by = 'client'  # TCP dropped without a close frame
            if record.end_reason is None:
                record.end_reason = 'client closed' if record.closed_by == 'client' else 'server closed'
        elif record.end_reason is None:
            record.end_reason = 'connection lost during handshake'
        if state.session is not None:
            state.session.on_lost()
        logger.debug('connection #%d ended: %s (close %s by %s)', record.number, record.end_reason,
                     record.close_code, record.closed_by)
        self.emulator._end_record(record)

    # -- handshake (§5.3) --

    def _reject(self, conn, status, body, content_type):
        response = conn.respond(status, body)
        del response.headers['Content-Type']
        response.headers['Content-Type'] = content_type
        conn.nls.record.handshake_status = status
        conn.nls.record.end_reason = 'handshake rejected (%d)' % status
        return response

    async def process_request(self, conn, request):
        emu = self.emulator
        state = conn.nls
        record = state.record
        path, _, query = request.path.partition('?')
        record.path = path
        record.query = dict(parse_qsl(query, keep_blank_values=True))
        headers = request.headers
        record.headers = list(headers.raw_items())
        record.sec_websocket_keys = headers.get_all('Sec-WebSocket-Key')
        # The original SDK sends two Sec-WebSocket-Key/Version headers; keep the first (the random key
        # its client checks the accept value against), or websockets answers 400.
        for name in ('Sec-WebSocket-Key', 'Sec-WebSocket-Version'):
            values = headers.get_all(name)
            if len(values) > 1:
                del headers[name]
                headers[name] = values[0]
        if path != '/ws/v1':
            return self._reject(conn, 404, 'Not Found\n', 'text/plain; charset=utf-8')
        token = headers.get('X-NLS-Token')
        source = 'header' if token is not None else None
        if token is None and 'token' in record.query:
            token, source = record.query['token'], 'query'
        record.token, record.token_source = token, source
        if token:
            state.faults.extend(emu._token_faults_for(token))
        for name, params in list(state.faults):
            if name == 'reject_handshake':
                status = int(params.get('status', 403))
                body = params.get('body')
                ctype = params.get('content_type')
                if body is None:
                    body = task_failed(40000001, 'Gateway:ACCESS_DENIED:Rejected by fault injection!')
                elif not isinstance(body, str):
                    body = dumps(body)
                if ctype is None:
                    ctype = 'application/json; charset=utf-8' if body.lstrip().startswith('{') \
                        else 'text/plain; charset=utf-8'
                return self._reject(conn, status, body, ctype)
            if name == 'hang_handshake':
                record.end_reason = 'handshake never answered (fault)'
                waits = [asyncio.ensure_future(self.stopping.wait()), state.lost]
                seconds = params.get('seconds')
                try:
                    await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waits[0].cancel()
                conn.transport.abort()
                return self._reject(conn, 503, 'Service Unavailable\n', 'text/plain; charset=utf-8')
        failure = emu._check_token(token)
        if failure is not None:
            record.auth_failure = failure
            if emu.auth_failure_mode == 'taskfailed':
                state.auth_failure = failure
                return None
            return self._reject(conn, 403, task_failed(40000001, failure), 'application/json; charset=utf-8')
        return None

    async def handler(self, conn):
        state = conn.nls
        state.upgraded = True
        state.record.handshake_status = 101
        session = Session(self, conn)
        state.session = session
        await session.run()


class Session(object):
    """One connection's state machine (§5.5)."""

    def __init__(self, gateway, conn):
        self.gateway = gateway
        self.emu = gateway.emulator
        self.ws = conn
        self.state_obj = conn.nls
        self.record = conn.nls.record
        self.loop = gateway.loop
        self.state = READY
        self.service = None
        self.namespace = 'Default'
        self.task_id = ''
        self.last_directive = ''
        self.closing = False
        self.pending = []
        self.task = None
        self.counted = False
        self.tasks = set()
        self.idle_handle = None
        self.last_activity = self.loop.time()
        self.idle_timeout = self.emu.idle_timeout_s
        self.each_delay = 0.0
        self.point_faults = []
        self.flags = set()
        self.flag_params = {}
        self.delays = {}
        self._apply_faults(conn.nls.faults)

    # -- faults --

    def _apply_faults(self, faults):
        for name, params in faults:
            if name == 'idle_timeout_s':
                value = params.get('seconds', params.get('value'))
                self.idle_timeout = None if value is None else float(value)
            elif name == 'delay':
                event = params.get('event', 'each')
                seconds = float(params.get('ms', 0)) / 1000.0
                if event == 'each':
                    self.each_delay += seconds
                else:
                    self.delays[event] = self.delays.get(event, 0.0) + seconds
            elif name in ('malformed_json', 'missing_header', 'unknown_event', 'binary_to_asr', 'send_error'):
                default = 'start' if name == 'send_error' else 'after_start'
                kind, ms = _parse_at(params.get('at', default))
                self.point_faults.append([name, params, kind, ms, False])
            elif name == 'close_mid_stream':
                self.point_faults.append([name, params, 'audio', float(params.get('after_audio_ms', 0)), False])
            elif name in ('no_started', 'no_completed', 'close_before_started', 'ignore_client_close',
                          'no_pong'):
                self.flags.add(name)
                self.flag_params[name] = params
                if name == 'ignore_client_close':
                    self.state_obj.ignore_close = True
        self.record.faults.extend(faults)

    # -- io --

    def touch(self):
        self.last_activity = self.loop.time()

    async def send(self, message):
        if self.each_delay:
            await asyncio.sleep(self.each_delay)
        self.record.sent.append(message)
        try:
            await self.ws.send(message)
        except ConnectionClosed:
            pass

    async def send_all(self, messages):
        for message in messages:
            await self.send(message)

    def event(self, name, payload=None):
        msg = {'header': {'namespace': self.namespace, 'name': name, 'status': SUCCESS, 'message_id': new_id(),
                          'task_id': self.task_id, 'status_text': SUCCESS_TEXT}}
        if payload is not None:
            msg['payload'] = payload
        return dumps(msg)

    async def fail(self, status, text, keep_open=False, task_id=None):
        if self.closing:
            return
        tid = self.task_id if task_id is None else task_id
        self.record.end_reason = 'TaskFailed %d' % status
        self._release()
        if not keep_open:
            self.closing = True
            self.state = CLOSED
        await self.send(task_failed(status, text, tid))
        if not keep_open:
            self.record.closed_by = 'server'
            await self.ws.close(1000)

    def spawn(self, coro):
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _release(self):
        if self.counted:
            self.counted = False
            self.emu._active_tasks -= 1

    def on_lost(self):
        self.state = CLOSED
        self._release()
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        for task in list(self.tasks):
            task.cancel()

    # -- idle timer: one call_at per session, re-armed lazily from last_activity --

    def _arm_idle(self):
        if self.idle_timeout is not None and not self.closing:
            self.idle_handle = self.loop.call_at(self.last_activity + self.idle_timeout, self._idle_check)

    def _idle_check(self):
        self.idle_handle = None
        if self.closing or self.state == CLOSED:
            return
        if self.loop.time() < self.last_activity + self.idle_timeout - 0.001:
            self._arm_idle()
            return
        self.spawn(self.fail(40000004, IDLE_TEXT % self.last_directive))

    # -- main loop --

    async def run(self):
        if self.state_obj.auth_failure is not None:
            await self.fail(40000001, self.state_obj.auth_failure, task_id='')
            return
        if 'no_pong' in self.flags:
            self.ws.transport.pause_reading()
        self._arm_idle()
        record = self.record
        try:
            while True:
                message = await self.ws.recv()
                self.last_activity = self.loop.time()
                if isinstance(message, str):
                    record.frames.append(('text', message))
                    await self.on_text(message)
                else:
                    record.binary_frames += 1
                    record.binary_bytes += len(message)
                    record.frames.append(('binary', len(message)))
                    if record.audio is not None:
                        record.audio.extend(message)
                    await self.on_binary(message)
        except ConnectionClosed:
            pass
        finally:
            self.on_lost()

    async def on_text(self, raw):
        parsed = None
        try:
            parsed = json.loads(raw)
        except ValueError:
            pass
        self.record.text_frames.append((raw, parsed))
        if self.closing:
            return
        try:
            await self.on_message(parsed)
        except Failure as failure:
            await self.fail(failure.status, failure.text)

    async def on_message(self, msg, queued=False):
        if not isinstance(msg, dict) or not isinstance(msg.get('header'), dict):
            raise Failure(40000002, 'Gateway:MESSAGE_INVALID:Message is not a JSON object with a header!')
        header = msg['header']
        namespace, name = header.get('namespace'), header.get('name')
        if not isinstance(namespace, str) or not isinstance(name, str):
            raise Failure(40000002, 'Gateway:MESSAGE_INVALID:Message header.namespace or header.name is missing!')
        command = COMMANDS.get((namespace, name))
        if command is None:
            raise Failure(40000002, "Gateway:MESSAGE_INVALID:Unsupported directive '%s.%s'!" % (namespace, name))
        for key in ('task_id', 'message_id'):
            value = header.get(key)
            if not isinstance(value, str) or not value or (self.emu.strict_ids and not STRICT_ID.match(value)):
                raise Failure(40000002, 'Gateway:MESSAGE_INVALID:Invalid %s!' % key)
        service, verb = command
        self.last_directive = name
        self.record.directives.append(name)
        if self.state == STARTING and not queued and verb != 'start':
            self.pending.append(('text', msg))
            return
        if verb == 'start':
            await self.on_start(service, namespace, msg)
        elif verb == 'stop':
            await self.on_stop(service, msg)
        else:
            await self.on_control(service, msg)

    def _check_task(self, service, header, name):
        if self.state not in (STARTED, STARTING, STOPPING, DONE) or self.task is None:
            raise Failure(40000002, "Gateway:MESSAGE_INVALID:Directive '%s' received but no task started!" % name)
        if service != self.service:
            raise Failure(40000002, "Gateway:MESSAGE_INVALID:Directive '%s' does not belong to the started task!"
                          % name)
        if self.emu.strict_task_id and header.get('task_id') != self.task_id:
            raise Failure(40000002, "Gateway:MESSAGE_INVALID:task_id does not match the started task!")

    # -- Start --

    async def on_start(self, service, namespace, msg):
        header = msg['header']
        if self.state != READY or (self.task is not None and not self.emu.allow_reuse):
            raise Failure(40000002, 'Gateway:MESSAGE_INVALID:Task already started!')
        if 'close_before_started' in self.flags:
            self.closing = True
            self.record.end_reason = 'closed before started (fault)'
            self.record.closed_by = 'server'
            params = self.flag_params.get('close_before_started', {})
            code = params.get('code', 1000)
            if code is None:
                self.ws.transport.abort()
            else:
                await self.ws.close(code, params.get('reason', ''))
            return
        self.task_id = header['task_id']
        self.service = service
        self.namespace = namespace
        self.record.task_ids.append(self.task_id)
        appkey = header.get('appkey')
        self.record.appkey = appkey
        appconf = self.emu._appkey_conf(appkey)
        if appconf is None:
            raise Failure(40020105, APPKEY_TEXT)
        if self.emu.trial_expired:
            raise Failure(40000010, 'Gateway:FREE_TRIAL_EXPIRED:The free trial has expired!')
        payload = msg.get('payload')
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise Failure(40000002, 'Gateway:MESSAGE_INVALID:payload must be a JSON object!')
        payload = dict(payload)
        inband_script = payload.pop('x_emulator_script', None)
        inband_fault = payload.pop('x_emulator_fault', None)
        segmentation = payload.pop('x_emulator_segmentation', None) or self.emu.segmentation
        for key in list(payload):
            if key.startswith('x_emulator_'):
                del payload[key]
        params = validate_start(service, payload, appconf, self.emu)
        if inband_fault is not None:
            self._apply_faults(_inband_faults(inband_fault))
            if self.idle_handle is not None:  # an in-band idle_timeout_s applies from now
                self.idle_handle.cancel()
                self._arm_idle()
        max_sessions = self.emu.max_sessions
        if max_sessions is not None and self.emu._active_tasks >= max_sessions:
            raise Failure(40000005, TOO_MANY_TEXT)
        self.emu._active_tasks += 1
        self.counted = True
        script, decided = self.emu._resolve_script(inband_script if self.emu.allow_inband_script else None,
                                                   appconf)
        self.task = Task(self, service, params, script, decided, segmentation)
        self.task.appconf = appconf
        self.record.start_payloads.append(payload)
        self.state = STARTING
        delay = self.emu.delay_started_ms / 1000.0 + self.delays.get('started', 0.0)
        if 'no_started' in self.flags:
            return
        if delay > 0:
            self.spawn(self._started_later(delay))
        else:
            await self._send_started()

    async def _started_later(self, delay):
        await asyncio.sleep(delay)
        await self._send_started()

    async def _send_started(self):
        for fault in self.point_faults:
            if fault[2] == 'start' and not fault[4] and fault[0] == 'send_error':
                fault[4] = True
                await self._fire(fault)
                return
        payload = {'session_id': new_id()} if self.emu.started_payload_session_id else None
        await self.send(self.event(EVENTS[self.service][1], payload))
        # Drain what arrived while STARTING, in order, before new frames are handled directly.
        while self.pending and not self.closing:
            kind, item = self.pending.pop(0)
            if kind == 'text':
                try:
                    await self.on_message(item, queued=True)
                except Failure as failure:
                    await self.fail(failure.status, failure.text)
            else:
                await self._audio(item)
        if self.state == STARTING:
            self.state = STARTED
        await self._points('after_start')

    # -- audio --

    async def on_binary(self, data):
        if self.closing:
            return
        state = self.state
        if state == STARTED:
            await self._audio(data)
        elif state == STARTING:
            self.pending.append(('audio', data))
        elif state in (STOPPING, DONE):
            return
        elif self.emu.audio_before_start != 'ignore':
            await self.fail(40000002, 'Gateway:MESSAGE_INVALID:Binary audio received before start!')

    async def _audio(self, data):
        task = self.task
        try:
            out = task.feed(data)
        except Failure as failure:
            await self.fail(failure.status, failure.text)
            return
        if out:
            await self.send_all(out)
        if task.completed_by_server and self.state == STARTED:
            self.state = DONE
            self._release()
        if self.point_faults:
            await self._points('audio', task.audio_ms())

    async def _points(self, kind, audio_ms=None):
        for fault in self.point_faults:
            if fault[4] or fault[2] != kind or self.closing:
                continue
            if kind == 'audio' and audio_ms < fault[3]:
                continue
            fault[4] = True
            await self._fire(fault)

    async def _fire(self, fault):
        name, params = fault[0], fault[1]
        self.record.fired.append(name)
        if name == 'malformed_json':
            await self.send('{"header":{"namespace":"%s","name":"%s' % (self.namespace, EVENTS[self.service][2]))
        elif name == 'missing_header':
            await self.send('{"payload":{}}')
        elif name == 'unknown_event':
            await self.send(self.event(params.get('name', 'UnknownEvent'), {}))
        elif name == 'binary_to_asr':
            await self.send(b'\x00' * 32)
        elif name == 'send_error':
            await self.fail(int(params.get('status', 50000000)),
                            params.get('status_text', 'Gateway:SERVER_ERROR:Injected server error!'),
                            keep_open=bool(params.get('keep_open', False)))
        elif name == 'close_mid_stream':
            self.closing = True
            self.record.closed_by = 'server'
            self.record.end_reason = 'closed mid-stream (fault)'
            code = params.get('code', 1011)
            if code is None:
                self.ws.transport.abort()
            else:
                await self.ws.close(int(code), params.get('reason', ''))

    # -- Stop / Control --

    async def on_stop(self, service, msg):
        self._check_task(service, msg['header'], msg['header']['name'])
        if self.state == STOPPING:
            return
        if self.state == DONE:  # the recognizer already completed on its own (voice detection)
            self.state = READY
            return
        self.state = STOPPING
        for fault in self.point_faults:
            if not fault[4] and fault[2] in ('stop', 'instead_of_completed'):
                fault[4] = True
                await self._fire(fault)
                if fault[0] != 'send_error' or fault[1].get('keep_open'):
                    self.state = READY
                    self._release()
                return
        if 'no_completed' in self.flags:
            return
        delay = self.emu.delay_completed_ms / 1000.0 + self.delays.get('completed', 0.0)
        if delay > 0:
            self.spawn(self._completed_later(delay))
        else:
            await self._complete()

    async def _completed_later(self, delay):
        await asyncio.sleep(delay)
        await self._complete()

    async def _complete(self):
        try:
            out = self.task.finish()
        except Failure as failure:
            await self.fail(failure.status, failure.text)
            return
        if self.state == STOPPING:
            self.state = READY
        self._release()
        await self.send_all(out)

    async def on_control(self, service, msg):
        self._check_task(service, msg['header'], 'ControlTranscriber')
        payload = msg.get('payload')
        if isinstance(payload, dict):
            self.task.control(payload)


def _inband_faults(value):
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict) and isinstance(item.get('name'), str):
            params = dict(item)
            out.append((params.pop('name'), params))
    return out


def validate_start(service, payload, appconf, emu):
    """Start payload -> task parameters; raises Failure 40000003/41010101 (§5.4)."""
    fmt = payload.get('format', 'pcm')
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise Failure(40000003, "Gateway:PARAMETER_INVALID:Unsupported format '%s'!" % (fmt,))
    rate = payload.get('sample_rate', 16000)
    if not _is_int(rate) or rate not in (8000, 16000):
        raise Failure(40000003, "Gateway:PARAMETER_INVALID:Unsupported sample_rate '%s'!" % (rate,))
    model_rate = appconf.get('sample_rate')
    if model_rate is not None and rate != model_rate:
        raise Failure(41010101, 'Gateway:UNSUPPORTED_SAMPLE_RATE:Sample rate %d does not match the model '
                                'of the appkey (%d)!' % (rate, model_rate))
    for key in BOOL_KEYS:
        if key in payload and not isinstance(payload[key], bool):
            raise Failure(40000003, "Gateway:PARAMETER_INVALID:'%s' must be a boolean!" % key)
    low, high = emu.max_sentence_silence_range
    mss = payload.get('max_sentence_silence', 800)
    if 'max_sentence_silence' in payload and (not _is_int(mss) or not low <= mss <= high):
        raise Failure(40000003, "Gateway:PARAMETER_INVALID:'max_sentence_silence' must be an integer in "
                                "%d..%d!" % (low, high))
    for key in ('max_start_silence', 'max_end_silence'):
        if key in payload and (not _is_int(payload[key]) or payload[key] < 0):
            raise Failure(40000003, "Gateway:PARAMETER_INVALID:'%s' must be a non-negative integer!" % key)
    snt = payload.get('speech_noise_threshold', 0)
    if 'speech_noise_threshold' in payload and (not _is_number(snt) or not -1 <= snt <= 1):
        raise Failure(40000003, "Gateway:PARAMETER_INVALID:'speech_noise_threshold' must be a number in "
                                "[-1, 1]!")
    return {
        'format': fmt.lower(), 'sample_rate': rate,
        'intermediate': payload.get('enable_intermediate_result', False),
        'punctuation': payload.get('enable_punctuation_prediction', False),
        'itn': payload.get('enable_inverse_text_normalization', False),
        'words': payload.get('enable_words', False),
        'voice_detection': payload.get('enable_voice_detection', False),
        'max_start_silence': payload.get('max_start_silence'),
        'max_end_silence': payload.get('max_end_silence', 800),
        'max_sentence_silence': mss,
        'speech_noise_threshold': snt,
    }


class Task(object):
    """One recognition task: audio in, gateway events out (§5.7)."""

    def __init__(self, session, service, params, script, decided, segmentation):
        self.session = session
        self.emu = emu = session.emu
        self.service = service
        self.params = params
        self.sentences = speech.parse_script(script) if script is not None else []
        self.script_decided = decided  # False: wait for the register_audio fingerprint
        self.fingerprint = bytearray() if not decided else None
        self.rate = params['sample_rate']
        self.pcm = params['format'] in ('pcm', 'wav')
        self.wav_buf = bytearray() if params['format'] == 'wav' else None
        self.pcm_bytes = 0  # after any WAV header; odd chunk sizes are fine
        self.bytes = 0
        self.first_audio = None
        self.segmentation = segmentation if self.pcm else 'none'
        if self.segmentation == 'script' and not self.pcm:
            self.segmentation = 'none'
        silence = params['max_sentence_silence'] if service == 'transcriber' else params['max_end_silence']
        self.vad = None
        if self.pcm and self.segmentation == 'vad':
            self.vad = speech.EnergyVad(self.rate, emu.vad_threshold_dbfs + 10.0 * params['speech_noise_threshold'],
                                        emu.min_speech_ms, silence, emu.max_sentence_ms)
        self.index = 0            # sentences begun (1-based index of the current/last one)
        self.open = False
        self.begin_ms = 0
        self.last_end_ms = 0
        self.first_begin_ms = None
        self.last_partial_ms = None
        self.last_partial = ''
        self.last_partial_units = 0
        self.completed_by_server = False
        self.ended = False
        self._plan = None
        self.appconf = None

    # -- helpers --

    def audio_ms(self):
        if self.pcm:
            return (self.pcm_bytes // 2) * 1000 // self.rate
        if self.first_audio is None:
            return 0
        return int((self.session.loop.time() - self.first_audio) * 1000)

    def _ensure_script(self):
        if not self.script_decided:
            self.script_decided = True
            script = self.emu._match_audio(bytes(self.fingerprint), self.appconf)
            self.fingerprint = None
            self.sentences = speech.parse_script(script)

    def _text(self, sentence):
        return sentence.result(self.params['itn'], self.params['punctuation'])

    def _sentence_text(self, k, rest=False):
        """Text of sentence k (1-based); with rest, sentences k.. joined (unassigned ones at Stop)."""
        chosen = self.sentences[k - 1:] if rest else self.sentences[k - 1:k]
        return speech.join_sentences(self._text(s) for s in chosen)

    def _all_text(self):
        return speech.join_sentences(self._text(s) for s in self.sentences)

    def _speech_seen(self):
        if self.vad is not None:
            return self.vad.speech_seen
        return self.first_audio is not None or self.pcm_bytes > 0

    # -- messages --

    def _sentence_begin(self, begin_ms):
        self.index += 1
        self.open = True
        self.begin_ms = begin_ms
        if self.first_begin_ms is None:
            self.first_begin_ms = begin_ms
        self.last_partial_ms = None
        self.last_partial = ''
        self.last_partial_units = 0
        return self.session.event('SentenceBegin', {'index': self.index, 'time': begin_ms})

    def _sentence_end(self, end_ms, text, confidence):
        self.open = False
        self.last_end_ms = end_ms
        words = speech.word_list(text, self.begin_ms, end_ms) if self.params['words'] else []
        payload = {'index': self.index, 'time': end_ms, 'result': text, 'confidence': confidence,
                   'words': words, 'status': 0, 'gender': '', 'begin_time': self.begin_ms,
                   'fixed_result': '', 'unfixed_result': '',
                   'stash_result': {'sentenceId': self.index + 1, 'beginTime': end_ms, 'text': '', 'fixedText': '',
                                    'unfixedText': '', 'currentTime': end_ms, 'words': []},
                   'audio_extra_info': '', 'sentence_id': new_id(), 'gender_score': 0.0}
        return self.session.event('SentenceEnd', payload)

    def _confidence(self, k):
        if 1 <= k <= len(self.sentences):
            return self.sentences[k - 1].confidence
        return 0.9

    def _recognition_completed(self, result, duration):
        payload = {'result': result, 'duration': duration}
        if self.params['words']:
            begin = self.first_begin_ms or 0
            end = self.vad.last_speech_end_ms if self.vad is not None and self.vad.speech_seen else duration
            payload['words'] = speech.word_list(result, begin, end)
        return self.session.event(EVENTS['recognizer'][3], payload)

    # -- audio pipeline --

    def feed(self, data):
        if self.ended or self.completed_by_server:
            return []
        if self.first_audio is None:
            self.first_audio = self.session.loop.time()
        self.bytes += len(data)
        if self.wav_buf is not None:
            self.wav_buf.extend(data)
            try:
                offset = speech.parse_wav_header(bytes(self.wav_buf))
            except speech.WavHeaderError as exc:
                raise Failure(40000009, 'Gateway:WAV_HEADER_INVALID:%s!' % exc)
            if offset is None:
                return []
            data = bytes(self.wav_buf[offset:])
            self.wav_buf = None
        if self.fingerprint is not None:
            self.fingerprint.extend(data[:6400 - len(self.fingerprint)])
            if len(self.fingerprint) >= 6400:
                self._ensure_script()
        out = []
        if self.pcm:
            self.pcm_bytes += len(data)
        if self.service == 'recognizer':
            self._recognizer_audio(data, out)
        else:
            self._transcriber_audio(data, out)
        return out

    def _too_long(self, out):
        if self.bytes > self.emu.max_audio_bytes or self.audio_ms() > self.emu.max_audio_ms:
            if self.emu.too_long == 'completed':
                self._ensure_script()
                out.append(self._recognition_completed(self._final_recognizer_text(), self.audio_ms()))
                self.completed_by_server = True
                return True
            raise Failure(40000000, TOO_LONG_TEXT)
        return False

    def _final_recognizer_text(self):
        if self.emu.require_speech_for_text and not self._speech_seen() and self.segmentation != 'script':
            return ''
        return self._all_text()

    def _recognizer_audio(self, data, out):
        if self._too_long(out):
            return
        params = self.params
        ended = False
        if self.vad is not None:
            for kind, ms in self.vad.feed(data):
                if kind == 'begin' and self.first_begin_ms is None:
                    self.first_begin_ms = ms
                elif kind == 'end' and params['voice_detection']:
                    ended = True
                    break
        now = self.audio_ms()
        if ended:
            self._ensure_script()
            out.append(self._recognition_completed(self._all_text(), now))
            self.completed_by_server = True
            return
        if params['voice_detection'] and params['max_start_silence'] and not self._speech_seen_vad() \
                and now >= params['max_start_silence']:
            if self.emu.start_silence_outcome == 'taskfailed':
                raise Failure(40000000, 'Gateway:CLIENT_ERROR:No speech detected before max_start_silence!')
            out.append(self._recognition_completed('', now))
            self.completed_by_server = True
            return
        if params['intermediate'] and self.script_decided:
            speech_ms = self.vad.total_speech_ms if self.vad is not None else now
            self._maybe_partial(self._all_text, speech_ms, now, out)

    def _speech_seen_vad(self):
        return self.vad.speech_seen if self.vad is not None else True

    def _maybe_partial(self, text_of, speech_ms, now, out):
        """A *ResultChanged when the interval passed and the revealed prefix grew; text_of() is lazy
        because this runs for every audio frame."""
        if self.last_partial_ms is not None and now - self.last_partial_ms < self.emu.partial_interval_ms:
            return
        n = int(speech_ms // self.emu.ms_per_char)
        if n <= self.last_partial_units:
            return
        self.last_partial_units = n
        partial = speech.partial_text(text_of(), n)
        if not partial or partial == self.last_partial:
            return
        self.last_partial = partial
        self.last_partial_ms = now
        if self.service == 'recognizer':
            out.append(self.session.event(EVENTS['recognizer'][2], {'result': partial, 'duration': now}))
        else:
            out.append(self.session.event(EVENTS['transcriber'][2], {
                'index': self.index, 'time': now, 'result': partial, 'confidence': self._confidence(self.index),
                'words': [], 'status': 0, 'fixed_result': '', 'unfixed_result': ''}))

    def _transcriber_audio(self, data, out):
        if self.vad is not None:
            for kind, ms in self.vad.feed(data):
                if kind == 'begin':
                    out.append(self._sentence_begin(ms))
                else:
                    self._ensure_script()
                    k = self.index
                    out.append(self._sentence_end(ms, self._sentence_text(k), self._confidence(k)))
            if self.open and self.params['intermediate'] and self.script_decided:
                k = self.index
                self._maybe_partial(lambda: self._sentence_text(k), self.vad.sentence_speech_ms,
                                    self.audio_ms(), out)
            return
        now = self.audio_ms()
        if self.segmentation == 'script':
            self._ensure_script()
            for k, begin, end in self._script_plan():
                if k == self.index + 1 and not self.open and now >= begin:
                    out.append(self._sentence_begin(begin))
                if k == self.index and self.open and now >= end:
                    out.append(self._sentence_end(end, self._sentence_text(k), self._confidence(k)))
            if self.open and self.params['intermediate']:
                k = self.index
                self._maybe_partial(lambda: self._sentence_text(k), max(0, now - self.begin_ms), now, out)
            return
        # Undecoded formats: one utterance from the first frame to Stop, on wall-clock audio time.
        if not self.open and self.index == 0:
            out.append(self._sentence_begin(0))
        if self.open and self.params['intermediate'] and self.script_decided:
            self._maybe_partial(lambda: self._sentence_text(1, rest=True), now, now, out)

    def _script_plan(self):
        if self._plan is None:
            plan = []
            prev_end = 0
            for k, sentence in enumerate(self.sentences, 1):
                begin = sentence.begin_ms if sentence.begin_ms is not None else prev_end + 200
                n = max(1, len(speech.units(sentence.text)))
                end = sentence.end_ms if sentence.end_ms is not None else begin + n * self.emu.ms_per_char + 150
                plan.append((k, begin, max(begin, end)))
                prev_end = end
            self._plan = plan
        return self._plan

    def control(self, payload):
        sources = [payload]
        if isinstance(payload.get('ex'), dict):
            sources.append(payload['ex'])
        for src in sources:
            mss = src.get('max_sentence_silence')
            low, high = self.emu.max_sentence_silence_range
            if _is_int(mss) and low <= mss <= high:
                self.params['max_sentence_silence'] = mss
                if self.vad is not None and self.service == 'transcriber':
                    self.vad.set_max_silence(mss)
            for key, name in (('enable_intermediate_result', 'intermediate'), ('enable_words', 'words')):
                if isinstance(src.get(key), bool):
                    self.params[name] = src[key]

    # -- Stop --

    def finish(self):
        """Events answering Stop: close the open sentence, then *Completed (§5.5)."""
        self.ended = True
        if self.wav_buf is not None and self.bytes:
            raise Failure(40000009, 'Gateway:WAV_HEADER_INVALID:truncated WAV header!')
        self._ensure_script()
        now = self.audio_ms()
        out = []
        if self.service == 'recognizer':
            if not self.completed_by_server:
                out.append(self._recognition_completed(self._final_recognizer_text(), now))
            return out
        n = len(self.sentences)
        if self.open:
            end = self.vad.last_speech_end_ms if self.vad is not None else now
            k = self.index
            out.append(self._sentence_end(end, self._sentence_text(k, rest=True), self._confidence(k)))
        elif self.index == 0:
            if not self.emu.require_speech_for_text and n and (self.bytes or self.segmentation == 'script'):
                out.append(self._sentence_begin(0))
                out.append(self._sentence_end(now, self._all_text(), self._confidence(1)))
        elif self.index < n:
            # Speech ended before the script did: the rest arrives as one last sentence at Stop.
            out.append(self._sentence_begin(self.last_end_ms))
            k = self.index
            out.append(self._sentence_end(now, self._sentence_text(k, rest=True), self._confidence(k)))
        out.append(self.session.event(EVENTS['transcriber'][3]))
        return out
