"""What NlsSpeechRecognizer and NlsSpeechTranscriber share: one session per start(), its callbacks on
the session's own thread, the blocking start()/stop() with their bounds, and the single-report rule
(an abnormal end goes either to on_error or into an exception, never both)."""
import logging
import os
import sys
import threading
import time

from . import _protocol as protocol
from ._connection import CLOSE_WAIT_S, Connection, ConnectionClosed
from .exception import (ConnectionTimeout, ConnectionUnavailable, InvalidParameter,
                        StartTimeoutException, StopTimeoutException)

_log = logging.getLogger('nls')

DEFAULT_URL = 'wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1'


class _DefaultURL(str):
    """The default gateway URL, told apart from the same string passed explicitly (NLS_LITE_URL)."""


DEFAULT = _DefaultURL(DEFAULT_URL)

# How long a caller waits for the receive thread after it gave up on the connection (DNS, for one,
# cannot be interrupted); the thread is a daemon and still ends the session by itself.
_GIVE_UP_GRACE_S = 1.0


def resolve_url(url):
    if url is DEFAULT:
        return os.environ.get('NLS_LITE_URL') or DEFAULT_URL
    return url


def report_callback_exception(name):
    """A raising user callback must not kill the session: log it, hand it to threading.excepthook."""
    exc_type, exc, tb = sys.exc_info()
    _log.error('nls: user callback %s raised %s: %s', name, exc_type.__name__, exc)
    try:
        threading.excepthook(threading.ExceptHookArgs((exc_type, exc, tb, threading.current_thread())))
    except Exception:   # a broken hook must not take the session down either
        pass
    finally:
        del tb


class Session(object):
    """One start() .. on_close: the protocol state plus the connection that carries it."""

    def __init__(self, client, task_id):
        self.client = client
        self.task_id = task_id
        self.state = protocol.SessionState()
        self.cond = threading.Condition()
        self.lost_detail = None      # set when a sender saw the connection break
        self.connect_timed_out = False
        self.connected_at = None
        self.connection = Connection(client._url, client._token, self,
                                     name='nls-%s-%s' % (client._service.namespace, task_id[:8]))

    # -- receive-thread events (see Connection) -------------------------------------------------------

    # The caller only waits for two things, so only they notify: *Started handled (started) and the
    # session over with on_close run (CLOSED). Every other step just updates the state.

    def on_open(self):
        with self.cond:
            self.state.advance(protocol.STARTING)
            self.connected_at = time.monotonic()

    def on_text(self, text):
        _log.debug('recv: %s', text)
        event = protocol.parse(self.client._service, text)
        kind = event.kind
        if kind == protocol.RESULT:
            self.client._fire(event.callback, text)
        elif kind == protocol.STARTED:
            self._set(phase=protocol.RUNNING)
            self.client._fire('on_start', text)
            self._set(started=True, notify=True)
        elif kind == protocol.COMPLETED:
            self._end('completed')
            self.connection.close(wait=False)
            self.client._fire('on_completed', text)
            self._set(completed=True)
        elif kind == protocol.FAILED:
            self._end('failed')
            if self._claim('callback'):
                self.client._fire('on_error', text)
            self.connection.close(wait=False)
        elif kind == protocol.UNKNOWN:
            _log.error('cannot handle cmd' + event.name)
        else:
            if not event.parsed:
                _log.error('cannot parse message:' + text)
            self._end('failed')
            if self._claim('callback'):
                detail = 'malformed server message: %s' % text[:200]
                self.client._fire('on_error', protocol.sdk_error(
                    protocol.INVALID_SERVER_MESSAGE, 'INVALID_SERVER_MESSAGE', detail, self.task_id))
            self.connection.close(wait=False)

    def on_binary(self, data):
        _log.debug('recv: binary frame of %d bytes, dropped', len(data))

    def on_closed(self, info):
        with self.cond:
            self.state.advance(protocol.ENDING)
            if info.timed_out:
                self.connect_timed_out = True
                self.state.claim_report('exception')   # start() raises ConnectionTimeout
        error = self._error_for(info)
        if error is not None and self._claim('callback'):
            self.client._fire('on_error', error)
        # Detached first, so that on_close may start() the same object again.
        self.client._detach(self)
        self.client._fire('on_close')
        self._set(phase=protocol.CLOSED, notify=True)

    def _error_for(self, info):
        if info.timed_out:
            return None
        with self.cond:
            if self.state.outcome is not None:
                return None
            if self.state.closing and info.error is None and self.lost_detail is None:
                return None
        if info.handshake is not None:
            return protocol.handshake_rejected(info.handshake[0], info.handshake[1], self.task_id)
        if info.error is not None:
            status, name, detail = info.error
            return protocol.sdk_error(status, name, detail, self.task_id)
        # The peer's close frame says more than a sender's "connection is not open" that raced with it.
        detail = info.describe() if info.code is not None else (self.lost_detail or info.describe())
        return protocol.sdk_error(protocol.CONNECTION_LOST, 'CONNECTION_LOST', detail, self.task_id)

    # -- state helpers ----------------------------------------------------------------------------------

    def _set(self, phase=None, notify=False, **flags):
        with self.cond:
            if phase is not None:
                self.state.advance(phase)
            for name, value in flags.items():
                setattr(self.state, name, value)
            if notify:
                self.cond.notify_all()

    def _end(self, outcome):
        with self.cond:
            if self.state.outcome is None:
                self.state.outcome = outcome
            self.state.advance(protocol.ENDING)

    def _claim(self, reporter):
        with self.cond:
            return self.state.claim_report(reporter)

    def wait(self, predicate, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.state), timeout)

    @property
    def on_own_thread(self):
        return self.connection.on_reader_thread

    # -- caller-side endings ----------------------------------------------------------------------------

    def close(self, claim_as_exception=False):
        """End the session from the caller's side: close handshake bounded by CLOSE_WAIT_S; unless
        called from a callback, return once on_close has run (or the bound is spent)."""
        with self.cond:
            self.state.closing = True
            if claim_as_exception:
                self.state.claim_report('exception')
        self.connection.close(wait=not self.on_own_thread)
        if not self.on_own_thread:
            self.connection.finished.wait(_GIVE_UP_GRACE_S)

    def lose(self, detail):
        """A send saw the connection break: end it, and let the receive thread report CONNECTION_LOST."""
        with self.cond:
            if self.lost_detail is None:
                self.lost_detail = detail
        self.connection.abort()
        self.settle()

    def settle(self):
        """Wait (bounded) until on_close has run and the session thread is gone; no-op on that thread."""
        if not self.on_own_thread:
            self.wait(lambda s: s.phase == protocol.CLOSED, CLOSE_WAIT_S + _GIVE_UP_GRACE_S)
            self.connection.join(_GIVE_UP_GRACE_S)

    def send(self, data, binary, report_loss=False):
        """Send one frame. ConnectionResetError is re-raised, as the original does; another transport
        failure raises ConnectionUnavailable, or with `report_loss` ends the session through on_error
        (CONNECTION_LOST) and returns False."""
        try:
            if binary:
                self.connection.send_binary(data)
            else:
                self.connection.send_text(data)
        except ConnectionResetError:
            _log.error('connection reset')
            self.close(claim_as_exception=True)
            raise
        except ConnectionClosed as exc:
            if report_loss:
                self.lose(str(exc))
                return False
            self.close(claim_as_exception=True)
            raise ConnectionUnavailable('Must call start before send!')
        return True


