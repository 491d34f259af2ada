# -*- coding: utf-8 -*-
"""A local emulator of the Huawei Cloud SIS real-time recognition service (RASR websocket + SASR websocket)
and of the IAM token endpoint.

    with SisEmulator() as emu:
        client = RasrClient(ak=emu.ak, sk=emu.sk, use_aksk=True, region=emu.region, project_id=emu.project_id,
                            callback=cb, service_endpoint=emu.ws_endpoint)

Runs its asyncio loop on a daemon thread; ``stop()`` joins it. Every connection is recorded
(``connections``); faults are injected with ``add_fault``.
"""
import asyncio
import base64
import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from sis_rasr.emulator import speech

DEFAULT_AK = 'SISEMULATORAK0000000'
DEFAULT_SK = 'sis-emulator-secret-key'
DEFAULT_PROJECT_ID = '0123456789abcdef0123456789abcdef'
DEFAULT_REGION = 'cn-north-4'
DEFAULT_USER = 'sis_user'
DEFAULT_PASSWORD = 'sis_password'
DEFAULT_DOMAIN = 'sis_domain'

FAULT_ACTIONS = ('refuse', 'reject_handshake', 'never_answer', 'delay', 'close', 'abort', 'freeze',
                 'send_malformed', 'send_error', 'send_raw', 'configure')


class Fault(object):
    """ trigger: 'handshake', 'start', 'end', 'audio_bytes>=N', 'results>=N' or 'after_ms=N'. """

    def __init__(self, trigger, action, path=None, connections=None, **params):
        if action not in FAULT_ACTIONS:
            raise ValueError('unknown fault action %r' % action)
        self.threshold = None
        name = trigger
        for sep in ('>=', '='):
            if sep in trigger:
                name, _, value = trigger.partition(sep)
                self.threshold = int(value)
                break
        if name not in ('handshake', 'start', 'end', 'audio_bytes', 'results', 'after_ms'):
            raise ValueError('unknown fault trigger %r' % trigger)
        self.trigger = name
        self.action = action
        self.path = path
        self.remaining = connections
        self.params = params
        self.fired = False

    def copy(self):
        clone = Fault.__new__(Fault)
        clone.__dict__.update(self.__dict__)
        clone.fired = False
        return clone


class ConnectionRecord(object):
    """ What one connection did: handshake, frames both ways, sessions, close codes. """

    def __init__(self, emu, path, headers):
        self._emu = emu
        self.path = path
        self.headers = headers                  # list of (name, value), in order, duplicates included
        self.auth_mode = None
        self.handshake_status = None            # 101 or the rejection status
        self.mode = None
        self.path_kind = None
        self.received = []                      # ('text', str) or ('binary', size)
        self.sent = []                          # (wall time, audio ms, text)
        self.sessions = []
        self.options = {}
        self.faults_fired = []
        self.client_close_code = None
        self.server_close_code = None
        self.closed = threading.Event()

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def header_values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def texts_received(self):
        return [t for kind, t in self.received if kind == 'text']

    @property
    def binary_sizes(self):
        return [n for kind, n in self.received if kind == 'binary']

    @property
    def sent_messages(self):
        return [json.loads(t) for _, _, t in self.sent]

    def add_received_text(self, text):
        self.received.append(('text', text))
        self._emu._notify()

    def add_received_binary(self, size):
        self.received.append(('binary', size))

    def add_sent(self, text, audio_ms):
        self.sent.append((time.time(), audio_ms, text))
        self._emu._notify()


