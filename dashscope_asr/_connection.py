"""One recognition session on a websocket-client socket: connect, send, receive, bounded waits, close.

Threads per session: a *sender* (connects, sends ``run-task``, drains the audio queue, sends
``finish-task``, keeps every deadline) and a *reader* (blocks on the socket, parses each message with
``_protocol`` and hands the outcome to ``sink`` at once, so results never wait for audio). The sink
(the callback thread of ``Recognition``, or the caller of ``call()``) must not block.
"""
import queue
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import websocket

from . import _protocol
from .common.logging import logger

_FINISH = object()   # queue marker: drain done, send finish-task
_WAKE = object()     # queue marker: re-check state (terminal outcome arrived, abort)

PING_INTERVAL_S = 30.0   # the vendor's aiohttp heartbeat
PONG_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 2.0    # how long a close handshake may take before the socket is cut


class Session(object):
    """A single task: ``run-task`` → audio/``continue-task`` → ``finish-task`` → terminal outcome.

    ``sink(outcome)`` receives every outcome in arrival order, exactly one terminal one
    (``complete`` or ``error``), then ``None`` once the socket is closed and the reader joined.
    """

    def __init__(self, url, headers, request_timeout, task_id, run_task, sink, start_timeout,
                 finish_timeout, silence_timeout=None, on_autostop=None, sslopt=None, name='',
                 streaming=True):
        self.url = url
        self.headers = headers
        self.request_timeout = request_timeout
        self.task_id = task_id
        self.run_task = run_task
        self.sink = sink
        self.start_timeout = start_timeout
        self.finish_timeout = finish_timeout
        self.silence_timeout = silence_timeout
        self.on_autostop = on_autostop
        self.sslopt = sslopt
        self.protocol = _protocol.RecognitionProtocol(task_id, streaming=streaming)
        self._queue = queue.Queue()
        self._lock = threading.Lock()          # protocol + sink: one outcome at a time, in order
        self._cond = threading.Condition(self._lock)
        self._ws = None
        self._raw = None
        self._reader = None
        self._last_server = 0.0                # monotonic time of the last server frame
        self._finish_sent = 0.0
        self._pong_due = None
        self._peer_closed = False
        self._finish_requested = False
        self._abort_response = None
        self._connecting = False
        self._released = False                 # sink(None) delivered
        self.last_activity = time.monotonic()  # last send_audio_frame/update_context (silence timer)
        tag = (name or 'session') + '-' + task_id[:8]
        self._sender = threading.Thread(target=self._run, name='dashscope_asr-send-' + tag)
        self._tag = tag
        self.ended = threading.Event()

    # -- called by Recognition (any thread) --------------------------------------------------------
    def start(self):
        self._sender.start()

    def run(self):
        """Run the session on the calling thread (``call()``: the caller would only wait anyway)."""
        self._run()

    def send_audio(self, data):
        self.last_activity = time.monotonic()
        self._queue.put(data)

    def send_text(self, text):
        self.last_activity = time.monotonic()
        self._queue.put(text)

    def finish(self):
        """Send finish-task after everything queued so far."""
        if not self._finish_requested:
            self._finish_requested = True
            self._queue.put(_FINISH)

    def abort(self, response):
        """End the session now with ``response`` as its error (if it has not ended otherwise)."""
        with self._lock:
            if self._abort_response is None:
                self._abort_response = response
            self._cond.notify_all()
            if self._connecting and not self._released:
                # websocket-client cannot be interrupted inside connect(): report now; the sender
                # closes the socket as soon as connect() returns (within request_timeout).
                self._emit(self.protocol.fail(response))
                self._released = True
                self.sink(None)
        self._queue.put(_WAKE)

    def join(self, timeout=None):
        if self._sender is not threading.current_thread() and self._sender.ident is not None:
            if self._released and self._sender.is_alive() and timeout is None:
                return  # aborted inside connect(): the sender ends by itself when it returns
            self._sender.join(timeout)

    # -- outcomes ----------------------------------------------------------------------------------
    def _emit(self, outcome):
        """Deliver an outcome (caller holds the lock)."""
        if outcome.kind == 'ignore':
            return
        outcome.at = time.time() * 1000
        self.sink(outcome)
        self._cond.notify_all()
        if self.protocol.finished:
            self._queue.put(_WAKE)

    def _fail(self, response):
        with self._lock:
            self._emit(self.protocol.fail(response))

    @property
    def _done(self):
        return self.protocol.finished

    # -- sender thread -----------------------------------------------------------------------------
    def _run(self):
        try:
            if self._connect():
                self._raw = self._ws.sock
                self._last_server = time.monotonic()
                self._reader = threading.Thread(target=self._read,
                                                name='dashscope_asr-recv-' + self._tag)
                self._reader.start()
                if self._send(self.run_task) and self._wait_started() and self._pump():
                    self._finish_sent = time.monotonic()
                    self._send(_protocol.build_finish_task(self.task_id))
                if not self._done:
                    self._wait_finished()
        except Exception as exc:  # a bug here must still end the session visibly
            logger.exception('recognition session failed')
            self._fail(_protocol.unknown_error(type(exc), exc))
        finally:
            self._close()
            with self._lock:
                if not self._done:
                    self._emit(self.protocol.fail(_protocol.unknown_error(
                        ConnectionError, 'session ended without a result')))
                released, self._released = self._released, True
            self.ended.set()
            if not released:
                self.sink(None)

    def _connect(self):
        parts = urlsplit(self.url)
        secure = parts.scheme == 'wss'
        host = parts.hostname
        port = parts.port or (443 if secure else 80)
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True,
                                 sslopt=self.sslopt)
        with self._lock:
            if self._abort_response is not None:
                self._emit(self.protocol.fail(self._abort_response))
                return False
            self._connecting = True
        try:
            ws.connect(self.url, header=self.headers, timeout=self.request_timeout,
                       suppress_origin=True)
        except websocket.WebSocketBadStatusException as exc:
            status = getattr(exc, 'status_code', None)
            self._fail(_protocol.handshake_error(status) if status else
                       _protocol.unknown_error(type(exc), exc))
            return False
        except (websocket.WebSocketTimeoutException, socket.timeout) as exc:
            self._fail(_protocol.timeout_error(
                'Connection timeout to host %s:%s after %s s (%s)'
                % (host, port, self.request_timeout, exc)))
            return False
        except ssl.SSLError as exc:
            self._fail(_protocol.connect_error(host, port, secure, exc))
            return False
        except OSError as exc:
            self._fail(_protocol.connect_error(host, port, secure, exc.strerror or exc))
            return False
        except Exception as exc:
            self._fail(_protocol.unknown_error(type(exc), exc))
            return False
        finally:
            with self._lock:
                self._connecting = False
        ws.sock.settimeout(None)  # the reader blocks; deadlines live in this thread
        self._ws = ws
        if self._abort_response is not None:  # aborted while connecting: close at once
            self._raw = ws.sock
            return False
        return True

    def _send(self, data):
        try:
            if isinstance(data, str):
                self._ws.send(data)
            else:
                self._ws.send_binary(data)
            return True
        except Exception as exc:
            # The reader sees why (task-failed, close); give it the chance to report that first.
            logger.debug('send failed: %s', exc)
            return False

    def _deadline_wait(self, predicate, deadline_of, what):
        """Wait (lock held by caller) until predicate() or an abort; deadline_of() may move."""
        while not predicate():
            if self._abort_response is not None:
                self._emit(self.protocol.fail(self._abort_response))
                return False
            now = time.monotonic()
            deadline = deadline_of()
            if now >= deadline:
                self._emit(self.protocol.fail(_protocol.timeout_error(what)))
                return False
            wait = deadline - now
            if self._pong_due is not None:
                wait = min(wait, max(0.0, self._pong_due - now))
            self._cond.wait(wait)
            if self._pong_due is not None and time.monotonic() >= self._pong_due and not predicate():
                self._emit(self.protocol.fail(_protocol.timeout_error(
                    'No PONG within %s s' % PONG_TIMEOUT_S)))
                return False
        return True

    def _wait_started(self):
        start = time.monotonic()
        with self._lock:
            ok = self._deadline_wait(
                lambda: self.protocol.started or self._done, lambda: start + self.start_timeout,
                'No task-started within %s s' % self.start_timeout)
            return ok and not self._done

    def _wait_finished(self):
        with self._lock:
            # Server silence counts from finish-task on, whatever the quiet before it.
            self._deadline_wait(
                lambda: self._done,
                lambda: max(self._last_server, self._finish_sent) + self.finish_timeout,
                'No server message within %s s after finish-task' % self.finish_timeout)

    def _pump(self):
        """Send queued audio until finish is requested; returns False if the session ended."""
        next_ping = time.monotonic() + PING_INTERVAL_S
        while True:
            if self._done or self._abort_response is not None:
                return False
            now = time.monotonic()
            timeout = next_ping - now
            silence_deadline = None
            if self.silence_timeout is not None:
                silence_deadline = self.last_activity + self.silence_timeout
                timeout = min(timeout, silence_deadline - now)
            if self._pong_due is not None:
                timeout = min(timeout, self._pong_due - now)
            try:
                item = self._queue.get(timeout=max(0.0, timeout))
            except queue.Empty:
                now = time.monotonic()
                if self._pong_due is not None and now >= self._pong_due:
                    self._fail(_protocol.timeout_error('No PONG within %s s' % PONG_TIMEOUT_S))
                    return False
                if silence_deadline is not None and now >= self.last_activity + self.silence_timeout:
                    # The vendor's 23-s silence auto-finish.
                    if self.on_autostop is not None:
                        self.on_autostop()
                    self.finish()
                    continue
                if now >= next_ping:
                    next_ping = now + PING_INTERVAL_S
                    try:
                        self._ws.ping()
                        self._pong_due = now + PONG_TIMEOUT_S
                    except Exception:
                        return False
                continue
            if item is _FINISH:  # everything queued before stop() has been sent
                return True
            if item is _WAKE:
                continue
            if not self._send(item):
                return False

    def _close(self):
        ws = self._ws
        if ws is None:
            return
        reader = self._reader
        if not self._peer_closed:
            try:
                ws.send_close(websocket.STATUS_NORMAL)
            except Exception:
                pass
        if reader is not None:
            reader.join(CLOSE_TIMEOUT_S)
        try:
            self._raw.shutdown(socket.SHUT_RDWR)  # wakes a reader still blocked in recv
        except OSError:
            pass
        if reader is not None:
            reader.join()
        ws.shutdown()

    # -- reader thread -----------------------------------------------------------------------------
    def _read(self):
        ws = self._ws
        while True:
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except Exception as exc:
                logger.debug('receive ended: %r', exc)
                with self._lock:
                    self._peer_closed = True
                    self._emit(self.protocol.closed())
                return
            with self._lock:
                self._last_server = time.monotonic()
                self._pong_due = None
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    try:
                        text = data.decode('utf-8')
                    except UnicodeDecodeError as exc:
                        self._emit(self.protocol.fail(_protocol.unknown_error(type(exc), exc)))
                        continue
                    self._emit(self.protocol.receive_text(text))
                elif opcode == websocket.ABNF.OPCODE_BINARY:
                    self._emit(self.protocol.receive_binary())
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    self._peer_closed = True  # websocket-client already answered the close
                    self._emit(self.protocol.closed())
                    return
                else:
                    self._cond.notify_all()  # a PONG: deadlines re-check