class SpeechClient(object):
    """Base of the recognizer and transcriber; the subclasses are the vendor-facing surface."""

    _service = None
    _formats = ()

    def __init__(self, url, token, appkey, callbacks, callback_args):
        if not token or not appkey:
            raise InvalidParameter('Must provide token and appkey')
        self._url_arg = url
        self._token = token
        self._appkey = appkey
        self._callbacks = callbacks
        # Kept by reference and unpacked at call time, as the original does.
        self._callback_args = callback_args
        self._lock = threading.Lock()
        self._session = None

    @property
    def _url(self):
        return resolve_url(self._url_arg)

    # -- callbacks --------------------------------------------------------------------------------------

    def _fire(self, name, *args):
        callback = self._callbacks.get(name)
        if callback is None:
            return
        try:
            callback(*(args + tuple(self._callback_args)))
        except Exception:
            report_callback_exception(name)

    def _detach(self, session):
        with self._lock:
            if self._session is session:
                self._session = None

    # -- the blocking calls -----------------------------------------------------------------------------

    def _start(self, payload, timeout, ping_interval, ping_timeout):
        problem = protocol.check_ping(ping_interval, ping_timeout)
        if problem:
            raise InvalidParameter(problem)
        task_id = protocol.new_id()
        start_text = protocol.start_command(self._service, task_id, self._appkey, payload)
        with self._lock:
            if self._session is not None:
                _log.debug('already start...')
                return False
            session = self._session = Session(self, task_id)
        _log.debug('send: %s', start_text)
        session.connection.start(start_text, timeout, ping_interval, ping_timeout)
        # Up to `timeout` to connect, then up to `timeout` from then on for *Started (one wait, as
        # nothing wakes us in between).
        done = lambda s: s.started or s.phase == protocol.CLOSED
        finished = session.wait(done, timeout)
        if not finished and session.connected_at is not None:
            remaining = session.connected_at + timeout - time.monotonic()
            finished = session.wait(done, max(remaining, 0))
        if session.connect_timed_out or (not finished and session.connected_at is None):
            session.close(claim_as_exception=True)
            raise ConnectionTimeout('Wait response timeout! Please check local network!')
        if not finished:
            session.close(claim_as_exception=True)
            raise StartTimeoutException('Waiting Start over {}s'.format(timeout))
        if session.state.started:
            return True
        session.connection.join(_GIVE_UP_GRACE_S)
        return False

    def _stop(self, timeout):
        with self._lock:
            session = self._session
        if session is None or session.state.phase != protocol.RUNNING:
            _log.debug('not start yet...')
            return False
        stop_text = protocol.stop_command(self._service, session.task_id, self._appkey)
        session._set(phase=protocol.STOPPING)
        _log.debug('send: %s', stop_text)
        try:
            session.connection.send_text(stop_text)
        except (ConnectionResetError, ConnectionClosed) as exc:
            session.lose('%s: %s' % (type(exc).__name__, exc))
            return False
        if session.on_own_thread:
            return True
        if not session.wait(lambda s: s.phase == protocol.CLOSED, timeout):
            if not session.state.completed:
                session.close(claim_as_exception=True)
                raise StopTimeoutException('Waiting stop over {}s'.format(timeout))
            # Completed in time; the close handshake that follows is bounded by CLOSE_WAIT_S.
        session.settle()
        return session.state.outcome == 'completed'

    def _running_session(self):
        with self._lock:
            session = self._session
        if session is None or not session.state.accepts_audio:
            return None
        return session

    def shutdown(self):
        """Close the current connection at once (close 1000, bounded wait for the peer); idempotent,
        safe before start(); does not call on_error."""
        with self._lock:
            session = self._session
        if session is not None:
            session.close()
            session.settle()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        return False
