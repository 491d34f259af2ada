"""A local emulator of the DashScope speech service: the Paraformer real-time WebSocket endpoint,
the file-transcription task API and the hot-word customization API, on loopback.

    with Emulator() as emu:
        emu.apply_to(dashscope_asr)      # or dashscope itself
        ...

``websockets`` (the ``emulator`` extra) is imported when an emulator starts, not before.
"""
import asyncio
import hashlib
import threading
import time
import uuid

__all__ = ['Emulator', 'DEFAULT_KNOBS', 'DEFAULT_API_KEY']

DEFAULT_API_KEY = 'sk-emulator'

DEFAULT_KNOBS = dict(
    # timers and limits (reference §5.8)
    task_idle_timeout_s=23, connection_idle_timeout_s=60, max_audio_ms=None,
    max_audio_error_code='CLIENT_ERROR', max_audio_error_message='audio duration exceeds the limit',
    max_frame_bytes=1 << 20, max_message_bytes=4096, task_started_delay_ms=0, result_delay_ms=0,
    realtime_factor=None,  # e.g. 1.0: results no earlier than their audio time after the first byte
    # strictness (reference §5.5-5.6), all off by default
    strict=False, strict_models=False, strict_vocabulary=False, strict_finish_task_id=False,
    strict_reused_task_id=False, allow_audio_before_task_started=False,
    # handshake
    auth_failure_status=401, workspaces=None, record_audio=False,
    # results (reference §5.7)
    vad_threshold_dbfs=-40.0, vad_onset_ms=60, max_sentence_ms=60000, partial_results=True,
    partial_interval_ms=200, ms_per_token=200, semantic_pause_ms=500, heartbeat_interval_ms=1000,
    compressed_sentence_ms=3000, bitrates={}, silence_fail_after_ms=None,
    # HTTP task lifecycle (reference §5.11)
    pending_ms=0, running_ms=1500, undeployed_ms=0,
)


