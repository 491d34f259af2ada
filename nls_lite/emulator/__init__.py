"""A local emulator of the Alibaba Cloud NLS gateway (§5 of the reference).

    with NlsEmulator() as emu:
        emu.url         # 'ws://127.0.0.1:<port>/ws/v1'  (token 'test-token', appkey 'test-appkey')
        emu.token_url   # 'http://127.0.0.1:<port2>/'   (CreateToken)

It serves the SpeechRecognizer and SpeechTranscriber protocols on a background asyncio loop (or in the
caller's loop with ``async with``). ``websockets`` (the ``emulator`` extra) is imported on start only.
"""
import collections
import os
import threading
import time
import uuid

__all__ = ['NlsEmulator', 'SessionRecord', 'FAULTS', 'TOKEN_FAULTS']

# Fault names (§5.9), armed with inject().
FAULTS = ('refuse', 'reject_handshake', 'hang_handshake', 'no_started', 'delay', 'close_mid_stream',
          'close_before_started', 'malformed_json', 'missing_header', 'unknown_event', 'binary_to_asr',
          'send_error', 'no_completed', 'ignore_client_close', 'no_pong', 'idle_timeout_s')
TOKEN_FAULTS = ('token_http_status', 'token_body', 'token_delay_s', 'token_missing_token', 'token_missing_id',
                'token_non_json')

# Behaviour knobs (§5.3-5.7) with their defaults; each is a constructor keyword and an attribute that
# can be changed while the emulator runs (it applies to later connections/tasks).
KNOBS = {
    'auth_failure_mode': 'http403',        # or 'taskfailed': upgrade, TaskFailed 40000001, close 1000
    'strict_ids': False,                   # require 32 [0-9A-Za-z] task_id/message_id
    'strict_task_id': False,               # Stop/Control task_id must match the Start's
    'audio_before_start': 'error',         # or 'ignore'
    'allow_reuse': True,                   # a new Start after *Completed on the same connection
    'idle_counts_pings': False,            # do pings reset the idle timer
    'max_sessions': None,                  # concurrent started tasks; beyond -> 40000005
    'trial_expired': False,                # every Start -> 40000010
    'started_payload_session_id': False,   # *Started carries {"session_id": ...}
    'delay_started_ms': 0,
    'delay_completed_ms': 0,
    'max_sentence_silence_range': (200, 2000),
    'too_long': 'taskfailed',              # or 'completed' (recognizer >60 s / >2 MB)
    'max_audio_ms': 60000,
    'max_audio_bytes': 2 * 1024 * 1024,
    'start_silence_outcome': 'completed',  # or 'taskfailed' (recognizer max_start_silence)
    'require_speech_for_text': True,
    'vad_threshold_dbfs': -40.0,
    'min_speech_ms': 60,
    'max_sentence_ms': 60000,
    'ms_per_char': 150,
    'partial_interval_ms': 200,
    'segmentation': 'vad',                 # or 'script' (begin_ms/end_ms of dict sentences)
    'allow_inband_script': True,           # payload key x_emulator_script
    'record_audio': False,                 # keep every received audio byte in SessionRecord.audio
    'close_timeout_s': 3.0,                # wait for the client's close reply after a server close
    'meeting_mode': False,                 # later phase: accept the meeting's 'default' token
    'max_records': None,                   # keep at most this many ended SessionRecords (long-running servers)
}

_UNSET = object()


