"""One WebSocket connection to the NLS gateway and its single receive thread.

The thread connects (bounded by the caller's timeout), sends the first command, then is the only reader
of the socket: it answers pings, sends its own pings, enforces the pong and close deadlines, and hands
every text/binary frame to the handler in arrival order. Other threads only send (websocket-client's
send lock keeps frames whole) or shut the socket down to wake the reader.
"""
import errno
import logging
import socket
import ssl
import struct
import threading
import time

import websocket
from websocket import ABNF

from . import _protocol as protocol

_log = logging.getLogger('nls')

NORMAL_CLOSURE = 1000
CLOSE_WAIT_S = 3.0      # bounded wait for the peer's close frame, as the original's close(timeout=3)
_IDLE_TICK_S = 10.0     # without pings the reader still wakes up now and then; also bounds blocking sends


class ConnectionClosed(Exception):
    """Sending failed because the connection is gone (not a reset: those stay ConnectionResetError)."""


class CloseInfo(object):
    """How a connection ended. `error` is (status, NAME, detail) for transport failures, else None."""
    __slots__ = ('by_us', 'code', 'reason', 'error', 'opened', 'handshake', 'timed_out')

    def __init__(self, by_us, code=None, reason='', error=None, opened=True, handshake=None, timed_out=False):
        self.by_us = by_us
        self.code = code
        self.reason = reason
        self.error = error
        self.opened = opened
        self.handshake = handshake    # (http status, body) when the upgrade was refused
        self.timed_out = timed_out    # the connect/handshake ran out of time (ConnectionTimeout)

    def describe(self):
        if self.code is not None:
            return 'close code %s %s' % (self.code, self.reason)
        return 'connection closed without a close frame'


def classify_connect_error(exc):
    """(status, NAME, detail) for an exception raised while opening the connection."""
    detail = '%s: %s' % (type(exc).__name__, exc)
    if isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.CertificateError):
        return protocol.SSL_ERROR, 'SSL_ERROR', detail
    if isinstance(exc, (socket.gaierror, websocket.WebSocketAddressException)):
        return protocol.SYS_ERROR, 'SYS_ERROR', detail
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)):
        return protocol.CONNECT_FAILED, 'CONNECT_FAILED', detail
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED):
        return protocol.CONNECT_FAILED, 'CONNECT_FAILED', detail
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return protocol.CONNECT_FAILED, 'CONNECT_FAILED', detail
    return protocol.SYS_ERROR, 'SYS_ERROR', detail


