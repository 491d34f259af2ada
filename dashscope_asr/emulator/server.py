"""The WebSocket half of the emulator: handshake checks and one task state machine per connection."""
import asyncio
import json
import logging
import time
import uuid

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from . import speech

log = logging.getLogger('dashscope_asr.emulator')

PATHS = ('/api-ws/v1/inference', '/api-ws/v1/inference/')
VALID_FORMATS = speech.FORMATS
STRICT_MODELS = ('paraformer-realtime-v2', 'paraformer-realtime-8k-v2', 'paraformer-realtime-v1',
                 'paraformer-realtime-8k-v1')
STRICT_MODEL_PREFIXES = ('fun-asr-realtime', 'fun-asr-flash-8k-realtime')
IDLE, STARTING, RUNNING, FINISHING, CLOSED = 'IDLE', 'STARTING', 'RUNNING', 'FINISHING', 'CLOSED'

# Where a fault fires unless the injection says otherwise.
DEFAULT_AT = {'refuse': 'accept', 'reject': 'handshake', 'silent': 'handshake',
              'no_task_started': 'run-task', 'no_task_finished': 'finish-task',
              'empty_task_finished': 'finish-task', 'delay': 'run-task'}


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(',', ':'))


def mask_authorization(value):
    if not value:
        return value
    scheme, _, key = value.rpartition(' ')
    shown = key[:3] + '…' + key[-4:] if len(key) > 8 else '…'
    return (scheme + ' ' if scheme else '') + shown


def parse_fault(spec, at=None, task_id=None):
    """``"close:1011:bye"`` → ``{"kind": "close", "args": ["1011", "bye"], "at": …}``."""
    if isinstance(spec, dict):
        fault = dict(spec)
        fault.setdefault('args', [])
    else:
        kind, _, rest = spec.partition(':')
        if kind in ('task_failed', 'reject') and rest:
            args = rest.split(':', 1)
        elif kind == 'close' and rest:
            args = rest.split(':', 1)
        else:
            args = [rest] if rest else []
        fault = {'kind': kind, 'args': args}
    fault['at'] = at or fault.get('at') or DEFAULT_AT.get(fault['kind'], 'run-task')
    fault['task_id'] = task_id or fault.get('task_id')
    return fault


class Frame(object):
    __slots__ = ('direction', 'kind', 'data', 'json', 't')

    def __init__(self, direction, kind, data, parsed, t):
        self.direction = direction
        self.kind = kind
        self.data = data
        self.json = parsed
        self.t = t

    def __repr__(self):
        shown = self.data if self.kind == 'text' else '<%d bytes>' % self.data
        return 'Frame(%s %s %s)' % (self.direction, self.kind, shown)


class ConnectionRecord(object):
    """What one connection did: handshake, every frame both ways, the close."""

    def __init__(self, path, headers, keep_audio=False):
        self.path = path
        self.headers = headers
        self.frames = []
        self.audio = bytearray() if keep_audio else None
        self.close_code = None
        self.close_reason = None
        self.tasks = []

    @property
    def received(self):
        return [f for f in self.frames if f.direction == 'in']

    @property
    def sent(self):
        return [f for f in self.frames if f.direction == 'out']

    def texts(self):
        """Raw text frames received from the client, in order."""
        return [f.data for f in self.received if f.kind == 'text']

    def actions(self):
        return [(f.json or {}).get('header', {}).get('action') for f in self.received
                if f.kind == 'text']

    def events(self):
        return [(f.json or {}).get('header', {}).get('event') for f in self.sent if f.kind == 'text']

    def binary_lengths(self):
        return [f.data for f in self.received if f.kind == 'binary']

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def __repr__(self):
        return 'ConnectionRecord(%s, %d frames, close=%s)' % (self.path, len(self.frames),
                                                              self.close_code)


class TaskFailed(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, code, message)
        self.code = code
        self.message = message


