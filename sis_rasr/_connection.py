# -*- coding: utf-8 -*-
"""One websocket-client socket and its single receive thread.

The thread performs the handshake (bounded by ``connect_timeout``), then reads frames and hands them
to a handler in arrival order. Pings follow websocket-client's WebSocketApp (every ``ping_interval``
seconds, ``ping_timeout`` for the pong). ``close()`` sends a close frame, shuts the socket down if the
server does not echo it promptly, and joins the thread with a bound; the handler's ``on_closed`` runs
exactly once, on the receive thread, before ``close()`` returns (unless called from that thread).
"""
import ipaddress
import select
import socket
import ssl
import struct
import threading
import time
from urllib.parse import urlsplit

import websocket
from websocket import ABNF, WebSocketConnectionClosedException, WebSocketTimeoutException

from sis_rasr.utils.logger_utils import logger

# How long close() lets the server echo the close frame before shutting the socket down.
CLOSE_ECHO_WAIT_S = 0.25
# Upper bound for joining the receive thread after the socket is shut down.
JOIN_WAIT_S = 2.0
_HAS_POLL = hasattr(select, 'poll')


def is_loopback(host):
    if host is None:
        return False
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False


class Connection(object):
    """ A connection attempt and, once open, the connection.

    The handler provides on_open(conn), on_text(conn, str), on_binary(conn, bytes),
    on_transport_error(conn, exc), on_server_close(conn, code, reason), on_closed(conn) (exactly once,
    unless the attempt was abandoned), on_connect_timeout(conn) and on_handler_error(conn, exc); all are
    called on the receive thread. """

    def __init__(self, url, header, handler, sslopt=None, connect_timeout=10, ping_interval=0, ping_timeout=None,
                 host=None):
        self.url = url
        self._header = header
        self._handler = handler
        self._sslopt = sslopt
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._host = host
        self._ws = None
        self._lock = threading.Lock()
        self._closing = False
        self.abandoned = False      # a stale connect attempt: no callbacks at all
        self.timed_out = None       # set by the owner when the connect wait expired
        self.retry_on_timeout = False  # a handshake timeout is silent: the owner retries
        self.opened = False
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name='sis-rasr-recv', daemon=True)

    # -- owner side ------------------------------------------------------------------------------
    def start(self):
        self._thread.start()

    @property
    def thread(self):
        return self._thread

    def send_text(self, text):
        self._send(text, ABNF.OPCODE_TEXT)

    def send_binary(self, data):
        self._send(data, ABNF.OPCODE_BINARY)

    def _send(self, data, opcode):
        ws = self._ws
        if ws is None or not self.opened or self._closing or self.done.is_set():
            raise WebSocketConnectionClosedException('Connection is already closed.')
        ws.send(data, opcode)

    def abandon(self):
        """ Drop a connect attempt silently (it timed out and another one follows). """
        self.abandoned = True
        self.close()

    def close(self):
        """ Close promptly; idempotent; bounded. """
        with self._lock:
            self._closing = True
            ws = self._ws
        if ws is not None and self.opened:
            try:
                ws.send_close(websocket.STATUS_NORMAL)
            except Exception:  # already gone; the shutdown below finishes the job
                pass
        if threading.current_thread() is self._thread or self._thread.ident is None:
            return  # inside a callback (the loop ends after it) or never started
        if not self.done.wait(CLOSE_ECHO_WAIT_S if self.opened else 0):
            self._shutdown_socket()
        self._thread.join(JOIN_WAIT_S + (self._connect_timeout or 0))
        if self._thread.is_alive():
            logger.warning('receive thread did not stop in time')

    def _shutdown_socket(self):
        ws = self._ws
        sock = ws.sock if ws is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass

    # -- receive thread --------------------------------------------------------------------------
    def _call(self, name, *args):
        if self.abandoned:
            return
        try:
            getattr(self._handler, name)(self, *args)
        except Exception as exc:  # the handler reports user-callback failures itself; this is a last guard
            logger.exception('sis_rasr handler %s failed', name)
            try:
                self._handler.on_handler_error(self, exc)
            except Exception:
                logger.exception('sis_rasr error handler failed')

    def _run(self):
        ws = websocket.WebSocket(enable_multithread=True, sslopt=self._sslopt, skip_utf8_validation=True)
        with self._lock:
            self._ws = ws
            closing = self._closing
        try:
            if closing:
                raise WebSocketConnectionClosedException('connection closed before the handshake')
            options = {'header': self._header, 'timeout': self._connect_timeout}
            if self._host is not None:
                options['host'] = self._host
            hostname = urlsplit(self.url).hostname
            if is_loopback(hostname):
                # An exported http_proxy must never divert a loopback emulator connection.
                options['http_no_proxy'] = [hostname]
            ws.connect(self.url, **options)
            with self._lock:
                if self._closing:
                    raise WebSocketConnectionClosedException('connection closed during the handshake')
                self.opened = True
        except Exception as exc:
            if (self.retry_on_timeout and not self._closing
                    and isinstance(exc, (WebSocketTimeoutException, socket.timeout))):
                # The owner makes another attempt: this one stays silent, as an abandoned one.
                self.abandoned = True
                self._finish(ws)
                try:
                    self._handler.on_connect_timeout(self)
                except Exception:
                    logger.exception('sis_rasr handler on_connect_timeout failed')
                return
            if self.timed_out is not None:
                exc = self.timed_out
            elif isinstance(exc, (WebSocketTimeoutException, socket.timeout)) and not self.opened:
                exc = WebSocketTimeoutException('websocket handshake timed out after %s s, url is %s'
                                                % (self._connect_timeout, self.url))
            if not self._closing or self.timed_out is not None:
                self._call('on_transport_error', exc)
            self._finish(ws)
            return
        self._call('on_open')
        try:
            self._loop(ws)
        except Exception as exc:
            if not self._closing:
                self._call('on_transport_error', exc)
        self._finish(ws)

    def _finish(self, ws):
        try:
            ws.shutdown()
        except Exception:
            pass
        self._call('on_closed')
        self.done.set()

    def _wait_readable(self, ws, poller, timeout):
        sock = ws.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        if poller is not None:
            return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))
        return bool(select.select([sock], [], [], timeout)[0])

    def _loop(self, ws):
        poller = None
        if _HAS_POLL:
            poller = select.poll()
            poller.register(ws.sock, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
        interval = self._ping_interval or 0
        ping_timeout = self._ping_timeout
        next_ping = time.monotonic() + interval if interval else None
        pong_due = None
        while True:
            timeout = None
            if next_ping is not None or pong_due is not None:
                now = time.monotonic()
                if pong_due is not None and now >= pong_due:
                    raise WebSocketTimeoutException('ping/pong timed out')
                if next_ping is not None and now >= next_ping:
                    ws.ping()
                    next_ping = now + interval
                    if ping_timeout and pong_due is None:
                        pong_due = now + ping_timeout
                deadlines = [t for t in (next_ping, pong_due) if t is not None]
                timeout = max(0.0, min(deadlines) - now)
            if not self._wait_readable(ws, poller, timeout):
                continue
            opcode, frame = ws.recv_data_frame(True)
            if self._closing and opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                continue  # close() was called: no more results, like the vendor's keep_running=False
            if opcode == ABNF.OPCODE_TEXT:
                try:
                    text = frame.data.decode('utf-8')
                except UnicodeDecodeError:
                    self._call('on_binary', frame.data)
                    continue
                self._call('on_text', text)
            elif opcode == ABNF.OPCODE_BINARY:
                self._call('on_binary', frame.data)
            elif opcode == ABNF.OPCODE_PONG:
                pong_due = None
            elif opcode == ABNF.OPCODE_CLOSE:
                if not self._closing:
                    code, reason = _close_args(frame.data)
                    self._call('on_server_close', code, reason)
                return


def _close_args(data):
    if data and len(data) >= 2:
        code = struct.unpack('!H', data[0:2])[0]
        return code, data[2:].decode('utf-8', 'replace')
    return None, ''
