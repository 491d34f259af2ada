# -*- coding: utf-8 -*-
"""RasrClient: real-time speech recognition over websocket (short-stream, sentence-stream, continue-stream)
and the websocket one-sentence recognition (asr/short-audio)."""
import os
import ssl
import sys
import threading
import time

from websocket import WebSocketConnectionClosedException, WebSocketTimeoutException

from sis_rasr import _protocol as protocol
from sis_rasr._connection import Connection
from sis_rasr.auth import aksk_service, token_service
from sis_rasr.bean.asr_request import SasrWebsocketRequest
from sis_rasr.bean.callback import RasrCallBack
from sis_rasr.bean.rasr_request import RasrRequest
from sis_rasr.bean.sis_config import DEFAULT_WEBSOCKET_WAIT_TIME, SisConfig
from sis_rasr.bean.sis_enum import WebsocketStatus
from sis_rasr.exception.exceptions import ClientException
from sis_rasr.utils.logger_utils import logger

S = WebsocketStatus

# Token cache: key (user_name, domain_name, region, token_url) -> token / fetch time. Guarded by _token_lock.
user_dict = dict()
time_dict = dict()
_token_lock = threading.Lock()
_token_key_locks = {}
TOKEN_CACHE_SECONDS = 5 * 3600

connect_sleep_time = 0.01   # kept for compatibility; waits are event based
websocket_wait_time = 18    # bound of send_start/send_end waits (SisConfig.websocket_wait_time overrides it)
CONNECT_RETRY_COUNT = 3


class _ConnectionClosed(ClientException, WebSocketConnectionClosedException):
    """ The socket closed under send_*; also a WebSocketConnectionClosedException, as the vendor raised. """