class EmulatorConnection(object):
    """One client connection: reader (this object's handlers) plus a writer task with its queue."""

    def __init__(self, emu, ws, record, faults):
        self.emu = emu
        self.knobs = emu.knobs
        self.ws = ws
        self.record = record
        self.faults = faults
        self.loop = asyncio.get_running_loop()
        self.out = asyncio.Queue()
        self.state = IDLE
        self.task_id = None
        self.task_ids = set()
        self.pipeline = None
        self.audio_bytes = 0
        self.results_sent = 0
        self.pending = []  # messages held while STARTING (allow_audio_before_task_started)
        self.idle_handle = None
        self.last_client = time.monotonic()
        self.silent = any(f['kind'] == 'silent' for f in faults)
        self.ident = None  # bytes held until the audio file is identified (script_file)
        self.result_delay_s = self.knobs['result_delay_ms'] / 1000.0
        self.closing = False
        self.context = []
        self.first_audio_at = None

    # -- writer ------------------------------------------------------------------------------------
    async def write_loop(self):
        try:
            while True:
                item = await self.out.get()
                if item is None:
                    return
                kind, data, not_before = item
                if not_before:
                    wait = not_before - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if kind == 'text':
                    await self.ws.send(data)
                    self._record_out('text', data)
                elif kind == 'binary':
                    await self.ws.send(data)
                    self._record_out('binary', len(data))
                elif kind == 'close':
                    await self.ws.close(data[0], data[1])
                    return
                elif kind == 'drop':
                    self.ws.transport.abort()
                    return
        except ConnectionClosed:
            pass
        except Exception:
            log.exception('emulator writer failed')

    def _record_out(self, kind, data):
        parsed = None
        if kind == 'text':
            try:
                parsed = json.loads(data)
            except ValueError:
                pass
        self.record.frames.append(Frame('out', kind, data, parsed, time.time()))

    def send(self, obj, delay_s=0.0):
        if self.closing:
            return
        text = obj if isinstance(obj, str) else self._fit(obj)
        self.out.put_nowait(('text', text, self.loop.time() + delay_s if delay_s else 0))

    def close(self, code=1000, reason=''):
        if self.closing:
            return
        self.closing = True
        self._cancel_idle()
        self.out.put_nowait(('close', (code, reason), 0))

    def drop(self):
        if self.closing:
            return
        self.closing = True
        self._cancel_idle()
        self.out.put_nowait(('drop', None, 0))

    def _fit(self, obj):
        """Serialise within the 4096-byte cap (C# sample's buffer) by merging adjacent words."""
        text = dumps(obj)
        cap = self.knobs['max_message_bytes']
        sentence = ((obj.get('payload') or {}).get('output') or {}).get('sentence')
        while len(text.encode('utf-8')) > cap and sentence and len(sentence.get('words') or ()) > 1:
            ws = sentence['words']
            merged = []
            for i in range(0, len(ws), 2):
                pair = ws[i:i + 2]
                merged.append({'begin_time': pair[0]['begin_time'], 'end_time': pair[-1]['end_time'],
                               'text': ''.join(w['text'] + w['punctuation'] for w in pair[:-1])
                               + pair[-1]['text'], 'punctuation': pair[-1]['punctuation']})
            sentence['words'] = merged
            text = dumps(obj)
        return text

    # -- events ------------------------------------------------------------------------------------
    def event(self, name, payload, **extra_header):
        header = {'task_id': self.task_id or '', 'event': name}
        header.update(extra_header)
        header['attributes'] = {}
        return {'header': header, 'payload': payload}

    def fail(self, code, message, task_id=None):
        """task-failed, then close (1000): the server's answer to every task error."""
        header = {'task_id': task_id if task_id is not None else (self.task_id or ''),
                  'event': 'task-failed', 'error_code': code, 'error_message': message,
                  'attributes': {}}
        self.send({'header': header, 'payload': {}})
        self.state = CLOSED
        self.close(1000)

    def _fault(self, at):
        for fault in self.faults:
            if fault['at'] == at and not fault.get('fired'):
                return fault
        return None

    def _fire(self, fault):
        """Carry out an injected fault; True if the normal flow must stop."""
        fault['fired'] = True
        kind, args = fault['kind'], fault['args']
        if kind == 'close':
            code = int(args[0]) if args and args[0] else 1000
            self.close(code, args[1] if len(args) > 1 else '')
            return True
        if kind == 'drop':
            self.drop()
            return True
        if kind == 'malformed':
            self.send('{"header":')
            return False
        if kind == 'no_header':
            self.send('{"payload":{}}')
            return False
        if kind == 'unknown_event':
            name = args[0] if args else 'error'
            payload = {'message': 'emulated error event'} if name == 'error' else {}
            self.send(self.event(name, payload))
            return False
        if kind == 'binary':
            self.out.put_nowait(('binary', b'\x00\x01\x02\x03', 0))
            return False
        if kind == 'task_failed':
            self.fail(args[0] if args else 'InternalError',
                      args[1] if len(args) > 1 else 'emulated failure')
            return True
        if kind == 'task_failed_bare':
            self.send({'header': {'task_id': self.task_id or '', 'event': 'task-failed',
                                  'attributes': {}}, 'payload': {}})
            self.state = CLOSED
            self.close(1000)
            return True
        if kind == 'result_without_output':
            self.send(self.event('result-generated', {}))
            return False
        if kind == 'result_without_sentence':
            self.send(self.event('result-generated', {'output': {'foo': 1}, 'usage': None}))
            return False
        if kind == 'finished_flag':
            self.send(self.event('result-generated', {'output': {'finished': True}, 'usage': None}))
            return False
        if kind == 'delay':
            self.result_delay_s = float(args[0] if args else 1000) / 1000.0
            return False
        return False

    # -- timers ------------------------------------------------------------------------------------
    def _cancel_idle(self):
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None

    def arm_idle(self):
        """One re-arming timer: connection idle while IDLE, task idle while RUNNING."""
        self._cancel_idle()
        if self.closing:
            return
        limit = (self.knobs['task_idle_timeout_s'] if self.state in (RUNNING, STARTING)
                 else self.knobs['connection_idle_timeout_s'])
        if limit is None:
            return
        due = self.last_client + limit - time.monotonic()
        self.idle_handle = self.loop.call_later(max(0.0, due), self._idle_expired)

    def _idle_expired(self):
        self.idle_handle = None
        if self.closing:
            return
        if self.state in (RUNNING, STARTING):
            limit = self.knobs['task_idle_timeout_s']
            if time.monotonic() - self.last_client >= limit:
                # The service's CLIENT_ERROR text; `23` at the default limit.
                n = int(limit) if float(limit).is_integer() else limit
                self.fail('CLIENT_ERROR', 'request timeout after %s seconds.' % n)
                return
        elif self.state == IDLE:
            if time.monotonic() - self.last_client >= self.knobs['connection_idle_timeout_s']:
                self.close(1000)
                return
        else:
            return
        self.arm_idle()

    # -- client messages ---------------------------------------------------------------------------
    def on_message(self, message):
        self.last_client = time.monotonic()
        if self.closing or self.silent:
            return
        if self.state == STARTING:
            if self.knobs['allow_audio_before_task_started']:
                self.pending.append(message)
                return
            self.fail('CLIENT_ERROR', 'Invalid message order: message before task-started')
            return
        if isinstance(message, bytes):
            self.on_audio(message)
        else:
            self.on_text(message)

    def on_text(self, text):
        try:
            message = json.loads(text)
            header = message['header']
            action = header['action']
            if not isinstance(action, str):
                raise TypeError(action)
        except (ValueError, KeyError, TypeError):
            self.fail('InvalidParameter', 'Invalid payload data')
            return
        msg_task = header.get('task_id') if isinstance(header.get('task_id'), str) else ''
        payload = message.get('payload') if isinstance(message.get('payload'), dict) else {}
        if action == 'run-task':
            if self.state != IDLE:
                self.fail('CLIENT_ERROR', 'Invalid message order: run-task while a task is %s'
                          % self.state.lower())
                return
            self.run_task(header, payload)
        elif action == 'continue-task':
            if self.state != RUNNING:
                self.fail('CLIENT_ERROR', 'Invalid message order: continue-task without a running '
                          'task', task_id=msg_task if self.state == IDLE else None)
                return
            self.context.append(payload.get('input'))
            self.arm_idle()
        elif action == 'finish-task':
            if self.state != RUNNING:
                self.fail('CLIENT_ERROR', 'Invalid message order: finish-task without a running '
                          'task', task_id=msg_task if self.state == IDLE else None)
                return
            if msg_task != self.task_id:
                if self.knobs['strict_finish_task_id']:
                    self.fail('CLIENT_ERROR', 'finish-task for unknown task %s' % msg_task)
                    return
                log.debug('finish-task id %s differs from the running task', msg_task)
            self.finish_task()
        else:
            self.fail('InvalidParameter', 'Unsupported action: %s' % action)

    def _validate(self, header, payload):
        task_id = header.get('task_id')
        if not isinstance(task_id, str) or not task_id:
            raise TaskFailed('InvalidParameter', "Missing required parameter 'header.task_id'! "
                             'Please follow the protocol!')
        if self.knobs['strict'] and header.get('streaming') != 'duplex':
            raise TaskFailed('InvalidParameter', "header.streaming must be 'duplex'")
        model = payload.get('model')
        if not isinstance(model, str) or not model:
            raise TaskFailed('InvalidParameter', "Missing required parameter 'payload.model'! "
                             'Please follow the protocol!')
        for key, want in (('task_group', 'audio'), ('task', 'asr'), ('function', 'recognition')):
            if payload.get(key) != want:
                raise TaskFailed('InvalidParameter', "Invalid parameter 'payload.%s': expected '%s'"
                                 % (key, want))
        if self.knobs['strict_models'] and not (
                model in STRICT_MODELS or model.startswith(STRICT_MODEL_PREFIXES)):
            raise TaskFailed('InvalidParameter', 'Model not exist.')
        params = payload.get('parameters')
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise TaskFailed('InvalidParameter', "Invalid parameter 'payload.parameters'")
        fmt = params.get('format')
        if fmt not in (None, '') and fmt not in VALID_FORMATS:
            raise TaskFailed('InvalidParameter', 'Unsupported audio format: %s' % fmt)
        rate = params.get('sample_rate')
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 0):
            raise TaskFailed('InvalidParameter', 'Invalid sample_rate: %s' % (rate,))
        if self.knobs['strict_models'] and rate:
            need = 8000 if '8k' in model else (16000 if model == 'paraformer-realtime-v1' else None)
            if need and rate != need:
                raise TaskFailed('InvalidParameter', 'sample_rate %s is not supported by %s'
                                 % (rate, model))
        silence = params.get('max_sentence_silence')
        if silence is not None and (not isinstance(silence, int) or not 200 <= silence <= 6000):
            raise TaskFailed('InvalidParameter', 'max_sentence_silence must be in [200, 6000]')
        hints = params.get('language_hints')
        if hints is not None and (not isinstance(hints, list)
                                  or not all(isinstance(h, str) for h in hints)):
            raise TaskFailed('InvalidParameter', 'language_hints must be a list of strings')
        if self.knobs['strict_vocabulary']:
            vocab = params.get('vocabulary_id')
            if vocab and vocab not in self.emu.vocabularies:
                raise TaskFailed('InvalidParameter', 'vocabulary not found: %s' % vocab)
        if self.knobs['strict_reused_task_id'] and task_id in self.task_ids:
            raise TaskFailed('CLIENT_ERROR', 'task_id %s was already used on this connection'
                             % task_id)
        return task_id, model, params

    def run_task(self, header, payload):
        try:
            task_id, model, params = self._validate(header, payload)
        except TaskFailed as exc:
            task_id = header.get('task_id') if isinstance(header.get('task_id'), str) else ''
            self.fail(exc.code, exc.message, task_id=task_id)
            return
        self.task_id = task_id
        self.task_ids.add(task_id)
        for fault in self.emu._task_faults(task_id):
            self.faults.append(fault)
        self.record.tasks.append({'task_id': task_id, 'model': model, 'parameters': params})
        self.audio_bytes = 0
        self.results_sent = 0
        self.context = []
        self.model = model
        self.params = params
        self.fmt = params.get('format') or None
        self.rate = params.get('sample_rate') or None
        script = self.emu._script_for(params)
        self.ident = bytearray() if script is False else None
        self.pipeline = None
        if script is not False:
            self._make_pipeline(script)
        fault = self._fault('run-task')
        if fault and fault['kind'] == 'no_task_started':
            fault['fired'] = True
            self.state = STARTING
            self.arm_idle()
            return
        delay_ms = self.knobs['task_started_delay_ms']
        if fault and fault['kind'] == 'delay':
            fault['fired'] = True
            delay_ms = float(fault['args'][0]) if fault['args'] else 1000
        self.state = STARTING
        if delay_ms:
            self.loop.call_later(delay_ms / 1000.0, self._started)
        else:
            self._started()

    def _started(self):
        if self.closing or self.state != STARTING:
            return
        self.send(self.event('task-started', {}))
        self.state = RUNNING
        self.last_client = time.monotonic()
        self.arm_idle()
        while True:
            fault = self._fault('run-task')
            if fault is None:
                break
            if self._fire(fault):
                return
        pending, self.pending = self.pending, []
        for message in pending:
            self.on_message(message)

    def _make_pipeline(self, script):
        fmt = self.fmt
        if fmt is None:
            fmt = 'pcm'  # replaced by sniffing on the first audio bytes
        settings = speech.Settings(self.knobs, self.model, self.params)
        self.pipeline = speech.Pipeline(script, fmt, self.rate, settings)
        self.pipeline_needs_sniff = self.fmt is None

    def on_audio(self, data):
        if self.state == FINISHING:
            log.debug('audio after finish-task ignored (%d bytes)', len(data))
            return
        if self.state != RUNNING:
            self.fail('CLIENT_ERROR', 'Invalid message order: audio before run-task')
            return
        self.arm_idle()
        if self.record.audio is not None:
            self.record.audio.extend(data)
        if self.audio_bytes == 0:
            self.first_audio_at = self.loop.time()
        self.audio_bytes += len(data)
        if self.ident is not None:
            self.ident.extend(data)
            script = self.emu._script_for_audio(bytes(self.ident), final=False)
            if script is False:
                return  # not identified yet: nothing is emitted before it is
            data = bytes(self.ident)
            self.ident = None
            self._make_pipeline(script)
        self._feed(data)
        if self.pipeline.silence_failed and not self.closing:
            self.fail('NO_VALID_AUDIO_ERROR', 'No valid audio data received.')
            return
        limit = self.knobs['max_audio_ms']
        if limit is not None and self.pipeline.audio_ms > limit and not self.closing:
            self.fail(self.knobs['max_audio_error_code'], self.knobs['max_audio_error_message'])
            return
        for fault in self.faults:
            at = fault['at']
            if (not fault.get('fired') and at.startswith('after_audio_ms:')
                    and self.pipeline.audio_ms >= float(at.split(':', 1)[1])):
                if self._fire(fault):
                    return

    def _feed(self, data):
        if self.pipeline_needs_sniff and data:
            # Node sample: no format; RIFF/WAVE means wav (reference OQ-8).
            self.pipeline.set_format(speech.sniff_format(data))
            self.pipeline_needs_sniff = False
        self._emit(self.pipeline.feed(data))

    def _delay(self, base_s):
        """Seconds to hold the next message: result_delay_ms, and with realtime_factor no earlier
        than audio_time / realtime_factor after the first audio byte."""
        factor = self.knobs['realtime_factor']
        if not factor or self.first_audio_at is None or self.pipeline is None:
            return base_s
        release = self.first_audio_at + self.pipeline.audio_ms / 1000.0 / factor
        return max(base_s, release - self.loop.time())

    def _emit(self, payloads):
        for payload in payloads:
            if self.closing:
                return
            self.send(self.event('result-generated', payload), self._delay(self.result_delay_s))
            self.results_sent += 1
            for fault in self.faults:
                at = fault['at']
                if (not fault.get('fired') and at.startswith('after_results:')
                        and self.results_sent >= int(at.split(':', 1)[1])):
                    if self._fire(fault):
                        return

    def finish_task(self):
        self.state = FINISHING
        self._cancel_idle()
        fault = self._fault('finish-task')
        if fault is not None:
            kind = fault['kind']
            if kind == 'no_task_finished':
                fault['fired'] = True
                return
            if kind not in ('empty_task_finished', 'delay') and self._fire(fault):
                return
        if self.audio_bytes == 0:
            self.fail('NO_VALID_AUDIO_ERROR', 'No valid audio data received.')
            return
        if self.ident is not None:
            data = bytes(self.ident)
            self.ident = None
            self._make_pipeline(self.emu._script_for_audio(data, final=True))
            self._feed(data)
            if self.closing:
                return
        self._emit(self.pipeline.finish())
        if self.closing:
            return
        delay = self.result_delay_s
        payload = {'output': {}, 'usage': None}
        if fault is not None and fault['kind'] == 'empty_task_finished':
            fault['fired'] = True
            payload = {}
        elif fault is not None and fault['kind'] == 'delay':
            fault['fired'] = True
            delay = float(fault['args'][0] if fault['args'] else 1000) / 1000.0
        self.send(self.event('task-finished', payload), self._delay(delay))
        self.state = IDLE
        self.last_client = time.monotonic()
        self.arm_idle()