class Emulator(object):
    """WebSocket + HTTP emulator running on background daemon threads.

    Knobs (``DEFAULT_KNOBS``) can be passed as keyword arguments and changed later through
    ``emu.knobs[...]``. Every connection is recorded in ``records`` (``ConnectionRecord``), every
    HTTP request in ``http_records``; Authorization values are masked there.
    """

    def __init__(self, host='127.0.0.1', ws_port=0, http_port=0, api_keys=(DEFAULT_API_KEY,),
                 default_sentences=None, files_dir=None, ssl_context=None, **knobs):
        unknown = set(knobs) - set(DEFAULT_KNOBS)
        if unknown:
            raise TypeError('unknown emulator knob(s): %s' % ', '.join(sorted(unknown)))
        self.host = host
        self.ws_port = ws_port
        self.http_port = http_port
        self.api_keys = set(api_keys)
        self.knobs = dict(DEFAULT_KNOBS, **knobs)
        self.default_sentences = list(default_sentences or [])
        self.files_dir = files_dir
        self.ssl_context = ssl_context  # wss:// and https:// when given (plain by default)
        self.records = []
        self.http_records = []
        self.vocabularies = {}
        self.tasks = {}
        self.result_files = {}
        self._lock = threading.RLock()
        self._closed_cond = threading.Condition(self._lock)
        self._closed_count = 0
        self._next_scripts = []
        self._file_scripts = []       # (prefix size, sha256, sentences)
        self._url_scripts = {}
        self._faults = []             # [fault, remaining connections]
        self._task_fault_map = {}
        self._http_faults = []
        self._fail_urls = set()
        self._tokens = {}
        self._loop = None
        self._thread = None
        self._server = None
        self._http = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self):
        """Start both listeners; returns once they accept connections."""
        if self._started:
            return self
        from .http import HttpApi
        from .server import WebSocketServer
        self._ws = WebSocketServer(self)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name='dashscope_asr-emulator-ws', daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self._stop_loop()
            raise RuntimeError('emulator failed to start: %r' % (failure[:1],))
        try:
            self._http = HttpApi(self, self.host, self.http_port, self.ssl_context)
        except BaseException:
            self._stop_loop()
            raise
        self._http.start()
        self._started = True
        return self

    async def _serve(self):
        from websockets.asyncio.server import serve
        self._server = await serve(
            self._ws.handler, self.host, self.ws_port, process_request=self._ws.process_request,
            compression=None, ping_interval=None, max_size=self.knobs['max_frame_bytes'],
            ssl=self.ssl_context)
        self.ws_port = self._server.sockets[0].getsockname()[1]

    def stop(self):
        """Close every connection and both listeners; joins the threads."""
        if not self._started:
            return
        self._started = False
        self._http.stop()
        self._stop_loop()

    def _stop_loop(self):
        loop = self._loop
        if loop is None:
            return

        async def shutdown():
            if self._server is not None:
                self._server.close()
                try:
                    await asyncio.wait_for(self._server.wait_closed(), 5)
                except asyncio.TimeoutError:
                    pass
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
        if not loop.is_running():
            loop.close()
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def ws_url(self):
        return '%s://%s:%d/api-ws/v1/inference' % ('wss' if self.ssl_context else 'ws', self.host,
                                                   self.ws_port)

    @property
    def url(self):
        """The WebSocket URL (the name every emulator of this project answers to)."""
        return self.ws_url

    @property
    def http_root(self):
        return '%s://%s:%d' % ('https' if self.ssl_context else 'http', self.host, self._http.port)

    @property
    def http_url(self):
        return self.http_root + '/api/v1'

    @property
    def api_key(self):
        """A key the emulator accepts (the first configured one)."""
        for key in sorted(self.api_keys):
            if key != '*':
                return key
        return 'sk-any'

    def env(self):
        """Environment that points a client (ours or the vendor's) at this emulator."""
        return {'DASHSCOPE_WEBSOCKET_BASE_URL': self.ws_url, 'DASHSCOPE_HTTP_BASE_URL': self.http_url,
                'DASHSCOPE_API_KEY': self.api_key, 'NO_PROXY': '127.0.0.1,localhost',
                'no_proxy': '127.0.0.1,localhost'}

    def apply_to(self, module):
        """Point ``dashscope_asr`` (or ``dashscope``) at this emulator."""
        module.base_websocket_api_url = self.ws_url
        module.base_http_api_url = self.http_url
        module.api_key = self.api_key

    # -- scripts -----------------------------------------------------------------------------------
    def script_next(self, sentences):
        """Sentences of the next task (any connection); FIFO."""
        with self._lock:
            self._next_scripts.append(list(sentences))

    def script_file(self, path_or_bytes, sentences):
        """Sentences for any task whose audio starts like this file (SHA-256 of its first 8 KiB)."""
        data = path_or_bytes
        if not isinstance(data, (bytes, bytearray)):
            with open(path_or_bytes, 'rb') as f:
                data = f.read(8192)
        size = min(8192, len(data))
        with self._lock:
            self._file_scripts.append((size, hashlib.sha256(bytes(data[:size])).hexdigest(),
                                       list(sentences)))

    def transcription_script(self, url, sentences):
        with self._lock:
            self._url_scripts[url] = list(sentences)

    def _default_script(self):
        return list(self.default_sentences) if self.default_sentences else None

    def _script_for(self, params):
        """Script of a new task: a list, None (generated text), or False (identify by audio)."""
        with self._lock:
            if self._next_scripts:
                return self._next_scripts.pop(0)
            script = params.get('emulator_script')
            if isinstance(script, str) and script:
                return [script]
            if isinstance(script, list) and script:
                return script
            if self._file_scripts:
                return False
            return self._default_script()

    def _script_for_audio(self, data, final):
        with self._lock:
            waiting = False
            for size, digest, sentences in self._file_scripts:
                if len(data) >= size:
                    if hashlib.sha256(data[:size]).hexdigest() == digest:
                        return sentences
                else:
                    waiting = True
            if waiting and not final:
                return False
            return self._default_script()

    def _transcription_sentences(self, url, generated=False):
        """Script of a transcription URL; None (generated per segment) if ``generated`` allows."""
        with self._lock:
            if url in self._url_scripts:
                return self._url_scripts[url]
        if self.default_sentences:
            return list(self.default_sentences)
        if generated:
            return None
        from .speech import GENERATED_TEXT
        return [GENERATED_TEXT % 1]

    # -- auth --------------------------------------------------------------------------------------
    def issue_token(self, ttl_s=60):
        """A temporary key accepted for ``ttl_s`` seconds."""
        token = 'st-' + uuid.uuid4().hex
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl_s
        return token

    def _key_ok(self, authorization):
        if not authorization:
            return False
        parts = authorization.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == 'bearer':
            key = parts[1].strip()
        else:
            key = authorization.strip()  # the C# sample sends the bare key
        if not key:
            return False
        if key in self.api_keys or '*' in self.api_keys:
            return True
        with self._lock:
            expiry = self._tokens.get(key)
        return expiry is not None and time.monotonic() < expiry

    # -- faults ------------------------------------------------------------------------------------
    def inject(self, fault, count=1, at=None, task_id=None):
        """Inject a fault (reference §5.10) into the next ``count`` connections, or a task.

        ``fault``: ``refuse``, ``reject:<status>[:<body>]``, ``no_task_started``,
        ``no_task_finished``, ``silent``, ``delay:<ms>``, ``close:<code>[:<reason>]``, ``drop``,
        ``malformed``, ``no_header``, ``unknown_event:<name>``, ``binary``,
        ``task_failed:<code>:<message>``, ``task_failed_bare``, ``empty_task_finished``,
        ``result_without_output``, ``finished_flag``, ``result_without_sentence``.
        ``at``: ``accept``, ``handshake``, ``run-task``, ``after_results:N``, ``after_audio_ms:N``,
        ``finish-task``.
        """
        from .server import parse_fault
        parsed = parse_fault(fault, at=at, task_id=task_id)
        with self._lock:
            if task_id is not None:
                self._task_fault_map.setdefault(task_id, []).append(parsed)
            else:
                self._faults.append([parsed, count])

    def _connection_faults(self):
        out = []
        with self._lock:
            for entry in self._faults:
                if entry[1] > 0:
                    entry[1] -= 1
                    out.append(dict(entry[0]))
            self._faults = [e for e in self._faults if e[1] > 0]
        return out

    def _task_faults(self, task_id):
        with self._lock:
            return [dict(f) for f in self._task_fault_map.pop(task_id, [])]

    def inject_http(self, fault, path=None, count=1):
        """HTTP faults: ``status:<code>[:<json>]``, ``non_json:<status>:<text>``, ``delay:<ms>``,
        ``drop``, ``stuck:<status>``, ``fail_url:<url>``, ``503_then_ok:<n>``; ``path`` limits it to
        request paths starting with that prefix."""
        kind, _, rest = fault.partition(':')
        if kind == 'fail_url':
            with self._lock:
                self._fail_urls.add(rest)
            return
        args = rest.split(':', 1) if rest else []
        with self._lock:
            self._http_faults.append({'kind': kind, 'args': args, 'path': path, 'left': count})

    def _take_http_fault(self, kinds, path=None):
        with self._lock:
            for f in self._http_faults:
                if f['kind'] in kinds and f['left'] > 0 and (
                        path is None or f['path'] is None or path.startswith(f['path'])):
                    f['left'] -= 1
                    return f
        return None

    def _http_fault(self, path):
        return self._take_http_fault(('status', 'non_json', 'delay', 'drop'), path)

    def _http_stuck(self):
        f = self._take_http_fault(('stuck',))
        return (f['args'][0] if f and f['args'] else 'RUNNING') if f else None

    def _http_503(self, task_id):
        with self._lock:
            for f in self._http_faults:
                if f['kind'] == '503_then_ok':
                    f.setdefault('remaining', int(f['args'][0]) if f['args'] else 1)
                    if f['remaining'] > 0:
                        f['remaining'] -= 1
                        return True
        return False

    # -- observation -------------------------------------------------------------------------------
    def _connection_closed(self, record):
        with self._lock:
            self._closed_count += 1
            self._closed_cond.notify_all()

    def wait_closed(self, count=1, timeout=10):
        """Wait until ``count`` connections have ended on the server side; True if they did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._closed_count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._closed_cond.wait(left)
            return True
