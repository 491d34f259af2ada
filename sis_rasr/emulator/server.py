# -*- coding: utf-8 -*-
"""The emulator's websocket side: handshake checks in ``process_request`` (route, Host, AK/SK signature or
X-Auth-Token, project), then one state machine per connection (IDLE / STARTED) driving a Recognizer."""
import asyncio
import hmac
import http
import json
import re
import time
import uuid
from datetime import datetime, timezone

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from sis_rasr.auth import signer
from sis_rasr.emulator import speech

ROUTE_RE = re.compile(r'^/v1/([^/]+)/(rasr/short-stream|rasr/sentence-stream|rasr/continue-stream|asr/short-audio)$')
MODES = {'rasr/short-stream': speech.MODE_SHORT, 'rasr/sentence-stream': speech.MODE_SENTENCE,
         'rasr/continue-stream': speech.MODE_CONTINUE, 'asr/short-audio': speech.MODE_SASR}
IAM_PREFIX = 'Incorrect IAM authentication information: '
YES_NO_KEYS = ('add_punc', 'digit_norm', 'interim_results', 'need_word_info', 'need_smooth')
KNOWN_KEYS = frozenset(('audio_format', 'property', 'add_punc', 'digit_norm', 'vad_head', 'vad_tail', 'max_seconds',
                        'interim_results', 'vad_threshold', 'need_word_info', 'user_words', 'vocabulary_id',
                        'need_smooth'))
PROPERTY_RE = re.compile(r'^[a-z]+_(8k|16k)_[a-z0-9_]+$')
CHUNK_LIMITS = {8000: (160, 32768), 16000: (320, 65536)}


def dumps(message):
    return json.dumps(message, ensure_ascii=False, separators=(',', ':'))


def request_id():
    return uuid.uuid4().hex


def apig_body(code, msg):
    return dumps({'error_msg': msg, 'error_code': code, 'request_id': request_id()})


def json_response(status, body, reason=None, extra_headers=None):
    if reason is None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = 'Error'
    data = body.encode('utf-8') if isinstance(body, str) else body
    headers = Headers([('Content-Type', 'application/json'), ('Content-Length', str(len(data))),
                       ('Connection', 'close')])
    for k, v in (extra_headers or {}).items():
        headers[k] = v
    return Response(status, reason, headers, data)


def _int_value(value):
    """ Ints and numeric strings are accepted, bools and anything else are not. """
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r'^-?\d+$', value.strip()):
        return int(value)
    raise ValueError


def validate_start(message, mode, emu):
    """ -> (config dict with defaults, None) or (None, (code, msg)). """
    config = message.get('config')
    if not isinstance(config, dict):
        return None, ('SIS.0012', "'config' is required")
    if 'audio_format' not in config:
        return None, ('SIS.0012', "'audio_format' is required")
    audio_format = config['audio_format']
    if audio_format not in speech.AUDIO_FORMATS:
        return None, ('SIS.0032', "'audio_format' is invalid")
    if 'property' not in config:
        return None, ('SIS.0012', "'property' is required")
    prop = config['property']
    m = PROPERTY_RE.match(prop) if isinstance(prop, str) else None
    if m is None or (emu.allowed_properties is not None and prop not in emu.allowed_properties):
        return None, ('SIS.0032', "'property' is invalid")
    if int(m.group(1)[:-1]) * 1000 != speech.AUDIO_FORMATS[audio_format][0]:
        return None, ('SIS.0301', "'audio_format' is not match model")
    for key in YES_NO_KEYS:
        if key in config and config[key] not in ('yes', 'no'):
            return None, ('SIS.0032', "'%s' is invalid" % key)
    out = {'audio_format': audio_format, 'property': prop, 'add_punc': 'no', 'digit_norm': 'yes',
           'vad_head': 10000, 'vad_tail': 500, 'max_seconds': 30, 'interim_results': 'no', 'need_word_info': 'no'}
    for key, low, high in (('vad_head', 0, 60000), ('vad_tail', 0, 3000), ('max_seconds', 0, 60)):
        if key in config:
            try:
                value = _int_value(config[key])
            except ValueError:
                return None, ('SIS.0032', "'%s' is invalid" % key)
            if not low <= value <= high:
                return None, ('SIS.0032', "'%s' is invalid" % key)
            out[key] = value
    if 'vad_threshold' in config:
        value = config['vad_threshold']
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                float(value)
            except (TypeError, ValueError):
                return None, ('SIS.0032', "'vad_threshold' is invalid")
    if 'user_words' in config:
        words = config['user_words']
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            return None, ('SIS.0032', "'user_words' is invalid")
    if 'vocabulary_id' in config and config['vocabulary_id'] not in emu.vocabularies:
        return None, ('SIS.0201', 'vocabulary is not found')
    if emu.reject_unknown_config_keys:
        for key in config:
            if key not in KNOWN_KEYS:
                return None, ('SIS.0032', "'%s' is invalid" % key)
    for key in ('add_punc', 'digit_norm', 'interim_results', 'need_word_info', 'need_smooth'):
        if key in config:
            out[key] = config[key]
    return out, None


