"""A loopback emulator of the DDS dialogue gateway, built on ``websockets`` (reference 5).

Importing this module does not import ``websockets``; ``Emulator.start()`` does.
"""

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from urllib.parse import quote

from ..auth import device_signature
from ..urls import redact_url
from .audio import fingerprint
from .dialogue import DEFAULT_SCRIPT, Script, load_script
from .server import make_fault

__all__ = ["Emulator", "Script", "load_script", "DEFAULT_SCRIPT"]

log = logging.getLogger("dds_client.emulator")


class _RedactSecrets(logging.Filter):
    """websockets logs request lines at DEBUG; keep apikey/sig values out of them."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _import_websockets():
    try:
        import websockets.asyncio.server  # noqa: F401 (presence check)
    except ImportError:
        raise ImportError("the dds_client emulator needs the 'websockets' package "
                          "(install the 'emulator' extra)")


class Emulator:
    """The DDS gateway on 127.0.0.1: auth, text/audio/intent/data/settings, scripted dialogue."""

    def __init__(self, *, host="127.0.0.1", port=0, path="/dsg/v1/prod",
                 product_id="100200300", apikey="emulator-apikey",
                 device_name="emulator-device", device_secret="emulator-device-secret",
                 devices=None, transcript="今天天气怎么样", script=None, record_id_suffix=False,
                 idle_timeout=60.0, audio_idle_timeout=10.0, max_audio_seconds=60.0,
                 max_audio_bytes=8 * 1024 * 1024, session_ttl=300.0, native_api_timeout=10.0,
                 sig_max_age=None, vad_threshold=300, vad_min_speech_ms=60, ms_per_token=250,
                 fingerprint_bytes=16384, speak_url=True, record_audio=False,
                 max_connections=1024, faults=(), max_records=None):
        self.host = host
        self.port = port
        self.path = path
        self.product_id = str(product_id)
        self.apikey = apikey
        self.device_name = device_name
        self.device_secret = device_secret
        self.devices = {}
        if device_name is not None and device_secret is not None:
            self.devices[device_name] = device_secret
        self.devices.update(devices or {})
        self.transcript = transcript
        if isinstance(script, (str, os.PathLike)):
            script = load_script(script)
        self.script = Script(script if script is not None else DEFAULT_SCRIPT)
        self.record_id_suffix = record_id_suffix
        self.idle_timeout = idle_timeout
        self.audio_idle_timeout = audio_idle_timeout
        self.max_audio_seconds = max_audio_seconds
        self.max_audio_bytes = max_audio_bytes
        self.session_ttl = session_ttl
        self.native_api_timeout = native_api_timeout
        self.sig_max_age = sig_max_age
        self.vad_threshold = vad_threshold
        self.vad_min_speech_ms = vad_min_speech_ms
        self.ms_per_token = ms_per_token
        self.fingerprint_bytes = fingerprint_bytes
        self.speak_url = speak_url
        self.record_audio = record_audio
        self.max_connections = max_connections
        # max_records bounds the records of a long-running server (the CLI keeps 1000 each).
        self.max_records = max_records
        self.frames = deque(maxlen=max_records) if max_records else []
        self.requests = deque(maxlen=max_records) if max_records else []
        self.connections = deque(maxlen=max_records) if max_records else []
        self._conn_index = {}
        self._faults = []
        self._transcripts = deque()
        self._fingerprints = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sinks = []
        self._thread = None
        self._loop = None
        self._stop_future = None
        self._started = threading.Event()
        self._start_error = None
        self._server = None
        self._forever = None
        for fault in faults:
            name, params = (fault, {}) if isinstance(fault, str) else fault
            self.set_fault(name, **params)

    # ------------------------------------------------------------ addresses

    @property
    def url(self):
        return "ws://%s:%d%s" % (self.host, self.port, self.path)

    def auth_url(self, product_id=None, apikey=None):
        return "%s?productId=%s&apikey=%s" % (
            self.url, quote(str(product_id or self.product_id), safe=""),
            quote(apikey or self.apikey, safe=""))

    def device_url(self, device_name=None, device_secret=None, *, timestamp_unit="ms"):
        name = device_name or self.device_name
        secret = device_secret or self.device_secret
        nonce = uuid.uuid4().hex
        ts = str(int(time.time() * 1000)) if timestamp_unit == "ms" else str(int(time.time()))
        sig = device_signature(name, nonce, self.product_id, ts, secret)
        return "%s?productId=%s&deviceName=%s&nonce=%s&timestamp=%s&sig=%s" % (
            self.url, self.product_id, quote(name, safe=""), nonce, ts, sig)

    def client_kwargs(self):
        return {"url": self.url, "product_id": self.product_id, "apikey": self.apikey}

    @staticmethod
    def unused_port():
        """A free loopback port with nothing listening."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
        finally:
            s.close()

    # ------------------------------------------------------------ scripted audio

    def push_transcripts(self, *texts):
        """Queue transcripts, one per audio request, FIFO across the emulator."""
        with self._lock:
            self._transcripts.extend(str(t) for t in texts)

    def add_audio_transcript(self, audio, text):
        """Register the transcript of an audio stream (bytes or a file path, header included)."""
        if isinstance(audio, (str, os.PathLike)):
            with open(audio, "rb") as f:
                audio = f.read(self.fingerprint_bytes)
        with self._lock:
            self._fingerprints[fingerprint(audio, self.fingerprint_bytes)] = str(text)

    def _next_transcript(self):
        with self._lock:
            return self._transcripts.popleft() if self._transcripts else None

    # ------------------------------------------------------------ faults

    def set_fault(self, name, **params):
        fault = make_fault(name, params)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self):
        with self._lock:
            self._faults = []

    def _take_fault(self, name, topic=None):
        with self._lock:
            for fault in self._faults:
                if fault["name"] != name:
                    continue
                if fault.get("topic") is not None and fault["topic"] != topic:
                    continue
                if fault["times"] is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self._faults.remove(fault)
                return dict(fault)
        return None

    # ------------------------------------------------------------ recording (5.10)

    def _emit(self, event):
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("record sink failed")

    def _record(self, conn, direction, kind, data):
        if kind == "binary":
            value = bytes(data) if self.record_audio else len(data)
        else:
            value = data
        with self._cond:
            self.frames.append((conn, direction, kind, value, time.monotonic()))
            self._cond.notify_all()
        if self._sinks:
            event = {"ev": "recv" if direction == "in" else "send", "conn": conn, "type": kind}
            if kind == "binary":
                event["len"] = len(data)
            else:
                event["data"] = data
            self._emit(event)

    def _record_request(self, conn, request):
        with self._cond:
            self.requests.append(dict(request, conn=conn) if "conn" not in request
                                 else dict(request))
            self._cond.notify_all()

    def _record_handshake(self, conn, path, query, status):
        with self._cond:
            entry = {"id": conn, "path": path, "query": query, "status": status,
                     "opened": time.monotonic(), "closed": None, "close_code": None}
            self.connections.append(entry)
            self._conn_index[conn] = entry
            if self.max_records and len(self._conn_index) > self.max_records:
                self._conn_index.pop(next(iter(self._conn_index)))
            self._cond.notify_all()
        self._emit({"ev": "handshake", "conn": conn, "path": path, "query": query,
                    "status": status})

    def _record_close(self, conn, code, reason):
        with self._cond:
            entry = self._conn_index.get(conn)
            if entry is not None:
                entry["closed"] = time.monotonic()
                entry["close_code"] = code
            self.frames.append((conn, "in", "close", (code, reason), time.monotonic()))
            self._cond.notify_all()
        self._emit({"ev": "close", "conn": conn, "code": code, "reason": reason})

    def wait_for(self, predicate, timeout=5.0):
        """Re-evaluate ``predicate(self)`` on every recorded event; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    # ------------------------------------------------------------ lifecycle

    def start(self):
        """Serve on a background thread; returns once listening (bounded: 10 s)."""
        if self._thread is not None:
            return self
        _import_websockets()
        from .server import DDSServer
        self._server = DDSServer(self)
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="dds-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(10.0):
            self.stop()
            raise RuntimeError("the dds_client emulator did not start within 10 s")
        if self._start_error is not None:
            self._thread.join(5.0)
            self._thread = None
            raise self._start_error
        log.info("emulator listening on %s", self.url)
        return self

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:  # reported through start() when it happens while starting
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                log.exception("emulator loop failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                if self._forever is not None:
                    self._forever.set()

    async def _main(self):
        from websockets.asyncio.server import serve
        from .server import connection_class

        server = self._server
        ws_logger = logging.getLogger("dds_client.emulator.websockets")
        if not any(isinstance(f, _RedactSecrets) for f in ws_logger.filters):
            ws_logger.addFilter(_RedactSecrets())
        try:
            ws_server = await serve(
                server.handler, self.host, self.port, process_request=server.process_request,
                ping_interval=None, compression=None, max_size=2 ** 20,
                create_connection=connection_class(),
                logger=ws_logger)
        except OSError as exc:
            self._start_error = exc
            self._started.set()
            return
        self.port = ws_server.sockets[0].getsockname()[1]
        self._stop_future = asyncio.get_running_loop().create_future()
        self._started.set()
        await self._stop_future
        closing = [asyncio.ensure_future(ws.close(1001, "server shutting down"))
                   for ws in list(server.open_connections)]
        if closing:
            await asyncio.wait(closing, timeout=3.0)
        ws_server.close()
        try:
            await asyncio.wait_for(ws_server.wait_closed(), 3.0)
        except asyncio.TimeoutError:
            log.warning("emulator connections did not close within 3 s")

    def stop(self, timeout=5.0):
        """Close every connection (1001), stop listening, join the thread; idempotent."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            def _release():
                if self._stop_future is not None and not self._stop_future.done():
                    self._stop_future.set_result(None)
            try:
                loop.call_soon_threadsafe(_release)
            except RuntimeError:
                pass  # the loop already ended
        thread.join(timeout)
        self._thread = None
        if self._forever is not None:
            self._forever.set()

    def serve_forever(self):
        """Block until stop() or SIGINT/SIGTERM (the CLI's loop)."""
        import signal

        done = self._forever = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: done.set())
        try:
            self.start()
            done.wait()   # set by a signal handler, stop() or the end of the server thread
        finally:
            self.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    def __repr__(self):
        return "<Emulator %s%s>" % (self.url, " running" if self._thread else "")
