"""The CreateToken endpoint (POP RPC, signature v1.0, §4.9/§5.10) on its own small stdlib HTTP server.

It runs apart from the websockets server because websockets only parses bodiless GET upgrades well.
One thread serves; each request gets a short-lived worker thread that ``stop()`` joins.
"""
import base64
import calendar
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ['percent_encode', 'string_to_sign', 'sign', 'TokenServer']

logger = logging.getLogger('nls_lite.emulator')

REQUIRED = (('Action', 'CreateToken'), ('Version', '2019-02-28'), ('Format', 'JSON'),
            ('SignatureMethod', 'HMAC-SHA1'), ('SignatureVersion', '1.0'))
TIMESTAMP_SKEW_S = 15 * 60


def percent_encode(value):
    """RFC 3986 encoding with the unreserved set A-Z a-z 0-9 - _ . ~ (POP's `pe`)."""
    return quote(str(value), safe='-_.~')


def string_to_sign(method, params):
    """POP v1.0 StringToSign over every parameter except Signature, empty ones included."""
    pairs = sorted((k, v) for k, v in params if k != 'Signature')
    canonical = '&'.join('%s=%s' % (percent_encode(k), percent_encode(v)) for k, v in pairs)
    return '%s&%s&%s' % (method.upper(), percent_encode('/'), percent_encode(canonical))