class Session(object):
    def __init__(self, trace_id, mode, config, recognizer, record):
        self.trace_id = trace_id
        self.mode = mode
        self.config = config
        self.recognizer = recognizer
        self.record = record
        self.results = 0


class AudioMatcher(object):
    """ Narrows registered audio by byte-exact prefix as audio arrives, and picks its script. """

    def __init__(self, registered, recognizer):
        self.candidates = [[data, sentences] for data, sentences in registered]
        self.received = 0
        self.recognizer = recognizer

    def update(self, data):
        pos = self.received
        self.received += len(data)
        self.candidates = [c for c in self.candidates if c[0][pos:pos + len(data)] == data]
        scripts = {id(c[1]) for c in self.candidates}
        if len(scripts) == 1 and self.candidates:
            self.recognizer.sentences = self.candidates[0][1]

    def settle(self):
        exact = [c for c in self.candidates if len(c[0]) == self.received]
        if exact:
            self.recognizer.sentences = exact[0][1]


class ConnectionHandler(object):
    """ One websocket connection of the emulator. """

    def __init__(self, emu, ws, record, faults):
        self.emu = emu
        self.ws = ws
        self.record = record
        self.faults = faults
        self.session = None
        self.audio_total = 0
        self.idle_timeout = record.options.get('idle_timeout_s', emu.idle_timeout_s)
        self.omit_trace_id = record.options.get('omit_trace_id', emu.omit_trace_id)

    # -- sending ------------------------------------------------------------------------------------
    async def send(self, message, audio_ms=None):
        if self.omit_trace_id and message.get('resp_type') in ('ERROR', 'FATAL_ERROR'):
            message = dict((k, v) for k, v in message.items() if k != 'trace_id')
        text = dumps(message)
        # Record first: a test may look at the record as soon as the client has the message.
        self.record.add_sent(text, audio_ms)
        await self.ws.send(text)

    async def close(self, code=1000, reason=''):
        self.record.server_close_code = code
        await self.ws.close(code, reason)

    async def send_error(self, code, msg, fatal=False, end=None, trace_id=None):
        trace_id = trace_id or (self.session.trace_id if self.session else str(uuid.uuid4()))
        await self.send({'resp_type': 'FATAL_ERROR' if fatal else 'ERROR', 'trace_id': trace_id,
                         'error_code': code, 'error_msg': msg})
        if fatal:
            await self.close(1000)
            return
        if end is None:
            end = self.session is not None
        if end and self.session is not None:
            await self.end_session('ERROR')

    async def end_session(self, reason):
        session = self.session
        self.session = None
        session.record['end_reason'] = reason
        self.emu._session_ended()
        await self.send({'resp_type': 'END', 'trace_id': session.trace_id, 'reason': reason})

    # -- faults -------------------------------------------------------------------------------------
    def take_faults(self, trigger, value=None):
        fired = []
        for fault in self.faults:
            if fault.fired:
                continue
            if fault.trigger == trigger and (value is None or fault.threshold is None or value >= fault.threshold):
                fault.fired = True
                fired.append(fault)
        return fired

    async def run_faults(self, faults):
        """ Runs fault actions; True when one replaced the normal reply. """
        replaced = False
        for fault in faults:
            self.record.faults_fired.append(fault.action)
            action, p = fault.action, fault.params
            if action == 'delay':
                await asyncio.sleep(p.get('ms', 1000) / 1000.0)
                continue
            replaced = True
            if action == 'never_answer':
                continue
            if action == 'close':
                await self.close(p.get('code', 1000), p.get('reason', ''))
            elif action == 'abort':
                self.ws.transport.abort()
            elif action == 'freeze':
                self.ws.transport.pause_reading()
                await self.emu._stopping_event().wait()
                self.ws.transport.abort()   # a frozen peer would hold stop() for close_timeout
            elif action == 'send_error':
                await self.send_error(p.get('code', 'SIS.0002'), p.get('msg', 'injected error'),
                                      fatal=p.get('fatal', False), end=p.get('end', True))
            elif action == 'send_malformed':
                kind = p.get('kind', 'text')
                if kind == 'binary':
                    await self.ws.send(b'\x00\x01')
                elif kind == 'no_trace_id':
                    await self.ws.send(dumps({'resp_type': 'ERROR', 'error_code': 'SIS.0002',
                                              'error_msg': 'injected error without trace_id'}))
                elif kind == 'unknown_type':
                    await self.ws.send(dumps({'resp_type': 'SURPRISE', 'trace_id': str(uuid.uuid4())}))
                else:
                    await self.ws.send('this is not json {')
            elif action == 'send_raw':
                await self.ws.send(p.get('data', ''))
            else:
                replaced = False
        return replaced

    # -- protocol -----------------------------------------------------------------------------------
    async def run(self):
        loop = asyncio.get_running_loop()
        opened = loop.time()
        after = [f for f in self.faults if f.trigger == 'after_ms']
        timers = [loop.create_task(self._after(f)) for f in after]
        try:
            while True:
                lifetime_left = self.emu.max_connection_s - (loop.time() - opened)
                if lifetime_left <= 0:
                    await self.close(1000)
                    break
                timeout = min(self.idle_timeout, lifetime_left)
                try:
                    message = await asyncio.wait_for(self.ws.recv(), timeout)
                except asyncio.TimeoutError:
                    if loop.time() - opened >= self.emu.max_connection_s:
                        await self.close(1000)
                    else:
                        await self.send_error('SIS.0304', 'wait voice timeout', fatal=True)
                    break
                if isinstance(message, bytes):
                    self.record.add_received_binary(len(message))
                    await self.on_audio(message)
                else:
                    self.record.add_received_text(message)
                    await self.on_text(message)
        except ConnectionClosed:
            pass
        finally:
            for t in timers:
                t.cancel()

    async def _after(self, fault):
        await asyncio.sleep(fault.threshold / 1000.0)
        fault.fired = True
        await self.run_faults([fault])

    async def on_text(self, text):
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.send_error('SIS.0032', 'request json is invalid')
            return
        command = message.get('command')
        if command == 'START':
            if await self.run_faults(self.take_faults('start')):
                return
            if self.session is not None:
                await self.send_error('SIS.0002', 'START command received twice')
                return
            await self.start_session(message)
        elif command == 'END':
            if await self.run_faults(self.take_faults('end')):
                return
            if self.session is None:
                await self.send_error('SIS.0002', 'no recognition session is started', end=False)
                return
            cancel = message.get('cancel', False)
            await self.finish_session(cancel is True or cancel == 'true')
        else:
            await self.send_error('SIS.0031', "'command' is invalid")

    async def start_session(self, message):
        mode = self.record.mode
        config, error = validate_start(message, mode, self.emu)
        if error is not None:
            await self.send_error(error[0], error[1], end=False)
            return
        if self.emu.max_sessions is not None and self.emu._active_sessions >= self.emu.max_sessions:
            await self.send_error('SIS.0312', 'exceed max concurrency', end=False)
            return
        trace_id = str(uuid.uuid4())
        sentences, registered = self.emu._script_for(self.record.path_kind)
        lang = 'chinese' if config['property'].startswith('chinese') else 'other'
        too_long = self.emu.too_long.get(mode, 'event' if mode == speech.MODE_SASR else 'error')
        recognizer = speech.Recognizer(mode, config, sentences, placeholder_lang=lang,
                                       vad_threshold_dbfs=self.emu.vad_energy_threshold_dbfs,
                                       vad_min_speech_ms=self.emu.vad_min_speech_ms,
                                       interim_interval_ms=self.emu.interim_interval_ms,
                                       ms_per_char=self.emu.ms_per_char, default_score=self.emu.default_score,
                                       too_long=too_long)
        matcher = None
        if registered:
            matcher = AudioMatcher(registered, recognizer)
            recognizer.on_audio = matcher.update
        record = {'trace_id': trace_id, 'mode': mode, 'config': message.get('config'), 'end_reason': None}
        self.session = Session(trace_id, mode, config, recognizer, record)
        self.session.matcher = matcher
        self.emu._session_started(self.record, record)
        await self.send({'resp_type': 'START', 'trace_id': trace_id})

    async def finish_session(self, cancel):
        session = self.session
        if cancel:
            await self.end_session('CANCEL')
            return
        if session.matcher is not None:
            session.matcher.settle()
        for out in session.recognizer.finish():
            await self.emit(out)
        if self.session is session:
            await self.end_session('NORMAL')

    async def on_audio(self, data):
        session = self.session
        if session is None:
            return  # audio is ignored until the next START
        self.audio_total += len(data)
        rate = speech.AUDIO_FORMATS[session.config['audio_format']][0]
        low, high = CHUNK_LIMITS[rate]
        if (self.emu.enforce_chunk_max and len(data) > high) or (self.emu.enforce_chunk_min and len(data) < low):
            await self.send_error('SIS.0031', 'audio data size is invalid')
            return
        for out in session.recognizer.feed(data):
            await self.emit(out)
            if self.session is not session:
                return
        faults = self.take_faults('audio_bytes', self.audio_total)
        if faults:
            await self.run_faults(faults)

    async def emit(self, out):
        session = self.session
        kind = out[0]
        audio_ms = session.recognizer.audio_ms
        if kind == 'ERROR':
            await self.send_error(out[1], out[2])
            return
        if self.emu.result_delay_ms:
            await asyncio.sleep(self.emu.result_delay_ms / 1000.0)
        if kind == 'EVENT':
            await self.send({'resp_type': 'EVENT', 'trace_id': session.trace_id, 'event': out[1],
                             'timestamp': out[2]}, audio_ms)
        elif kind == 'RESULT':
            faults = self.take_faults('results', session.results + 1)
            if faults and await self.run_faults(faults):
                return
            session.results += 1
            await self.send({'resp_type': 'RESULT', 'trace_id': session.trace_id, 'segments': out[1]}, audio_ms)