class SisEmulator(object):
    """ The emulator. Knobs are plain attributes; change them before the connections they should affect. """

    def __init__(self, host='127.0.0.1', port=0, iam_port=0, ak=DEFAULT_AK, sk=DEFAULT_SK,
                 project_id=DEFAULT_PROJECT_ID, region=DEFAULT_REGION, user_name=DEFAULT_USER,
                 password=DEFAULT_PASSWORD, domain_name=DEFAULT_DOMAIN, auth='strict', transcript=None,
                 idle_timeout_s=20.0, ssl_context=None, iam=True):
        if auth not in ('strict', 'lenient', 'off'):
            raise ValueError("auth must be 'strict', 'lenient' or 'off'")
        self.host = host
        self.port = port
        self.iam_port = iam_port
        self.ak = ak
        self.sk = sk
        self.credentials = {ak: sk} if ak is not None else {}
        self.project_id = project_id
        self.region = region
        self.user_name = user_name
        self.password = password
        self.domain_name = domain_name
        self.accounts = [(user_name, password, domain_name)]
        self.auth = auth
        self.ssl_context = ssl_context
        self._with_iam = iam
        # protocol knobs
        self.idle_timeout_s = idle_timeout_s
        self.max_connection_s = 5 * 3600
        self.max_clock_skew_s = 900
        self.aksk_lockout = False        # APIG: 5 consecutive bad signatures lock the AK for 5 minutes
        self._aksk_failures = {}
        self._aksk_locked = {}
        self.token_ttl_s = 24 * 3600
        self.static_tokens = {}
        self.allowed_properties = None
        self.vocabularies = set()
        self.reject_unknown_config_keys = False
        self.max_sessions = None
        self.enforce_chunk_max = True
        self.enforce_chunk_min = False
        self.result_delay_ms = 0
        self.omit_trace_id = False
        self.too_long = {}
        # speech knobs
        self.vad_energy_threshold_dbfs = -40.0
        self.vad_min_speech_ms = 60
        self.interim_interval_ms = 200
        self.ms_per_char = 250
        self.default_score = 0.9
        self.default_sentences = [transcript] if transcript else None
        # state
        self.connections = []
        self.iam_requests = []
        self._tokens = {}
        self._scripts = []
        self._registered = []
        self._faults = []
        self._active_sessions = 0
        self._cond = threading.Condition()
        self._loop = None
        self._thread = None
        self._server = None
        self._iam = None
        self._stopping = None
        self._ready = threading.Event()
        self._startup_error = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self):
        if self._thread is not None:
            return self
        if self._with_iam:
            from sis_rasr.emulator.http import IamServer
            self._iam = IamServer(self, self.host, self.iam_port)
            self.iam_port = self._iam.port
            self._iam.start()
        self._thread = threading.Thread(target=self._run, name='sis-emulator', daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            self.stop()
            raise self._startup_error
        return self

    def stop(self):
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
        self._thread = None
        if self._iam is not None:
            self._iam.stop()
            self._iam = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() when it happens during start-up
            self._startup_error = exc
            self._ready.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self):
        from websockets.asyncio.server import serve
        self._stopping = asyncio.Event()
        from sis_rasr.emulator.server import connection_class
        server = await serve(self._handler, self.host, self.port, process_request=self._process_request,
                             create_connection=connection_class(),
                             ping_interval=None, compression=None, max_size=16 * 1024 * 1024,
                             open_timeout=None, ssl=self.ssl_context, close_timeout=2)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        server.close()
        await server.wait_closed()

    def _stopping_event(self):
        return self._stopping

    def stop_listening(self):
        """ Close the listening socket: new connections are refused, live ones keep running. """
        done = threading.Event()

        def _stop():
            try:
                self._server.server.close()
            finally:
                done.set()
        self._loop.call_soon_threadsafe(_stop)
        done.wait(5)

    # -- addresses ------------------------------------------------------------------------------------
    @property
    def ws_endpoint(self):
        return '%s://%s:%d' % ('wss' if self.ssl_context else 'ws', self.host, self.port)

    url = ws_endpoint

    @property
    def iam_base_url(self):
        return 'http://%s:%d' % (self.host, self.iam_port)

    @property
    def iam_url(self):
        return self.iam_base_url + '/v3/auth/tokens'

    def mode_url(self, path='rasr/continue-stream'):
        return '%s/v1/%s/%s' % (self.ws_endpoint, self.project_id, path)

    # -- scripts --------------------------------------------------------------------------------------
    def push_script(self, sentences, path=None):
        """ Queue a transcript (list of str or {'text','score','start_ms','end_ms'}) for the next START,
        optionally only on one path ('rasr/short-stream', ...). """
        with self._cond:
            self._scripts.append((path, [speech.Sentence(s) for s in sentences]))

    def register_audio(self, audio, sentences):
        """ Transcript for sessions whose audio is (a prefix-match of) this file or bytes. """
        if isinstance(audio, str):
            with open(audio, 'rb') as f:
                audio = f.read()
        probe = speech.Recognizer(speech.MODE_SHORT, {'audio_format': 'pcm16k16bit'}, None)
        stripped = probe._strip_header(audio) if audio[:4] == b'RIFF' else audio
        with self._cond:
            self._registered.append((stripped, [speech.Sentence(s) for s in sentences]))

    def _script_for(self, path_kind):
        with self._cond:
            for i, (path, sentences) in enumerate(self._scripts):
                if path is None or path.strip('/').endswith(path_kind):
                    del self._scripts[i]
                    return sentences, None
            registered = list(self._registered)
        default = [speech.Sentence(s) for s in self.default_sentences] if self.default_sentences else None
        return default, registered

    # -- faults ---------------------------------------------------------------------------------------
    def add_fault(self, trigger, action, path=None, connections=None, **params):
        """ Inject ``action`` at ``trigger`` on the next ``connections`` connections (None: all),
        optionally only on one path. Returns the Fault. """
        fault = Fault(trigger, action, path=path, connections=connections, **params)
        with self._cond:
            self._faults.append(fault)
        return fault

    def clear_faults(self):
        with self._cond:
            del self._faults[:]

    def _claim_faults(self, path):
        claimed = []
        with self._cond:
            for fault in list(self._faults):
                if fault.path is not None and fault.path.strip('/') not in path:
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                claimed.append(fault.copy())
        return claimed

    # -- tokens ---------------------------------------------------------------------------------------
    def issue_token(self, region=None):
        """ A valid X-Auth-Token, as IAM would return (for raw-protocol samples). """
        token = 'MII' + base64.b64encode(os.urandom(48)).decode('ascii')
        now = datetime.now(timezone.utc)
        expires = now + timedelta(seconds=self.token_ttl_s)
        with self._cond:
            self._tokens[token] = {'expires': expires.timestamp(), 'region': region or self.region,
                                   'expires_at': expires.strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
                                   'issued_at': now.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}
        return token

    def _token_info(self, token):
        with self._cond:
            info = self._tokens.get(token)
        if info is None and token in self.static_tokens:
            return {'expires': float('inf'), 'region': self.region, 'expires_at': ''}
        return info

    def _issue_token_for(self, raw):
        try:
            body = json.loads(raw.decode('utf-8'))
            identity = body['auth']['identity']
            user = identity['password']['user']
            name, password, domain = user['name'], user['password'], user['domain']['name']
            methods = identity['methods']
            scope = body['auth']['scope']['project']['name']
        except (ValueError, KeyError, TypeError, AttributeError):
            self._record_iam(None)
            return 400, {'error': {'code': 400, 'message': 'The request body is invalid.', 'title': 'Bad Request'}}, {}
        self._record_iam({'user': name, 'domain': domain, 'region': scope, 'password': '***'})
        if methods != ['password'] or (name, password, domain) not in self.accounts or scope != self.region:
            return 401, {'error': {'code': 401, 'message': 'The username or password is wrong.',
                                   'title': 'Unauthorized'}}, {}
        token = self.issue_token(scope)
        info = self._token_info(token)
        body = {'token': {'expires_at': info['expires_at'], 'issued_at': info['issued_at'], 'methods': ['password'],
                          'project': {'id': self.project_id, 'name': scope, 'domain': {'name': domain}},
                          'user': {'name': name, 'domain': {'name': domain}}}}
        return 201, body, {'X-Subject-Token': token}

    def _aksk_failed(self, ak):
        with self._cond:
            count = self._aksk_failures.get(ak, 0) + 1
            self._aksk_failures[ak] = count
            if count >= 5:
                self._aksk_locked[ak] = time.time() + 300
                self._aksk_failures[ak] = 0

    def _record_iam(self, entry):
        with self._cond:
            self.iam_requests.append(entry)
            self._cond.notify_all()

    # -- recording ------------------------------------------------------------------------------------
    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    def _session_started(self, record, session):
        with self._cond:
            record.sessions.append(session)
            self._active_sessions += 1
            self._cond.notify_all()

    def wait_for(self, predicate, timeout=5.0):
        """ Wait until predicate() is true (re-checked whenever the emulator records something). """
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_connection(self, count=1, timeout=5.0):
        if not self.wait_for(lambda: len(self.connections) >= count, timeout):
            raise AssertionError('no connection %d within %s s' % (count, timeout))
        return self.connections[count - 1]

    def wait_for_message(self, resp_type, timeout=5.0, connection=None):
        """ The first message of ``resp_type`` sent (to ``connection`` or any). """
        def find():
            conns = [connection] if connection is not None else list(self.connections)
            for rec in conns:
                for msg in rec.sent_messages:
                    if msg.get('resp_type') == resp_type:
                        return msg
            return None
        found = []
        if not self.wait_for(lambda: found.append(find()) or found[-1] is not None, timeout):
            raise AssertionError('no %s message within %s s' % (resp_type, timeout))
        return found[-1]

    def wait_closed(self, record, timeout=5.0):
        if not record.closed.wait(timeout):
            raise AssertionError('connection %s not closed within %s s' % (record.path, timeout))

    # -- websocket side -------------------------------------------------------------------------------
    async def _process_request(self, connection, request):
        from sis_rasr.emulator import server
        raw = getattr(connection, 'sis_raw_headers', None) or list(request.headers.raw_items())
        record = ConnectionRecord(self, request.path, raw)
        record.auth_mode = ('token' if 'X-Auth-Token' in request.headers else
                            'aksk' if 'Authorization' in request.headers else None)
        faults = self._claim_faults(request.path)
        connection.sis_record = record
        connection.sis_faults = faults
        with self._cond:
            self.connections.append(record)
            self._cond.notify_all()
        for fault in faults:
            if fault.trigger != 'handshake':
                continue
            fault.fired = True
            record.faults_fired.append(fault.action)
            p = fault.params
            if fault.action == 'configure':
                record.options.update(p)
            elif fault.action == 'delay':
                await asyncio.sleep(p.get('ms', 1000) / 1000.0)
            elif fault.action == 'never_answer':
                await self._stopping.wait()
                connection.transport.abort()
                return self._finish_rejected(record, 503, server.apig_body('APIG.0201', 'never answered'))
            elif fault.action in ('refuse', 'abort'):
                connection.transport.abort()
                return self._finish_rejected(record, 503, server.apig_body('APIG.0201', 'refused'))
            elif fault.action == 'reject_handshake':
                status = p.get('status', 401)
                body = p.get('body')
                if body is None:
                    body = server.apig_body('APIG.0301', server.IAM_PREFIX + 'verify aksk signature fail')
                return self._finish_rejected(record, status, body, p.get('headers'))
        status, msg, code, info = server.check_handshake(self, request.path, request.headers)
        if status is not None:
            return self._finish_rejected(record, status, server.apig_body(code, msg))
        record.project_id, record.path_kind = info
        record.mode = server.MODES[info[1]]
        record.handshake_status = 101
        return None

    def _finish_rejected(self, record, status, body, headers=None):
        from sis_rasr.emulator import server
        record.handshake_status = status
        record.closed.set()
        self._notify()
        return server.json_response(status, body, extra_headers=headers)

    async def _handler(self, ws):
        from sis_rasr.emulator import server
        record = ws.sis_record
        handler = server.ConnectionHandler(self, ws, record, ws.sis_faults)
        try:
            await handler.run()
        finally:
            if handler.session is not None:
                handler.session.record['end_reason'] = 'CLOSED'
                self._session_ended()
            received = getattr(ws.protocol, 'close_rcvd', None)   # websockets 13 has no ws.close_code
            record.client_close_code = received.code if received is not None else None
            record.closed.set()
            self._notify()

    def _session_ended(self):
        with self._cond:
            self._active_sessions = max(0, self._active_sessions - 1)
            self._cond.notify_all()


Emulator = SisEmulator
__all__ = ['SisEmulator', 'Emulator', 'Fault', 'ConnectionRecord']
