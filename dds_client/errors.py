"""Exception classes of dds_client (reference 3.10)."""

__all__ = [
    "DDSError", "ConnectError", "AuthError", "DDSTimeoutError", "ConnectionClosedError",
    "ServerError", "ProtocolError", "InvalidStateError", "CallbackError",
]


class DDSError(Exception):
    """Base class of every error this package raises or reports."""


class ConnectError(DDSError):
    """The connection could not be opened (refused, DNS, TLS, non-101 handshake status)."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


class AuthError(ConnectError):
    """The handshake was rejected with HTTP 401 or 403."""


class DDSTimeoutError(DDSError, TimeoutError):
    """A bounded wait ran out."""


class ConnectionClosedError(DDSError):
    """The connection closed (or was lost) before the result arrived."""

    def __init__(self, message, code=None, reason=None):
        super().__init__(message)
        self.code = code
        self.reason = reason


class ServerError(DDSError):
    """The service answered with an ``error`` object (``errId``/``errMsg``)."""

    def __init__(self, err_id, err_msg, record_id=None, session_id=None, raw=None):
        super().__init__("server error %s: %s" % (err_id, err_msg))
        self.err_id = err_id
        self.err_msg = err_msg
        self.record_id = record_id
        self.session_id = session_id
        self.raw = raw


class ProtocolError(DDSError):
    """A server frame that is not a JSON object."""

    def __init__(self, message, text=None):
        super().__init__(message)
        self.text = text


class InvalidStateError(DDSError):
    """A call that is not allowed in the current state."""


class CallbackError(DDSError):
    """A user callback raised; ``__cause__`` is the original exception."""

    def __init__(self, callback_name, exc):
        super().__init__("callback %s raised %s: %s" % (callback_name, type(exc).__name__, exc))
        self.callback_name = callback_name
        self.__cause__ = exc
