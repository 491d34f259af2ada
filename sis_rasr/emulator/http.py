# -*- coding: utf-8 -*-
"""The emulator's IAM token endpoint (POST /v3/auth/tokens) on its own small HTTP server: the websockets
server only parses GET upgrade requests."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _handler_class(emu):
    class IamHandler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.0'  # one request per connection: nothing lingers at stop()

        def log_message(self, fmt, *args):  # keep stderr quiet; requests are recorded instead
            pass

        def _reply(self, status, body, headers=None):
            data = json.dumps(body).encode('utf-8')
            self.send_response(status)
            self.send_header('Content-Type', 'application/json;charset=UTF-8')
            self.send_header('Content-Length', str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get('Content-Length') or 0)
            raw = self.rfile.read(length) if length else b''
            if self.path.partition('?')[0].rstrip('/') != '/v3/auth/tokens':
                self._reply(404, {'error': {'code': 404, 'message': 'Not Found', 'title': 'Not Found'}})
                return
            status, body, headers = emu._issue_token_for(raw)
            self._reply(status, body, headers)

        def do_GET(self):
            self._reply(404, {'error': {'code': 404, 'message': 'Not Found', 'title': 'Not Found'}})

    return IamHandler


class IamServer(object):
    def __init__(self, emu, host='127.0.0.1', port=0):
        self._server = ThreadingHTTPServer((host, port), _handler_class(emu))
        self._server.daemon_threads = True
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.05},
                                        name='sis-emulator-iam', daemon=True)

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