class WebSocketServer(object):
    """Glue between ``websockets.asyncio.server`` and EmulatorConnection."""

    def __init__(self, emu):
        self.emu = emu

    def process_request(self, connection, request):
        emu = self.emu
        faults = emu._connection_faults()
        connection.emulator_faults = faults
        path = request.path.split('?', 1)[0]
        headers = [(k, mask_authorization(v) if k.lower() == 'authorization' else v)
                   for k, v in request.headers.raw_items()]
        record = ConnectionRecord(path, headers, keep_audio=emu.knobs['record_audio'])
        connection.emulator_record = record
        emu.records.append(record)
        for fault in faults:
            if fault['kind'] == 'refuse':
                connection.transport.abort()
                return Response(500, 'Internal Server Error', Headers(), b'')
            if fault['kind'] == 'reject':
                status = int(fault['args'][0]) if fault['args'] else 500
                body = fault['args'][1] if len(fault['args']) > 1 else dumps(
                    {'code': 'Emulated', 'message': 'emulated handshake rejection',
                     'request_id': str(uuid.uuid4())})
                return json_response(status, body)
        if path not in PATHS:
            return json_response(404, dumps({'code': 'NotFound', 'message': 'Not Found',
                                             'request_id': str(uuid.uuid4())}))
        if not emu._key_ok(request.headers.get('Authorization')):
            return json_response(emu.knobs['auth_failure_status'], dumps(
                {'code': 'InvalidApiKey', 'message': 'Invalid API-key provided.',
                 'request_id': str(uuid.uuid4())}))
        workspaces = emu.knobs['workspaces']
        if workspaces is not None:
            ws = request.headers.get('X-DashScope-WorkSpace')
            if ws is not None and ws not in workspaces:
                return json_response(403, dumps({'code': 'AccessDenied',
                                                 'message': 'Access denied to workspace.',
                                                 'request_id': str(uuid.uuid4())}))
        return None

    async def handler(self, ws):
        record = ws.emulator_record
        conn = EmulatorConnection(self.emu, ws, record, ws.emulator_faults)
        writer = asyncio.ensure_future(conn.write_loop())
        conn.arm_idle()
        try:
            async for message in ws:
                if isinstance(message, str):
                    try:
                        parsed = json.loads(message)
                    except ValueError:
                        parsed = None
                    record.frames.append(Frame('in', 'text', message, parsed, time.time()))
                else:
                    record.frames.append(Frame('in', 'binary', len(message), None, time.time()))
                conn.on_message(message)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception('emulator connection failed')
        finally:
            conn._cancel_idle()
            conn.closing = True
            conn.out.put_nowait(None)
            try:
                await asyncio.wait_for(writer, 2.0)
            except (asyncio.TimeoutError, Exception):
                writer.cancel()
            # websockets 13 keeps these on the sans-I/O protocol object only
            source = ws if hasattr(ws, 'close_code') else ws.protocol
            record.close_code = source.close_code
            record.close_reason = source.close_reason
            self.emu._connection_closed(record)


def json_response(status, body):
    from http import HTTPStatus
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = 'Error'
    data = body.encode('utf-8') if isinstance(body, str) else body
    headers = Headers()
    headers['Content-Type'] = 'application/json'
    headers['Content-Length'] = str(len(data))
    headers['Connection'] = 'close'
    return Response(status, reason, headers, data)