class SessionRecord(object):
    """What one TCP connection did (§5.11). Filled on the emulator's loop; read it after the session ended."""

    def __init__(self, number, peer):
        self.number = number
        self.peer = peer
        self.path = None
        self.query = {}
        self.headers = []               # [(name, value)] as received, duplicates included
        self.sec_websocket_keys = []    # every Sec-WebSocket-Key value seen
        self.token = None
        self.token_source = None        # 'header' | 'query' | None
        self.auth_failure = None
        self.handshake_status = None    # 101, or the rejection status
        self.faults = []                # [(name, params)] applied to this connection
        self.fired = []                 # point faults that fired
        self.frames = []                # [('text', raw) | ('binary', nbytes)] in arrival order
        self.text_frames = []           # [(raw, parsed-or-None)]
        self.binary_frames = 0
        self.binary_bytes = 0
        self.audio = None               # bytearray when record_audio
        self.directives = []            # header.name of every valid command
        self.task_ids = []
        self.appkey = None
        self.start_payloads = []
        self.sent = []                  # every message sent (str, or bytes for binary)
        self.close_code = None
        self.close_reason = None
        self.closed_by = None           # 'client' | 'server'
        self.end_reason = None
        self.ended = threading.Event()

    @property
    def received(self):
        """Parsed client commands (dicts), in order."""
        return [parsed for _raw, parsed in self.text_frames]

    @property
    def sent_messages(self):
        """Parsed JSON of every text message sent (None for a non-JSON one)."""
        import json
        out = []
        for message in self.sent:
            if isinstance(message, str):
                try:
                    out.append(json.loads(message))
                except ValueError:
                    out.append(None)
        return out

    @property
    def sent_names(self):
        """header.name of every well-formed text message sent, in order."""
        names = []
        for msg in self.sent_messages:
            if isinstance(msg, dict) and isinstance(msg.get('header'), dict):
                names.append(msg['header'].get('name'))
        return names

    def __repr__(self):
        return '<SessionRecord #%d %s sent=%s end=%r close=%r>' % (
            self.number, self.path, self.sent_names, self.end_reason, self.close_code)


def _url_host(host):
    return '[%s]' % host if ':' in host else host


def _trim(records, excess):
    """records without their `excess` oldest ended entries."""
    out = []
    for record in records:
        if excess > 0 and record.ended.is_set():
            excess -= 1
            continue
        out.append(record)
    return out


