"""``Request``: the future-like handle of one request (reference 3.4)."""

import threading

from .errors import DDSTimeoutError, InvalidStateError

_PENDING, _DONE, _CANCELLED = "pending", "done", "cancelled"


class Request:
    """One request and the server messages correlated to it."""

    def __init__(self, client, record_id, topic, ai_type=None, session=None,
                 session_id_sent=None):
        self._client = client
        self._transport = None        # the connection it was sent on
        self.record_id = record_id
        self.topic = topic
        self.ai_type = ai_type
        self.session = session
        self.session_id_sent = session_id_sent
        self.messages = []
        self.partials = []
        self.asr = None
        self.nlu = None
        self.dialog = None
        self.ack = None
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._finalized = threading.Event()   # final ASR or error arrived (audio turns)
        self._state = _PENDING
        self._value = None
        self._exc = None
        self._callbacks = []

    def __repr__(self):
        return "<Request %s recordId=%s %s>" % (self.topic, self.record_id, self._state)

    # ------------------------------------------------------------ state

    def done(self):
        return self._state != _PENDING

    def cancelled(self):
        return self._state == _CANCELLED

    def _settle(self, state, value=None, exc=None):
        """Complete once; returns False when already done. Runs done-callbacks on this thread."""
        with self._lock:
            if self._state != _PENDING:
                return False
            self._state = state
            self._value = value
            self._exc = exc
            callbacks, self._callbacks = self._callbacks, []
        self._finalized.set()
        self._event.set()
        for fn in callbacks:
            self._run_callback(fn)
        return True

    def _run_callback(self, fn):
        try:
            fn(self)
        except Exception as exc:
            self._client._callback_failed(getattr(fn, "__name__", repr(fn)), exc)

    # ------------------------------------------------------------ waiting

    def _bound(self, timeout):
        if timeout is None:
            timeout = self._client.timeout
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return timeout

    def wait(self, timeout=None):
        """True when done within ``timeout`` (client default when None); never raises on timeout."""
        return self._event.wait(self._bound(timeout))

    def _wait_or_raise(self, timeout):
        timeout = self._bound(timeout)
        if not self._event.is_set():
            if self._client._in_ws_thread():
                raise InvalidStateError("Request.result() cannot block on the websocket thread; "
                                        "use add_done_callback()")
            if not self._event.wait(timeout):
                raise DDSTimeoutError("no result for %s recordId %s within %.1f s"
                                      % (self.topic, self.record_id, timeout))
        if self._state == _CANCELLED:
            raise InvalidStateError("request %s was cancelled" % self.record_id)

    def result(self, timeout=None):
        """The result value (3.5); raises the completion exception or DDSTimeoutError."""
        self._wait_or_raise(timeout)
        if self._exc is not None:
            raise self._exc
        return self._value

    def exception(self, timeout=None):
        self._wait_or_raise(timeout)
        return self._exc

    def add_done_callback(self, fn):
        with self._lock:
            if self._state == _PENDING:
                self._callbacks.append(fn)
                return
        self._run_callback(fn)

    def cancel(self):
        """Complete as cancelled; later messages with this recordId reach only on_message."""
        if self._state != _PENDING:
            return False
        self._client._forget(self, cancelled=True)
        return self._settle(_CANCELLED)