class RasrClient:
    """ 实时语音识别client """

    def __init__(self, user_name=None, password=None, domain_name=None, region=None, project_id=None, callback=None,
                 config=None, service_endpoint=None, token_url=None, retry_sleep_time=1,
                 ak=None, sk=None, use_aksk=False):
        """
            实时语音识别client初始化。 推荐使用ak、sk认证方式 (AK/SK recommended).
        :param user_name:           用户名, token mode (use_aksk False)
        :param password:            密码, token mode
        :param domain_name:         账户名, token mode
        :param region:              区域, e.g. cn-north-4
        :param project_id:          项目ID
        :param callback:            RasrCallBack instance
        :param config:              SisConfig (None: a fresh default one)
        :param service_endpoint:    ws(s)://host[:port] without trailing '/'; default wss://sis-ext.<region>.myhuaweicloud.com
                                    (or $SIS_RASR_SERVICE_ENDPOINT)
        :param token_url:           IAM token URL (default from region, or $SIS_RASR_TOKEN_URL)
        :param retry_sleep_time:    pause between timed-out connect attempts, seconds
        :param ak:                  AK, when use_aksk is True
        :param sk:                  SK, when use_aksk is True
        :param use_aksk:            True: AK/SK signing; False: IAM token from user name / password / domain
        """
        if service_endpoint is None:
            service_endpoint = os.environ.get('SIS_RASR_SERVICE_ENDPOINT') or \
                'wss://sis-ext.' + region + '.myhuaweicloud.com'
        self._service_endpoint = service_endpoint
        if config is None:
            config = SisConfig()
        if not isinstance(callback, RasrCallBack):
            logger.error('The parameter callback must be RasrCallBack class')
            raise ClientException('The parameter callback must be RasrCallBack class')
        if not isinstance(config, SisConfig):
            logger.error('The parameter config must by SisConfig class')
            raise ClientException('The parameter config must by SisConfig class')
        self._region = region
        self._project_id = project_id
        self._config = config
        self._callback = callback
        self._request = None
        self._retry_sleep_time = retry_sleep_time
        self._use_aksk = use_aksk
        self._cond = threading.Condition(threading.Lock())
        self._status = S.STATE_INIT
        self._acked = S.STATE_INIT      # status whose callback has returned; what waiters wait on
        self._conn = None
        self._error_reported = False    # an on_error was delivered during the current session
        self._thread = None
        self._ak = self._sk = self._token = None
        if use_aksk:
            if ak is None or sk is None:
                logger.error('you choose aksk authentication, ak or sk is empty, please fill in it')
                raise ClientException('ak or sk is empty, please fill in it')
            self._ak = ak
            self._sk = sk
        else:
            if user_name is None or password is None or domain_name is None:
                logger.error('you choose token authentication, username or password or domain name is empty, '
                             'please fill in it')
                raise ClientException('username or password or domain name is empty, please fill in it')
            if token_url is None:
                token_url = os.environ.get('SIS_RASR_TOKEN_URL') or None
            self._token = self._get_token(user_name, password, domain_name, token_url)
        # Normally False: websocket-client sends Host itself and a second one makes APIG answer 401.
        self._show_host_header = False

    # -- connect -----------------------------------------------------------------------------------
    def short_stream_connect(self, request, headers=None):
        """
            流式一句话模式 (streaming one sentence)
        :param request: RasrRequest
        :param headers: optional extra handshake headers, e.g. {'Enterprise-Project-Id': '<id>'}
        """
        self._check_request(request)
        self._request = request
        self._connect(protocol.url(self._service_endpoint, self._project_id, protocol.PATH_SHORT), headers)

    def sentence_stream_connect(self, request, headers=None):
        """
            实时语音识别单句模式 (single sentence)
        :param request: RasrRequest
        :param headers: optional extra handshake headers
        """
        self._check_request(request)
        self._request = request
        self._connect(protocol.url(self._service_endpoint, self._project_id, protocol.PATH_SENTENCE), headers)

    def continue_stream_connect(self, request, headers=None):
        """
            实时语音识别连续模式 (continuous)
        :param request: RasrRequest
        :param headers: optional extra handshake headers
        """
        self._check_request(request)
        self._request = request
        self._connect(protocol.url(self._service_endpoint, self._project_id, protocol.PATH_CONTINUE), headers)

    def sasr_stream_connect(self, request, headers=None):
        """
            一句话识别websocket接口 (/asr/short-audio)
        :param request: SasrWebsocketRequest
        :param headers: optional extra handshake headers
        """
        self._check_sasr_request(request)
        self._request = request
        self._connect(protocol.url(self._service_endpoint, self._project_id, protocol.PATH_SASR), headers)

    def _connect(self, url, extra_headers=None):
        extra_headers = self._check_extra_headers(extra_headers)
        if self._use_aksk and not url.startswith('ws'):
            logger.error('%s is invalid' % url)
            raise ClientException('%s is invalid' % url)
        with self._cond:
            action = protocol.connect_action(self._status)
            status = self._status
        if action == 'ignore':
            logger.warning("status %s can't connect,it will not execute connect" % status)
            return
        if action == 'close_then_connect':
            self.close()
        if self._config.get_certificate_check():
            sslopt = None
        else:
            sslopt = {'cert_reqs': ssl.CERT_NONE, 'check_hostname': False}
        clt = self._config.get_connect_lost_timeout()
        connect_timeout = self._config.get_connect_timeout()
        header, host = self._get_headers(url, extra_headers)    # signing errors surface before any I/O
        self._set_status(S.STATE_CONNECT_WAITING)
        conn = None
        for attempt in range(CONNECT_RETRY_COUNT):
            if attempt:
                time.sleep(self._retry_sleep_time or 0)
                header, host = self._get_headers(url, extra_headers)   # a fresh X-Sdk-Date per attempt
            conn = Connection(url, header, self, sslopt=sslopt, connect_timeout=connect_timeout,
                              ping_interval=clt + 10 if clt else 0, ping_timeout=clt, host=host)
            conn.retry_on_timeout = attempt + 1 < CONNECT_RETRY_COUNT
            with self._cond:
                self._conn = conn
                self._thread = conn.thread
            conn.start()
            with self._cond:
                self._cond.wait_for(lambda: self._acked in protocol.CONNECT_WAIT_SET or conn.abandoned,
                                    connect_timeout)
                if self._status in protocol.CONNECT_WAIT_SET and not conn.abandoned:
                    break
            logger.warning('connect attempt %d timed out after %s s' % (attempt + 1, connect_timeout))
            if attempt + 1 < CONNECT_RETRY_COUNT:
                conn.abandon()
            else:
                conn.timed_out = WebSocketTimeoutException('websocket handshake timed out after %s s, url is %s'
                                                           % (connect_timeout, url))
                conn.close()
        with self._cond:
            connected = self._status == S.STATE_CONNECTED
        if not connected:
            # Report the final status only after the failed attempt's on_close has run.
            conn.done.wait(connect_timeout + 1)
            conn.thread.join(1)
            error_msg = protocol.connect_failed_message(url, self._status)
            logger.error(error_msg)
            raise ClientException(error_msg)

    # -- session -----------------------------------------------------------------------------------
    def send_start(self):
        """ 发送开始请求: sends the START configuration and waits for the server's START. """
        with self._cond:
            protocol.check_start(self._status)
        message = protocol.start_frame(self._request)
        with self._cond:
            protocol.check_start(self._status)
            self._error_reported = False
            self._set_status_locked(S.STATE_START_WAITING)
        self._send_text(message, "status %s can't send start")
        self._wait_status(protocol.START_WAIT_SET)

    def send_audio(self, data, byte_len=4000, sleep_time=0.06):
        """
            发送音频, in slices of byte_len bytes with sleep_time seconds after each slice.
        :param data:        bytes-like audio
        :param byte_len:    slice size, recommended [2000, 20000]
        :param sleep_time:  pause after each slice, seconds
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ClientException('data must be bytes-like, not %s' % type(data).__name__)
        if isinstance(byte_len, bool) or not isinstance(byte_len, int) or byte_len <= 0:
            raise ClientException('byte_len must be a positive integer, got %r' % (byte_len,))
        with self._cond:
            status = self._status
        try:
            if not protocol.check_binary(status):
                logger.warning("status %s can't send binary data" % status)
                return
        except ClientException as e:
            logger.error(e.get_error_msg())
            if status == S.STATE_CLOSE and self._conn is not None:
                raise _ConnectionClosed(e.get_error_msg())
            raise
        total = len(data)
        for index in range(0, total, byte_len):
            status = self._status
            if status != S.STATE_START:
                if status == S.STATE_CLOSE:
                    raise _ConnectionClosed("status %s can't send binary data" % status)
                # The session ended (END or server ERROR): the rest would be ignored by the server.
                logger.warning("status %s can't send binary data, %d of %d bytes not sent"
                               % (status, total - index, total))
                return
            try:
                self._conn.send_binary(data[index:index + byte_len])
            except (WebSocketConnectionClosedException, OSError) as e:
                raise _ConnectionClosed("status %s can't send binary data: %s" % (self._status, e))
            if sleep_time:
                time.sleep(sleep_time)

    def send_end(self, cancel=False):
        """ 发送结束请求: no more audio; waits for the server's END (all final results delivered by then).
        :param cancel: sis_rasr extra; True asks the server to drop pending audio (END reason CANCEL)
        """
        with self._cond:
            status = self._status
            if not protocol.check_end(status):
                logger.warning("status %s can't send end" % status)
                return
            self._set_status_locked(S.STATE_END_WAITING)
        self._send_text(protocol.end_frame(cancel), "status %s can't send end")
        self._wait_status(protocol.END_WAIT_SET)

    def close(self):
        """ 关闭连接: always call it when done; returns promptly, after on_close has run. """
        with self._cond:
            self._set_status_locked(S.STATE_CLOSE)
            conn = self._conn
        if conn is not None:
            conn.close()

    def _set_host_header(self, show_host_header):
        """ Never call this unless websocket-client stops sending Host itself (two Host headers fail with 401). """
        self._show_host_header = show_host_header

    # -- internals ---------------------------------------------------------------------------------
    def _send_text(self, message, error_format):
        conn = self._conn
        try:
            conn.send_text(message)
        except (WebSocketConnectionClosedException, OSError, AttributeError) as e:
            raise _ConnectionClosed((error_format % self._status) + ': %s' % e)

    def _wait_time(self):
        configured = self._config.get_websocket_wait_time()
        if configured is not None and configured != DEFAULT_WEBSOCKET_WAIT_TIME:
            return configured
        return websocket_wait_time

    def _set_status(self, status):
        with self._cond:
            self._set_status_locked(status)

    def _set_status_locked(self, status):
        self._status = status
        self._acked = status
        self._cond.notify_all()

    def _wait_status(self, statuses):
        conn = self._conn
        if conn is not None and threading.current_thread() is conn.thread:
            # Called from a callback: the reply can only be read after it returns, so don't wait for it.
            return
        wait_time = self._wait_time()
        with self._cond:
            if self._cond.wait_for(lambda: self._acked in statuses, wait_time) or self._status in statuses:
                return
            error_msg = protocol.wait_timeout_message(self._status, statuses, wait_time)
        logger.error(error_msg)
        # A reply that never came leaves the socket in an unknown state: close it before raising.
        self.close()
        raise ClientException(error_msg)

    @staticmethod
    def _check_request(request):
        if not isinstance(request, RasrRequest):
            error_msg = 'The parameter of request in RasrClient should be RasrRequest class'
            logger.error(error_msg)
            raise ClientException(error_msg)

    @staticmethod
    def _check_sasr_request(request):
        if not isinstance(request, SasrWebsocketRequest):
            error_msg = 'The parameter of request  should be SasrWebsocketRequest class'
            logger.error(error_msg)
            raise ClientException(error_msg)

    @staticmethod
    def _check_extra_headers(headers):
        if headers is None:
            return []
        if not isinstance(headers, dict):
            raise ClientException('The parameter headers must be dict, not %s' % type(headers).__name__)
        extra = []
        for key, value in headers.items():
            if str(key).lower() == 'host':
                logger.warning('ignoring the Host header passed in headers: it would be sent twice')
                continue
            extra.append((str(key), str(value)))
        return extra

    def _get_headers(self, url, extra_headers):
        """ (header list, host override) for one handshake; AK/SK headers are signed afresh each call. """
        host = None
        if self._use_aksk:
            signed = aksk_service.get_signed_headers(self._ak, self._sk, 'http' + url[2:], None, None, 'GET')
            host = signed.get('host')
            if not self._show_host_header:
                signed.pop('host', None)
            else:
                host = None
            headers = list(signed.items())
        else:
            headers = [('X-Auth-Token', self._token)]
        headers.extend(extra_headers)
        return ['%s: %s' % kv for kv in headers], host

    def _get_token(self, user_name, password, domain_name, token_url):
        if token_url is None:
            token_url = 'https://iam.' + self._region + '.myhuaweicloud.com/v3/auth/tokens'
        key = (user_name, domain_name, self._region, token_url)
        # One lock per key for fetch and store: concurrent clients of one user make one IAM request,
        # other users are not held up.
        with _token_lock:
            key_lock = _token_key_locks.setdefault(key, threading.Lock())
        with key_lock:
            now_time = time.time()
            if key in user_dict and now_time - time_dict.get(key, 0) < TOKEN_CACHE_SECONDS:
                logger.info('use token cache')
                return user_dict[key]
            token = token_service.get_token(user_name, password, domain_name, self._region,
                                            url=token_url, config=self._config)
            user_dict[key] = token
            time_dict[key] = now_time
            return token

    # -- connection handler (receive thread) -------------------------------------------------------
    def _current(self, conn):
        return conn is self._conn and not conn.abandoned

    def _finish_callback(self):
        with self._cond:
            self._acked = self._status
            self._cond.notify_all()

    def _deliver_error(self, error):
        """ on_error(error); an exception raised by on_error itself is logged and reported, never re-raised. """
        self._error_reported = True
        try:
            self._callback.on_error(error)
        except Exception:
            logger.exception('RasrCallBack.on_error raised')
            excepthook = getattr(threading, 'excepthook', None)
            if excepthook is not None:
                exc_type, exc_value, exc_tb = sys.exc_info()
                excepthook(threading.ExceptHookArgs((exc_type, exc_value, exc_tb, threading.current_thread())))

    def _user_callback_failed(self, exc):
        logger.error('callback raised %s: %s' % (type(exc).__name__, exc), exc_info=exc)
        with self._cond:
            self._status = S.STATE_ERROR
        self._deliver_error(exc)

    def on_open(self, conn):
        if not self._current(conn):
            return
        with self._cond:
            self._status = S.STATE_CONNECTED
        logger.info('websocket open')
        try:
            self._callback.on_open()
        except Exception as exc:
            self._user_callback_failed(exc)
        self._finish_callback()

    def on_text(self, conn, message):
        if not self._current(conn):
            return
        self._dispatch(protocol.parse(message))

    def on_binary(self, conn, data):
        if not self._current(conn):
            return
        self._dispatch(protocol.parse(bytes(data)))

    def _dispatch(self, event):
        new_status = protocol.status_after(event)
        if new_status is not None:
            with self._cond:
                self._status = new_status
        try:
            kind = event.kind
            if kind == protocol.START:
                self._callback.on_start(event.payload)
            elif kind == protocol.EVENT:
                if event.payload is None or event.payload == '':
                    logger.error('empty event is invalid')
                else:
                    self._callback.on_event(event.payload)
            elif kind == protocol.RESULT:
                self._callback.on_response(event.payload)
            elif kind == protocol.END:
                self._callback.on_end(event.payload)
            elif kind == protocol.ERROR:
                logger.error('receive error resp %s' % event.raw)
                self._deliver_error(event.payload)
            elif kind == protocol.UNKNOWN:
                logger.error('unknown resp_type in server message: %.200s' % event.raw)
                self._deliver_error(event.payload)
            else:
                logger.error('malformed server message: %s' % event.payload)
                self._deliver_error(event.payload)
        except Exception as exc:
            self._user_callback_failed(exc)
        self._finish_callback()

    def on_transport_error(self, conn, exc):
        if not self._current(conn):
            return
        logger.error('websocket error: %s: %s' % (type(exc).__name__, exc))
        with self._cond:
            self._status = S.STATE_ERROR
        self._deliver_error(exc)
        self._finish_callback()

    def on_server_close(self, conn, code, reason):
        if not self._current(conn):
            return
        with self._cond:
            status = self._status
        logger.info('server closed the connection, code %s' % code)
        # A close while recognition is in flight, or an abnormal code, must not pass silently.
        if not self._error_reported and (status in protocol.IN_SESSION or code not in (1000, 1001, None)):
            with self._cond:
                self._status = S.STATE_ERROR
            self._deliver_error(WebSocketConnectionClosedException(
                'Connection closed by the server (code %s%s) in status %s'
                % (code, ', reason %s' % reason if reason else '', status)))
            self._finish_callback()

    def on_closed(self, conn):
        if conn.abandoned:
            return
        with self._cond:
            if conn is not self._conn:
                return
            self._status = S.STATE_CLOSE
        logger.info('websocket close')
        try:
            self._callback.on_close()
        except Exception as exc:
            logger.exception('RasrCallBack.on_close raised')
            self._deliver_error(exc)
            with self._cond:
                self._status = S.STATE_CLOSE
        self._finish_callback()

    def on_connect_timeout(self, conn):
        with self._cond:
            self._cond.notify_all()

    def on_handler_error(self, conn, exc):
        if self._current(conn):
            self._user_callback_failed(exc)