class NlsEmulator(object):
    """The NLS gateway on loopback: WebSocket recognizer/transcriber plus the CreateToken endpoint.

    Credentials: ``tokens`` {token: expiry epoch or None}, ``appkeys`` {appkey: {'sample_rate': None|8000|
    16000, 'script': ...}}, ``access_keys`` {AccessKeyId: secret} for CreateToken (tokens it issues live
    ``token_ttl_s``). ``script`` is the default transcript; ``idle_timeout_s`` the gateway's idle limit.
    Every name in KNOBS is also a keyword and a live attribute.

    Results: queue_script(script) for the next Start, register_audio(path_or_bytes, script), the payload
    key ``x_emulator_script`` (in ``ex``), appkeys[k]['script'], then ``script``.

    Faults: inject(name, times=1, token=None, **params) with a name from FAULTS or TOKEN_FAULTS;
    clear_faults(). Observation: ``sessions`` (SessionRecord per connection), wait_for_sessions(n, timeout),
    ``open_connections``, ``token_requests``.
    """

    def __init__(self, host='127.0.0.1', port=0, tokens=_UNSET, accept_any_token=False, appkeys=_UNSET,
                 accept_any_appkey=False, access_keys=_UNSET, token_ttl_s=86400, idle_timeout_s=10.0,
                 script='北京的天气。', http_port=0, certfile=None, keyfile=None, **knobs):
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise TypeError('unknown NlsEmulator option(s): %s' % ', '.join(sorted(unknown)))
        self.host = host
        self.port = port
        self.http_port = http_port
        # token -> expiry epoch seconds (None = never)
        self.tokens = dict({'test-token': None} if tokens is _UNSET else (tokens or {}))
        self.accept_any_token = accept_any_token
        # appkey -> {'sample_rate': None|8000|16000, 'script': ...}
        self.appkeys = dict({'test-appkey': {'sample_rate': None}} if appkeys is _UNSET else (appkeys or {}))
        self.accept_any_appkey = accept_any_appkey
        self.access_keys = dict({'my_access_key_id': 'my_access_key_secret'} if access_keys is _UNSET
                                else (access_keys or {}))
        self.token_ttl_s = token_ttl_s
        self.idle_timeout_s = idle_timeout_s
        self.script = script
        self.certfile = certfile
        self.keyfile = keyfile
        for name, default in KNOBS.items():
            setattr(self, name, knobs.get(name, default))
        self.sessions = []
        self.token_requests = []
        self._active_tasks = 0          # started tasks (loop thread only)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ended = 0
        self._numbered = 0
        self._conn_faults = []          # [[name, params, remaining or None]]
        self._token_conn_faults = {}    # token -> [(name, params)]
        self._token_faults = []         # CreateToken faults [[name, params, remaining or None]]
        self._script_queue = collections.deque()
        self._registered = []           # [(fingerprint bytes, script)]
        self._loop = None
        self._thread = None
        self._gateway = None
        self._http = None
        self._owns_loop = False
        self.url = None
        self.token_url = None

    # -- lifecycle --

    def start(self):
        """Start serving on a background daemon thread; returns self."""
        if self._gateway is not None:
            raise RuntimeError('emulator already started')
        import asyncio
        self._start_http()
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name='nls-emulator-loop', daemon=True)
        self._thread.start()
        self._loop = loop
        self._owns_loop = True
        ready.wait(10)
        try:
            asyncio.run_coroutine_threadsafe(self._astart(), loop).result(10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Close every connection, stop both servers and join their threads. Idempotent."""
        import asyncio
        loop, thread = self._loop, self._thread
        if loop is not None and not self._owns_loop and self._gateway is not None:
            raise RuntimeError('this emulator runs in your event loop (async with): leave the block to stop it')
        if loop is not None and self._owns_loop:
            if self._gateway is not None and thread is not None and thread.is_alive():
                future = asyncio.run_coroutine_threadsafe(self._astop(drain=True), loop)
                try:
                    future.result(15)
                except Exception:  # noqa: BLE001 - stopping must go on
                    future.cancel()
            if thread is not None and thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
            if not loop.is_running():
                loop.close()
            self._loop = self._thread = None
        self._gateway = None
        self._stop_http()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def __aenter__(self):
        if self._gateway is not None:
            raise RuntimeError('emulator already started')
        import asyncio
        self._loop = asyncio.get_running_loop()
        self._owns_loop = False
        self._start_http()
        try:
            await self._astart()
        except BaseException:
            self._stop_http()
            raise
        return self

    async def __aexit__(self, *exc):
        try:
            await self._astop()
        finally:
            self._gateway = None
            self._loop = None
            self._stop_http()

    async def _astart(self):
        try:
            from .server import GatewayServer
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError('the NLS emulator needs websockets>=13: pip install "speech-sdk-lite[emulator]" '
                              '(%s)' % exc)
        ssl_context = None
        if self.certfile:
            import ssl
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.certfile, self.keyfile)
        gateway = GatewayServer(self)
        await gateway.start(self.host, self.port, ssl_context)
        self._gateway = gateway
        scheme = 'wss' if ssl_context is not None else 'ws'
        self.url = '%s://%s:%d/ws/v1' % (scheme, _url_host(self.host), gateway.port)

    async def _astop(self, drain=False):
        import asyncio
        gateway = self._gateway
        if gateway is not None:
            await gateway.stop()
        if drain:
            # Our own loop: let the last connection handlers finish (or cancel them) before it stops,
            # so no coroutine is left half-run.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if rest:
                _done, pending = await asyncio.wait(rest, timeout=1.0)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1.0)

    def _start_http(self):
        from .http import TokenServer
        self._http = TokenServer(self, self.host, self.http_port)
        self._http.start()
        self.token_url = self._http.url

    def _stop_http(self):
        if self._http is not None:
            self._http.stop()
            self._http = None

    # -- observability (§5.11) --

    @property
    def open_connections(self):
        """TCP connections currently open on the WebSocket port."""
        gateway = self._gateway
        return len(gateway.connections) if gateway is not None else 0

    def wait_for_sessions(self, n=1, timeout=10.0):
        """Wait until n connections have ended (record complete); returns the first n records in order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ended < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError('%d session(s) ended within %.1f s, %d expected (open: %d)'
                                       % (self._ended, timeout, n, self.open_connections))
                self._cond.wait(remaining)
            done = [r for r in self.sessions if r.ended.is_set()]
        return done[:n]

    def _new_record(self, peer):
        with self._lock:
            self._numbered += 1
            record = SessionRecord(self._numbered, peer)
            if self.record_audio:
                record.audio = bytearray()
            self.sessions.append(record)
        return record

    def _end_record(self, record):
        with self._cond:
            if not record.ended.is_set():
                record.ended.set()
                self._ended += 1
                limit = self.max_records
                if limit is not None and len(self.sessions) > limit:
                    # Forget the oldest ended records so a server left running does not grow for ever.
                    self.sessions[:] = _trim(self.sessions, len(self.sessions) - limit)
                self._cond.notify_all()

    def _record_token_request(self, entry):
        with self._lock:
            self.token_requests.append(entry)

    # -- credentials --

    def _check_token(self, token):
        """None when accepted, else the status text of the rejection (§5.3)."""
        if not token:
            return 'Gateway:ACCESS_DENIED:Missing authorization header!'
        if token == 'default' and self.meeting_mode:
            return None
        if token in self.tokens:
            expiry = self.tokens[token]
            if expiry is not None and expiry <= time.time():
                return "Gateway:ACCESS_DENIED:The token '%s' has expired!" % token
            return None
        if self.accept_any_token:
            return None
        return "Meta:ACCESS_DENIED:The token '%s' is invalid!" % token

    def _appkey_conf(self, appkey):
        if not isinstance(appkey, str) or not appkey:
            return None
        conf = self.appkeys.get(appkey)
        if conf is None and self.accept_any_appkey:
            return {}
        return conf if conf is None else dict(conf)

    def _issue_token(self):
        token = uuid.uuid4().hex
        expire = int(time.time() + self.token_ttl_s)
        self.tokens[token] = expire
        return token, expire

    def add_token(self, token, expires_at=None):
        """Accept token until the epoch expires_at (None = never)."""
        self.tokens[token] = expires_at

    # -- scripts (§5.7.1) --

    def queue_script(self, script):
        """The script of the next Start (any connection); FIFO."""
        with self._lock:
            self._script_queue.append(script)

    def register_audio(self, audio, script):
        """Answer `script` for a task whose audio starts like `audio` (a path, or WAV/PCM bytes)."""
        from .speech import pcm_payload, parse_script
        parse_script(script)  # fail now, not in the middle of a session
        if isinstance(audio, (str, os.PathLike)):
            with open(audio, 'rb') as f:
                audio = f.read()
        data = pcm_payload(bytes(audio))
        with self._lock:
            self._registered.append((data[:6400], script))

    def _resolve_script(self, inband, appconf):
        """(script, decided): decided is False while a register_audio fingerprint may still match."""
        if inband is not None:
            return inband, True
        with self._lock:
            if self._script_queue:
                return self._script_queue.popleft(), True
            registered = bool(self._registered)
        if registered:
            return None, False
        return self._fallback_script(appconf), True

    def _fallback_script(self, appconf):
        if appconf and appconf.get('script') is not None:
            return appconf['script']
        return self.script

    def _match_audio(self, prefix, appconf=None):
        with self._lock:
            registered = list(self._registered)
        for fingerprint, script in registered:
            if fingerprint and prefix[:len(fingerprint)] == fingerprint:
                return script
        return self._fallback_script(appconf)

    # -- faults (§5.9) --

    def inject(self, fault, times=1, token=None, **params):
        """Arm a fault.

        times=N: the next N connections (or CreateToken requests for token_* faults); times=None: every
        one until clear_faults(). token='t': every connection presenting that token (handshake faults
        included). Parameters as in the reference table, e.g. inject('delay', event='started', ms=300).
        """
        if fault not in FAULTS and fault not in TOKEN_FAULTS:
            raise ValueError('unknown fault %r; known: %s' % (fault, ', '.join(FAULTS + TOKEN_FAULTS)))
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError('times must be a positive int or None, not %r' % (times,))
        with self._lock:
            if fault in TOKEN_FAULTS:
                self._token_faults.append([fault, params, times])
            elif token is not None:
                if fault == 'refuse':
                    raise ValueError("'refuse' happens before the token is read; use times=")
                self._token_conn_faults.setdefault(token, []).append((fault, params))
            else:
                self._conn_faults.append([fault, params, times])

    def clear_faults(self):
        with self._lock:
            self._conn_faults = []
            self._token_conn_faults = {}
            self._token_faults = []

    def _take_connection_faults(self):
        with self._lock:
            taken, keep = [], []
            for item in self._conn_faults:
                name, params, remaining = item
                taken.append((name, params))
                if remaining is None:
                    keep.append(item)
                elif remaining > 1:
                    keep.append([name, params, remaining - 1])
            self._conn_faults = keep
        return taken

    def _token_faults_for(self, token):
        with self._lock:
            return list(self._token_conn_faults.get(token, ()))

    def _take_token_fault(self):
        with self._lock:
            if not self._token_faults:
                return None
            name, params, remaining = self._token_faults[0]
            if remaining is not None:
                if remaining > 1:
                    self._token_faults[0] = [name, params, remaining - 1]
                else:
                    self._token_faults.pop(0)
            return name, params