class Connection(object):
    """A gateway connection driven by `handler`, which gets, on the receive thread:
    on_open(), on_text(str), on_binary(bytes), on_closed(CloseInfo) (exactly once, last)."""

    def __init__(self, url, token, handler, name='nls-session'):
        self._url = url
        self._header = ['X-NLS-Token: ' + token]
        self._handler = handler
        self._lock = threading.Lock()
        self._ws = None
        self._aborted = False
        self._close_sent = False
        self._close_deadline = None
        self.opened = threading.Event()
        self.finished = threading.Event()
        self.settled = threading.Event()     # opened, or finished without ever opening
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- caller side -----------------------------------------------------------------------------------

    def start(self, first_text, connect_timeout, ping_interval=None, ping_timeout=None):
        self._first_text = first_text
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval or None
        self._ping_timeout = ping_timeout or None
        self._thread.start()

    @property
    def on_reader_thread(self):
        return threading.current_thread() is self._thread

    def send_text(self, text):
        self._send(text, ABNF.OPCODE_TEXT)

    def send_binary(self, data):
        self._send(data, ABNF.OPCODE_BINARY)

    def _send(self, data, opcode):
        ws = self._ws
        if ws is None or not self.opened.is_set() or self._close_sent:
            raise ConnectionClosed('connection is not open')
        try:
            ws.send(data, opcode)
        except (ConnectionResetError, ConnectionClosed):
            raise
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionClosed('%s: %s' % (type(exc).__name__, exc))

    def close(self, wait=True, timeout=CLOSE_WAIT_S):
        """Start the close handshake (status 1000); unless on the reader thread, wait for it to finish
        within `timeout`, then drop the socket. Safe to call at any time, any number of times."""
        with self._lock:
            first = not self._close_sent
            self._close_sent = True
            if first:
                self._close_deadline = time.monotonic() + timeout
            ws = self._ws
            opened = self.opened.is_set()
        if first:
            if opened and ws is not None:
                try:
                    # The raw send: websocket-client's close() would read frames here, and only the
                    # receive thread may read.
                    ws.send(struct.pack('!H', NORMAL_CLOSURE), ABNF.OPCODE_CLOSE)
                except (OSError, websocket.WebSocketException):
                    # already broken: dropping the socket ends the reader just the same
                    self.abort()
            else:
                self.abort()
        if wait and not self.on_reader_thread:
            if not self.finished.wait(timeout):
                self.abort()
                self.finished.wait(timeout)
            self.join(timeout)

    def abort(self):
        """Drop the socket now; the reader wakes up and ends the connection."""
        with self._lock:
            self._aborted = True
            ws = self._ws
        sock = getattr(ws, 'sock', None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join(self, timeout=None):
        if self._thread.is_alive() and not self.on_reader_thread:
            self._thread.join(timeout)

    # -- receive thread ---------------------------------------------------------------------------------

    def _run(self):
        info = None
        try:
            info = self._open()
            if info is None:
                info = self._read_loop()
        except Exception as exc:   # a bug here must still end the session properly
            _log.exception('nls: receive thread failed')
            info = CloseInfo(self._close_sent, error=(protocol.SYS_ERROR, 'SYS_ERROR', repr(exc)))
        finally:
            ws = self._ws
            if ws is not None:
                ws.shutdown()
            try:
                self._handler.on_closed(info or CloseInfo(True))
            finally:
                self.finished.set()
                self.settled.set()

    def _open(self):
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        with self._lock:
            self._ws = ws
            if self._aborted:
                return CloseInfo(True, opened=False)
        try:
            ws.connect(self._url, header=self._header, timeout=self._connect_timeout)
        except websocket.WebSocketBadStatusException as exc:
            body = getattr(exc, 'resp_body', None) or b''
            return CloseInfo(False, opened=False, handshake=(exc.status_code, body))
        except (websocket.WebSocketTimeoutException, socket.timeout):
            return CloseInfo(True, opened=False, timed_out=True)
        except Exception as exc:
            if self._aborted:
                return CloseInfo(True, opened=False)
            return CloseInfo(False, error=classify_connect_error(exc), opened=False)
        if self._aborted:
            return CloseInfo(True, opened=False)
        if self._first_text is not None:
            _log.debug('send: %s', self._first_text)
            try:
                ws.send(self._first_text, ABNF.OPCODE_TEXT)
            except Exception as exc:
                return CloseInfo(False, error=(protocol.CONNECTION_LOST, 'CONNECTION_LOST',
                                               '%s: %s' % (type(exc).__name__, exc)))
        self.opened.set()
        self.settled.set()
        self._handler.on_open()
        return None

    def _read_loop(self):
        ws = self._ws
        handler = self._handler
        ping_interval, ping_timeout = self._ping_interval, self._ping_timeout
        next_ping = time.monotonic() + ping_interval if ping_interval else None
        pong_due = None
        fragments = None
        fragment_opcode = None
        while True:
            now = time.monotonic()
            wake = now + _IDLE_TICK_S
            for t in (next_ping, pong_due, self._close_deadline):
                if t is not None and t < wake:
                    wake = t
            ws.settimeout(max(wake - now, 0.001))
            try:
                frame = ws.recv_frame()
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                if self._close_deadline is not None and now >= self._close_deadline:
                    return CloseInfo(True)
                if pong_due is not None and now >= pong_due:
                    return CloseInfo(self._close_sent, error=(protocol.RECV_TIMEOUT, 'RECV_TIMEOUT',
                                                              'ping/pong timed out'))
                if next_ping is not None and now >= next_ping:
                    try:
                        ws.ping()
                    except Exception as exc:
                        return self._lost(exc)
                    next_ping = now + ping_interval
                    if ping_timeout and pong_due is None:
                        pong_due = now + ping_timeout
                continue
            except Exception as exc:
                return self._lost(exc)
            opcode = frame.opcode
            if opcode == ABNF.OPCODE_TEXT or opcode == ABNF.OPCODE_BINARY:
                if frame.fin:
                    self._deliver(handler, opcode, frame.data)
                else:
                    fragments, fragment_opcode = [frame.data], opcode
            elif opcode == ABNF.OPCODE_CONT and fragments is not None:
                fragments.append(frame.data)
                if frame.fin:
                    data, fragments = b''.join(fragments), None
                    self._deliver(handler, fragment_opcode, data)
            elif opcode == ABNF.OPCODE_CLOSE:
                code, reason = _close_status(frame.data)
                if not self._close_sent:
                    self._close_sent = True
                    try:
                        ws.send(struct.pack('!H', code if code is not None else NORMAL_CLOSURE),
                                ABNF.OPCODE_CLOSE)
                    except (OSError, websocket.WebSocketException):
                        pass   # the peer is gone already; the close is complete either way
                    return CloseInfo(False, code, reason)
                return CloseInfo(True, code, reason)
            elif opcode == ABNF.OPCODE_PING:
                try:
                    ws.pong(frame.data)
                except Exception as exc:
                    return self._lost(exc)
            elif opcode == ABNF.OPCODE_PONG:
                pong_due = None

    def _deliver(self, handler, opcode, data):
        if opcode == ABNF.OPCODE_TEXT:
            try:
                text = data.decode('utf-8') if isinstance(data, bytes) else data
            except UnicodeDecodeError:
                text = data.decode('utf-8', 'replace')
            handler.on_text(text)
        else:
            handler.on_binary(data)

    def _lost(self, exc):
        if self._close_sent or self._aborted:
            return CloseInfo(True)
        return CloseInfo(False, error=(protocol.CONNECTION_LOST, 'CONNECTION_LOST',
                                       '%s: %s' % (type(exc).__name__, exc)))


def _close_status(data):
    if len(data) >= 2:
        return struct.unpack('!H', data[:2])[0], data[2:].decode('utf-8', 'replace')
    return None, ''