# -- handshake -----------------------------------------------------------------------------------------
_ZERO_LENGTH_RE = re.compile(br'(?i)^content-length:[ \t]*0[ \t]*$')


def connection_class():
    """ A ServerConnection that keeps the raw handshake header lines (order and duplicates) for the record
    and drops ``Content-Length: 0``, which the vendor SDK sends and websockets < 14 rejects. """
    from websockets.asyncio.server import ServerConnection

    class SisServerConnection(ServerConnection):
        sis_head_done = False
        sis_head_buf = b''
        sis_raw_headers = None

        def data_received(self, data):
            if self.sis_head_done:
                return super(SisServerConnection, self).data_received(data)
            buf = self.sis_head_buf + data
            end = buf.find(b'\r\n\r\n')
            if end < 0 and len(buf) < 65536:
                self.sis_head_buf = buf
                return None
            self.sis_head_done = True
            self.sis_head_buf = b''
            if end >= 0:
                lines = buf[:end].split(b'\r\n')
                self.sis_raw_headers = []
                for line in lines[1:]:
                    name, _, value = line.decode('latin-1').partition(':')
                    self.sis_raw_headers.append((name.strip(), value.strip()))
                kept = [lines[0]] + [line for line in lines[1:] if not _ZERO_LENGTH_RE.match(line)]
                buf = b'\r\n'.join(kept) + buf[end:]
            return super(SisServerConnection, self).data_received(buf)

    return SisServerConnection