def sign(secret, text):
    digest = hmac.new((secret + '&').encode('utf-8'), text.encode('utf-8'), hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


def _parse_timestamp(value):
    try:
        return calendar.timegm(time.strptime(value, '%Y-%m-%dT%H:%M:%SZ'))
    except (TypeError, ValueError):
        return None


class _Handler(BaseHTTPRequestHandler):
    server_version = 'nls-lite-emulator'
    sys_version = ''
    timeout = 10  # a stuck client cannot hold its worker thread for ever

    def do_GET(self):
        self.server.owner.handle(self, 'GET')

    def do_POST(self):
        length = self.headers.get('Content-Length')
        try:
            n = int(length) if length else 0
        except ValueError:
            n = 0
        if 0 < n <= 1 << 20:
            self.rfile.read(n)  # the body is ignored; read it so the reply is not reset
        self.server.owner.handle(self, 'POST')

    def log_message(self, fmt, *args):
        # The default writes the request line (with the Signature) to stderr: say less, at DEBUG.
        logger.debug('CreateToken %s', self.command)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the workers
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        ThreadingHTTPServer.__init__(self, *args, **kwargs)
        self.live = set()
        self.live_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.live_lock:
            self.live.add(request)
        ThreadingHTTPServer.process_request(self, request, client_address)

    def shutdown_request(self, request):
        with self.live_lock:
            self.live.discard(request)
        ThreadingHTTPServer.shutdown_request(self, request)

    def cut_live(self):
        # A client that connected and sent nothing must not hold stop() for the handler timeout.
        with self.live_lock:
            live = list(self.live)
        for request in live:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server6(_Server):
    address_family = socket.AF_INET6


class TokenServer(object):
    """CreateToken over HTTP. ``emulator`` supplies access keys, issued-token storage and faults."""

    def __init__(self, emulator, host='127.0.0.1', port=0):
        self.emulator = emulator
        server_cls = _Server6 if ':' in host else _Server
        self._httpd = server_cls((host, port), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.host = host
        self._thread = None
        self._stopping = threading.Event()
        self._nonces = set()
        self._lock = threading.Lock()

    @property
    def url(self):
        host = '[%s]' % self.host if ':' in self.host else self.host
        return 'http://%s:%d/' % (host, self.port)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                        name='nls-emulator-http', daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self._httpd.cut_live()
        self._httpd.server_close()

    # -- request handling (worker threads) --

    def handle(self, req, method):
        emu = self.emulator
        split = urlsplit(req.path)
        params = parse_qsl(split.query, keep_blank_values=True)
        entry = {'method': method, 'path': split.path, 'params': dict(params),
                 'headers': list(req.headers.items()), 'status': None, 'code': None}
        emu._record_token_request(entry)
        fault = emu._take_token_fault()
        if fault is not None and fault[0] == 'token_delay_s':
            self._stopping.wait(float(fault[1].get('seconds', fault[1].get('value', 1.0))))
        status, body, ctype = self._answer(method, split.path, params, fault)
        entry['status'] = status
        try:
            entry['code'] = json.loads(body).get('Code')
        except (ValueError, AttributeError):
            pass
        data = body.encode('utf-8')
        try:
            req.send_response(status)
            req.send_header('Content-Type', ctype)
            req.send_header('Content-Length', str(len(data)))
            req.send_header('Connection', 'close')
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            pass  # the client went away

    def _error(self, status, code, message):
        body = {'RequestId': str(uuid.uuid4()).upper(), 'HostId': 'nls-meta.cn-shanghai.aliyuncs.com',
                'Code': code, 'Message': message}
        return status, json.dumps(body, separators=(',', ':')), 'application/json;charset=utf-8'

    def _answer(self, method, path, params, fault):
        emu = self.emulator
        name, fparams = fault if fault is not None else (None, {})
        if name == 'token_http_status':
            status = int(fparams.get('status', fparams.get('value', 500)))
            body = fparams.get('body')
            if body is None:
                return self._error(status, 'InternalError', 'The request processing has failed due to '
                                   'some unknown error.')
            return status, body, 'application/json;charset=utf-8'
        if name == 'token_body':
            return (int(fparams.get('status', 200)), str(fparams.get('body', fparams.get('value', ''))),
                    fparams.get('content_type', 'application/json;charset=utf-8'))
        if name == 'token_non_json':
            return 200, '<html><body>not json</body></html>', 'text/html'
        if path not in ('/', ''):
            return self._error(404, 'InvalidAction.NotFound', 'Specified api is not found, please check '
                               'your url and method.')
        values = dict(params)
        for key in ('AccessKeyId', 'Action', 'Version', 'Format', 'SignatureMethod', 'SignatureVersion',
                    'SignatureNonce', 'Timestamp', 'Signature'):
            if not values.get(key):
                return self._error(400, 'MissingParameter', 'The input parameter "%s" that is mandatory '
                                   'for processing this request is not supplied.' % key)
        for key, expected in REQUIRED:
            if values[key] != expected:
                if key == 'Action':
                    return self._error(404, 'InvalidAction.NotFound', 'Specified api is not found, please '
                                       'check your url and method.')
                return self._error(400, 'InvalidParameter', 'The specified parameter "%s" is not valid.'
                                   % key)
        secret = emu.access_keys.get(values['AccessKeyId'])
        if secret is None:
            return self._error(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.')
        stamp = _parse_timestamp(values['Timestamp'])
        if stamp is None or abs(stamp - time.time()) > TIMESTAMP_SKEW_S:
            return self._error(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is '
                               'expired.')
        sts = string_to_sign(method, params)
        if not hmac.compare_digest(sign(secret, sts).encode('utf-8'), values['Signature'].encode('utf-8')):
            return self._error(400, 'SignatureDoesNotMatch', 'Specified signature is not matched with our '
                               'calculation. server string to sign is:' + sts)
        with self._lock:
            if values['SignatureNonce'] in self._nonces:
                return self._error(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.')
            self._nonces.add(values['SignatureNonce'])
        token_id, expire = emu._issue_token()
        token = {'ExpireTime': expire, 'Id': token_id, 'UserId': '1234567890123456'}
        if name == 'token_missing_id':
            del token['Id']
        body = {'NlsRequestId': uuid.uuid4().hex, 'RequestId': str(uuid.uuid4()).upper(), 'Token': token}
        if name == 'token_missing_token':
            del body['Token']
        return 200, json.dumps(body, separators=(',', ':')), 'application/json;charset=utf-8'
