"""Raw-protocol helpers for the emulator's own tests: websocket-client connections, commands, audio,
and CreateToken URLs signed independently of the emulator's code."""
import array
import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from urllib.parse import quote

import websocket

RATE = 16000
TOKEN = 'test-token'
APPKEY = 'test-appkey'
AKID, SECRET = 'my_access_key_id', 'my_access_key_secret'


def tone(ms, rate=RATE, amplitude=8000, freq=440):
    n = rate * ms // 1000
    step = 2 * math.pi * freq / rate
    return array.array('h', (int(amplitude * math.sin(step * i)) for i in range(n))).tobytes()


def silence(ms, rate=RATE):
    return b'\x00\x00' * (rate * ms // 1000)


def chunks(data, size=3200):
    return [data[i:i + size] for i in range(0, len(data), size)]


def command(namespace, name, task_id, appkey=APPKEY, payload=None, context=True):
    """A client command with the original SDK's key order (ensure_ascii default serialization)."""
    msg = {'header': {'message_id': uuid.uuid4().hex, 'task_id': task_id, 'namespace': namespace, 'name': name,
                      'appkey': appkey}}
    if payload is not None:
        msg['payload'] = payload
    if context:
        msg['context'] = {'sdk': {'name': 'nls-python-sdk', 'version': '1.1.0', 'language': 'python'}}
    return json.dumps(msg)


SERVICES = {
    'recognizer': ('SpeechRecognizer', 'StartRecognition', 'StopRecognition'),
    'transcriber': ('SpeechTranscriber', 'StartTranscription', 'StopTranscription'),
}


class RawClient(object):
    """One websocket-client connection speaking the raw protocol; every receive is bounded."""

    def __init__(self, url, token=TOKEN, service='recognizer', header=None, timeout=5):
        headers = list(header or [])
        if token is not None:
            headers.append('X-NLS-Token: %s' % token)
        self.ws = websocket.create_connection(url, header=headers, timeout=timeout)
        self.namespace, self.start_name, self.stop_name = SERVICES[service]
        self.task_id = uuid.uuid4().hex

    def start(self, appkey=APPKEY, **payload):
        base = {'format': 'pcm', 'sample_rate': 16000, 'enable_intermediate_result': False,
                'enable_punctuation_prediction': False, 'enable_inverse_text_normalization': False}
        base.update(payload)
        self.ws.send(command(self.namespace, self.start_name, self.task_id, appkey, base))

    def stop(self):
        self.ws.send(command(self.namespace, self.stop_name, self.task_id))

    def ctrl(self, **payload):
        self.ws.send(command('SpeechTranscriber', 'ControlTranscriber', self.task_id, payload=payload))

    def send_audio(self, data, size=3200):
        for part in chunks(data, size):
            self.ws.send_binary(part)

    def recv_raw(self):
        return self.ws.recv()

    def recv(self):
        return json.loads(self.ws.recv())

    def recv_until(self, name):
        """Messages up to and including the first one named `name` (or a TaskFailed)."""
        out = []
        while True:
            msg = self.recv()
            out.append(msg)
            if msg['header']['name'] in (name, 'TaskFailed'):
                return out

    def recv_close(self):
        """Read until the server's close frame; returns its close code."""
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], 'big') if len(data) >= 2 else None

    def close(self):
        try:
            self.ws.close(timeout=2)
        finally:
            self.ws.shutdown()  # close() skips the socket when a close frame was already read


def names(messages):
    return [m['header']['name'] for m in messages]


def signed_url(base, method='POST', akid=AKID, secret=SECRET, nonce=None, timestamp=None, drop=None, extra=()):
    """A request URL signed independently of the emulator's code (aliyunsdkcore style, SignatureType=)."""
    params = {'Version': '2019-02-28', 'Action': 'CreateToken', 'Format': 'JSON', 'RegionId': 'cn-shanghai',
              'Timestamp': timestamp or time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
              'SignatureMethod': 'HMAC-SHA1', 'SignatureType': '', 'SignatureVersion': '1.0',
              'SignatureNonce': nonce or uuid.uuid4().hex, 'AccessKeyId': akid}
    params.update(extra)
    if drop:
        params.pop(drop)

    def pe(s):
        return quote(s, safe='-_.~')
    canonical = '&'.join('%s=%s' % (pe(k), pe(v)) for k, v in sorted(params.items()))
    sts = '%s&%s&%s' % (method, pe('/'), pe(canonical))
    sig = base64.b64encode(hmac.new((secret + '&').encode(), sts.encode(), hashlib.sha1).digest()).decode()
    query = '&'.join('%s=%s' % (pe(k), pe(v)) for k, v in params.items())
    return '%s?%s&Signature=%s' % (base, query, pe(sig))