def parse_authorization(value):
    """ 'SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...' -> dict or None. """
    if not value.startswith(signer.Algorithm + ' '):
        return None
    parts = {}
    for item in value[len(signer.Algorithm) + 1:].split(','):
        key, sep, val = item.strip().partition('=')
        if sep:
            parts[key] = val
    if not all(k in parts for k in ('Access', 'SignedHeaders', 'Signature')):
        return None
    return parts


def verify_aksk(request_path, headers, secret, auth):
    """ Recompute the signature from the received request (method GET, empty body). """
    signed = auth['SignedHeaders'].split(';')
    sign_headers = {}
    for name in signed:
        values = headers.get_all(name)
        if not values:
            return False
        sign_headers[name] = values[0]
    path, _, query = request_path.partition('?')
    r = signer.HttpRequest('GET', 'http://host' + path + ('?' + query if query else ''), None, '')
    r.headers = sign_headers
    canonical = signer.CanonicalRequest(r, sorted(signed))
    t = datetime.strptime(headers['X-Sdk-Date'], signer.BasicDateFormat)
    expected = signer.SignStringToSign(signer.StringToSign(canonical, t), secret)
    return hmac.compare_digest(expected, auth['Signature'])


def check_handshake(emu, path, headers):
    """ -> (status, error_msg, code, mode info) ; status None when accepted. """
    route = path.partition('?')[0]
    m = ROUTE_RE.match(route)
    if m is None:
        return 404, 'The API does not exist or has not been published in the environment', 'APIG.0101', None
    project_id, kind = m.group(1), m.group(2)
    if len(headers.get_all('Host')) > 1:
        return 401, IAM_PREFIX + 'verify aksk signature fail', 'APIG.0301', None
    if emu.auth != 'off':
        token = headers.get('X-Auth-Token')
        authorization = headers.get('Authorization')
        if token is not None:
            info = emu._token_info(token)
            if info is None and emu.auth == 'strict':
                return 401, IAM_PREFIX + 'decrypt token fail', 'APIG.0301', None
            if info is not None and info['expires'] < time.time():
                return 401, IAM_PREFIX + 'token expires, expires_at: %s' % info['expires_at'], 'APIG.0301', None
            if info is not None and emu.project_id is not None and project_id != emu.project_id:
                return 401, IAM_PREFIX + "project_id doesn't match the token", 'APIG.0301', None
        elif authorization is not None and authorization.startswith(signer.Algorithm + ' '):
            auth = parse_authorization(authorization)
            if auth is None:
                return 401, IAM_PREFIX + 'verify aksk signature fail', 'APIG.0301', None
            if emu.auth == 'strict':
                secret = emu.credentials.get(auth['Access'])
                if secret is None:
                    return (401, IAM_PREFIX + 'Get secretKey failed,ak:%s,err:ak not exist' % auth['Access'],
                            'APIG.0301', None)
                locked_until = emu._aksk_locked.get(auth['Access'], 0)
                if emu.aksk_lockout and locked_until > time.time():
                    return (401, IAM_PREFIX + 'AK access failed to reach the limit,forbidden.', 'APIG.0301', None)
                date = headers.get('X-Sdk-Date')
                try:
                    signed_at = datetime.strptime(date or '', signer.BasicDateFormat).replace(tzinfo=timezone.utc)
                except ValueError:
                    signed_at = None
                if signed_at is None or abs(time.time() - signed_at.timestamp()) > emu.max_clock_skew_s:
                    return 401, IAM_PREFIX + 'calc ak sk signature fail: signature expired', 'APIG.0301', None
                if not verify_aksk(path, headers, secret, auth):
                    emu._aksk_failed(auth['Access'])
                    return 401, IAM_PREFIX + 'verify aksk signature fail', 'APIG.0301', None
                emu._aksk_failures.pop(auth['Access'], None)
            if emu.project_id is not None and project_id != emu.project_id:
                return 401, IAM_PREFIX + "project_id doesn't match the token", 'APIG.0301', None
        else:
            return 401, IAM_PREFIX + 'x-auth-token not found', 'APIG.0301', None
    return None, None, None, (project_id, kind)
