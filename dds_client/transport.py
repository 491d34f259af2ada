"""The websocket-client connection and its single receive thread (reference 3.12).

One ``websocket.WebSocket`` per connection, driven by an own loop on the ``dds-client-ws`` daemon
thread (no WebSocketApp: it reports a normal close through on_error on 1.9 and reconnects on its
own on some versions). The handshake itself runs on that thread so that ``open()`` can bound the
whole of it, DNS included.
"""

import http.client
import logging
import socket
import ssl
import struct
import threading
import time
from urllib.parse import urlsplit

import websocket
from websocket import ABNF

from .errors import AuthError, ConnectError, ConnectionClosedError, DDSTimeoutError

log = logging.getLogger("dds_client.transport")

_DATA_OPCODES = (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT)


def _reason_phrase(exc, status):
    phrase = getattr(exc, "status_message", None)
    if isinstance(phrase, bytes):
        phrase = phrase.decode("latin-1", "replace")
    return phrase or http.client.responses.get(status, "")


def handshake_error(exc, redacted_url, host, timeout):
    """Map a websocket-client connect failure to the package's exception."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "resp_body", None)
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        body = body or None
        phrase = _reason_phrase(exc, status)
        text = "handshake rejected with HTTP %s %s" % (status, phrase)
        if body:
            text += ": " + body.strip()[:200]
        if status in (401, 403):
            text += (" (check productId and apikey or the device signature; an apikey only "
                     "works from the IP addresses whitelisted for it)")
            return AuthError(text, status, body)
        return ConnectError(text, status, body)
    if isinstance(exc, (websocket.WebSocketTimeoutException, socket.timeout)):
        return DDSTimeoutError("connection to %s not open within %.1f s" % (redacted_url, timeout))
    if isinstance(exc, ssl.SSLError):
        return ConnectError("TLS handshake with %s failed: %s" % (host, exc))
    return ConnectError("cannot connect to %s: %s" % (redacted_url, exc))


class Transport:
    """One WebSocket connection: bounded open, serialised sends, one reader, one close report.

    ``on_open()``, ``on_text(str_or_bytes)``, ``on_binary(bytes)`` and
    ``on_closed(code, reason, lost_error)`` run on the reader thread; ``on_closed`` exactly once
    per opened connection, last.
    """

    def __init__(self, url, redacted_url, *, header=None, sslopt=None, proxy=None,
                 ping_interval=20.0, ping_timeout=10.0,
                 on_open, on_text, on_binary, on_closed):
        self._url = url
        self.redacted_url = redacted_url
        self._header = header
        self._sslopt = sslopt
        self._proxy = proxy or {}
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._on_open = on_open
        self._on_text = on_text
        self._on_binary = on_binary
        self._on_closed = on_closed
        self._ws = None
        self._thread = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._opened = threading.Event()
        self._connect_error = None
        self._aborted = False       # open() gave up: the thread must not report anything
        self._connected = False
        self._closing = False       # close() was called: the end is a client close
        self._closed = False

    # -------------------------------------------------------------- state

    @property
    def connected(self):
        return self._connected and not self._closed and not self._closing

    @property
    def opening(self):
        """open() is still running (neither connected nor failed yet)."""
        return not self._connected and not self._opened.is_set() and not self._aborted

    def in_reader_thread(self):
        return self._thread is not None and threading.current_thread() is self._thread

    # -------------------------------------------------------------- open

    def open(self, timeout):
        deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._run, args=(timeout,), name="dds-client-ws",
                                        daemon=True)
        self._thread.start()
        if not self._opened.wait(timeout):
            with self._lock:
                if not self._connected:
                    self._aborted = True
            if self._aborted:
                self._abort_socket()
                self._thread.join(max(0.5, deadline + 2.0 - time.monotonic()))
                raise DDSTimeoutError("connection to %s not open within %.1f s"
                                      % (self.redacted_url, timeout))
            self._opened.wait(timeout)
        if self._connect_error is not None:
            self._thread.join(2.0)
            raise self._connect_error

    def _run(self, timeout):
        ws = websocket.WebSocket(sslopt=self._sslopt, skip_utf8_validation=True)
        self._ws = ws
        host = urlsplit(self._url).hostname
        try:
            log.debug("connecting to %s", self.redacted_url)
            options = dict(self._proxy)
            if self._header is not None:
                options["header"] = self._header
            ws.connect(self._url, timeout=timeout, **options)
        except Exception as exc:  # every failure is mapped and raised by open()
            ws.shutdown()
            if self._closing:   # close() aborted the handshake
                self._connect_error = ConnectionClosedError("connection closed by client")
            else:
                self._connect_error = handshake_error(exc, self.redacted_url, host, timeout)
            self._opened.set()
            return
        with self._lock:
            if self._aborted or self._closing:
                # open() gave up, or close() came first: report nothing, leave nothing open.
                ws.shutdown()
                self._connect_error = ConnectionClosedError("connection closed by client")
                self._opened.set()
                return
            self._connected = True
        # With pings on, the socket times out after ping_interval of silence (then a ping is
        # sent) and after ping_timeout more while the pong is awaited; no periodic wake-ups.
        ws.settimeout(self._ping_interval or None)
        log.info("connected to %s", self.redacted_url)
        try:
            self._on_open()
        finally:
            self._opened.set()
        try:
            code, reason, lost = self._read_loop(ws)
        except Exception as exc:  # a defect in dispatch must still end in one close report
            log.exception("receive loop of %s failed", self.redacted_url)
            code, reason, lost = 1006, str(exc), "receive loop failed: %s" % exc
        with self._lock:
            self._closed = True
        ws.shutdown()
        log.info("connection to %s closed (%s %s)", self.redacted_url, code, reason)
        self._on_closed(code, reason, lost)

    # -------------------------------------------------------------- reader

    def _read_loop(self, ws):
        debug = log.isEnabledFor(logging.DEBUG)
        cont = ws.cont_frame
        ping_sent = None
        while True:
            try:
                frame = ws.recv_frame()
            except websocket.WebSocketTimeoutException:
                # Only reached with pings on: nothing arrived for the socket's timeout.
                now = time.monotonic()
                if ping_sent is not None:
                    if now - ping_sent >= self._ping_timeout:
                        return 1006, "ping timeout", "ping timeout"
                    continue
                try:
                    with self._send_lock:
                        ws.ping()
                except Exception as exc:
                    return self._ended(exc)
                ping_sent = now
                ws.settimeout(self._ping_timeout)
                continue
            except Exception as exc:
                return self._ended(exc)
            opcode = frame.opcode
            if opcode in _DATA_OPCODES:
                try:
                    cont.validate(frame)
                    cont.add(frame)
                    if not cont.is_fire(frame):
                        continue
                    opcode, frame = cont.extract(frame)
                except Exception as exc:
                    return self._ended(exc)
                data = frame.data
                if opcode == ABNF.OPCODE_TEXT:
                    if debug:
                        log.debug("recv %s", data[:500].decode("utf-8", "replace"))
                    self._on_text(data)
                elif data:
                    if debug:
                        log.debug("recv <binary %d bytes>", len(data))
                    self._on_binary(bytes(data))
            elif opcode == ABNF.OPCODE_PING:
                try:
                    with self._send_lock:
                        ws.pong(frame.data)
                except Exception as exc:
                    return self._ended(exc)
            elif opcode == ABNF.OPCODE_PONG:
                if ping_sent is not None:
                    ping_sent = None
                    ws.settimeout(self._ping_interval)
            elif opcode == ABNF.OPCODE_CLOSE:
                code, reason = 1005, ""
                if len(frame.data) >= 2:
                    code = struct.unpack("!H", frame.data[:2])[0]
                    reason = frame.data[2:].decode("utf-8", "replace")
                log.debug("close frame %s %s", code, reason)
                if self._closing:
                    return 1000, "", None
                with self._lock:
                    self._closed = True
                try:
                    with self._send_lock:
                        ws.send_close(code if code not in (1005, 1006) else 1000)
                except Exception:
                    pass  # the server may already have dropped the TCP connection
                return code, reason, None

    def _ended(self, exc):
        if self._closing:
            return 1000, "", None
        text = str(exc) or type(exc).__name__
        return 1006, text, text

    # -------------------------------------------------------------- send

    def _send(self, payload, opcode):
        if self._closed or self._closing or not self._connected:
            raise ConnectionClosedError("connection is closed")
        try:
            with self._send_lock:
                self._ws.send(payload, opcode)
        except Exception as exc:
            if self._closed or self._closing:
                raise ConnectionClosedError("connection is closed")
            self._abort_socket()
            raise ConnectionClosedError("connection lost: %s" % (exc,))

    def send_text(self, text):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send %s", text[:500])
        self._send(text, ABNF.OPCODE_TEXT)

    def send_binary(self, data):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send <binary %d bytes>", len(data))
        self._send(data, ABNF.OPCODE_BINARY)

    # -------------------------------------------------------------- close

    def _abort_socket(self):
        ws = self._ws
        sock = ws.sock if ws is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, timeout=5.0):
        """Send a close frame (1000) once, wait for the reader's end, then force it."""
        with self._lock:
            first = not self._closing
            self._closing = True
            active = self._connected and not self._closed
        if not active and self._thread is not None:
            self._abort_socket()    # close() during open(): open() raises, nothing stays up
        elif first:
            try:
                with self._send_lock:
                    self._ws.send_close(1000)
            except Exception:
                self._abort_socket()
        thread = self._thread
        if thread is None or self.in_reader_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            self._abort_socket()
            thread.join(2.0)
