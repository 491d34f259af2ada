"""NlsCore: the original's low-level connection class, kept as a compatibility shim.

The recognizer and transcriber do not use it; some user code drives NlsCore directly.
"""
import logging
import threading

from websocket import ABNF

from ._connection import Connection, ConnectionClosed
from ._session import DEFAULT, report_callback_exception, resolve_url
from .exception import ConnectionTimeout, ConnectionUnavailable, InvalidParameter

__all__ = ['NlsCore']

_log = logging.getLogger('nls')
_OPEN_TIMEOUT_S = 10


class NlsCore(object):
    def __init__(self, url=DEFAULT, token=None, on_open=None, on_message=None, on_close=None,
                 on_error=None, on_data=None, asynch=False, callback_args=[]):
        if not token:
            raise InvalidParameter('Must provide a valid token!')
        if not (on_open or on_message or on_close or on_error):
            raise InvalidParameter('Must provide at least one callback')
        self._url = url
        self._token = token
        self._callbacks = {'on_open': on_open, 'on_message': on_message, 'on_close': on_close,
                           'on_error': on_error, 'on_data': on_data}
        self._asynch = asynch
        self._callback_args = callback_args
        self._lock = threading.Lock()
        self._connection = None

    def _fire(self, name, *args):
        callback = self._callbacks.get(name)
        if callback is not None:
            try:
                callback(*(args + tuple(self._callback_args)))
            except Exception:
                report_callback_exception(name)

    # Connection handler: runs on the connection's thread.
    def on_open(self):
        self._fire('on_open')

    def on_text(self, text):
        self._fire('on_message', text)

    def on_binary(self, data):
        self._fire('on_data', data, ABNF.OPCODE_BINARY, True)

    def on_closed(self, info):
        if info.handshake is not None:
            self._fire('on_error', ConnectionUnavailable('Handshake status %s: %r'
                                                         % (info.handshake[0], info.handshake[1][:200])))
        elif info.error is not None and not info.by_us:
            self._fire('on_error', ConnectionUnavailable('%s: %s' % (info.error[1], info.error[2])))
        with self._lock:
            self._connection = None
        self._fire('on_close')

    def start(self, msg, ping_interval, ping_timeout):
        with self._lock:
            connection = self._connection
            if connection is None:
                connection = self._connection = Connection(resolve_url(self._url), self._token, self,
                                                           name='nls-core')
                fresh = True
            else:
                fresh = False
        if not fresh:
            self.send(msg, False)
            return None
        connection.start(msg, _OPEN_TIMEOUT_S, ping_interval, ping_timeout)
        if self._asynch:
            return None
        if not connection.settled.wait(_OPEN_TIMEOUT_S):
            connection.close()
            raise ConnectionTimeout('Wait response timeout! Please check local network!')
        return None

    def send(self, msg, binary):
        with self._lock:
            connection = self._connection
        if connection is None:
            raise ConnectionUnavailable('Must call start before send!')
        try:
            if binary:
                connection.send_binary(msg)
            else:
                connection.send_text(msg)
        except ConnectionClosed:
            raise ConnectionUnavailable('Must call start before send!')

    def shutdown(self):
        with self._lock:
            connection = self._connection
        if connection is not None:
            connection.close()
