"""The HTTP half of the emulator: transcription tasks, result files, hot-word customization."""
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import speech

log = logging.getLogger('dashscope_asr.emulator')

_PREFIX_RE = re.compile(r'\A[a-z0-9]{1,10}\Z')
TRANSCRIPTION_MODELS = ('paraformer-v2', 'paraformer-8k-v2', 'paraformer-v1', 'paraformer-8k-v1',
                        'paraformer-mtl-v1', 'sensevoice-v1')


def _stamp(t, ms=True):
    text = datetime.fromtimestamp(t).strftime('%Y-%m-%d %H:%M:%S')
    return text + ('.%03d' % int((t % 1) * 1000) if ms else '')


class HttpError(Exception):
    def __init__(self, status, code, message):
        Exception.__init__(self, status, code, message)
        self.status, self.code, self.message = status, code, message


class HttpRecord(object):
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def __repr__(self):
        return 'HttpRecord(%s %s)' % (self.method, self.path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args):
        ThreadingHTTPServer.__init__(self, *args)
        self.open_connections = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        ThreadingHTTPServer.process_request(self, request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.open_connections.discard(request)
        ThreadingHTTPServer.shutdown_request(self, request)

    def close_connections(self):
        """End keep-alive connections a client left open, so their threads finish now."""
        with self.connections_lock:
            pending = list(self.open_connections)
        for sock in pending:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpApi(object):
    """The task and customization endpoints, state kept in the Emulator."""

    def __init__(self, emu, host, port, ssl_context=None):
        self.emu = emu
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, fmt, *args):  # stderr noise off; keys never logged
                log.debug('http %s', fmt % args)

            def do_GET(self):
                api.handle(self, 'GET')

            def do_POST(self):
                api.handle(self, 'POST')

            def do_DELETE(self):
                api.handle(self, 'DELETE')

        self.server = _Server((host, port), Handler)
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05},
                                       name='dashscope_asr-emulator-http', daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.thread.join(5)

    # -- plumbing ----------------------------------------------------------------------------------
    def reply(self, handler, status, obj=None, text=None, content_type='application/json'):
        data = (json.dumps(obj, ensure_ascii=False) if text is None else text).encode('utf-8')
        handler.send_response(status)
        handler.send_header('Content-Type', content_type)
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def error(self, handler, status, code, message):
        self.reply(handler, status, {'request_id': str(uuid.uuid4()), 'code': code,
                                     'message': message})

    def handle(self, handler, method):
        length = int(handler.headers.get('Content-Length') or 0)
        body = handler.rfile.read(length) if length else b''
        parts = urlsplit(handler.path)
        path = parts.path
        headers = [(k, (speech_mask(v) if k.lower() == 'authorization' else v))
                   for k, v in handler.headers.items()]
        self.emu.http_records.append(HttpRecord(method, handler.path, headers,
                                                body.decode('utf-8', 'replace')))
        fault = self.emu._http_fault(path)
        if fault is not None:
            kind, args = fault['kind'], fault['args']
            if kind == 'drop':
                handler.close_connection = True
                try:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if kind == 'delay':
                time.sleep(float(args[0]) / 1000.0)
            elif kind == 'status':
                status = int(args[0])
                text = args[1] if len(args) > 1 else json.dumps(
                    {'request_id': str(uuid.uuid4()), 'code': 'Emulated',
                     'message': 'emulated HTTP error'})
                self.reply(handler, status, text=text)
                return
            elif kind == 'non_json':
                self.reply(handler, int(args[0]), text=args[1] if len(args) > 1 else 'error',
                           content_type='text/plain')
                return
        try:
            if path.startswith('/results/'):
                return self.result_file(handler, path[len('/results/'):])
            if path.startswith('/files/'):
                return self.local_file(handler, path[len('/files/'):])
            if not self.emu._key_ok(handler.headers.get('Authorization')):
                raise HttpError(401, 'InvalidApiKey', 'Invalid API-key provided.')
            route = path[len('/api/v1'):] if path.startswith('/api/v1') else None
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if method == 'POST' and route == '/services/audio/asr/transcription':
                return self.submit(handler, body)
            if method == 'POST' and route == '/services/audio/asr/customization':
                return self.customization(handler, body)
            if route and route.startswith('/tasks/') and route.endswith('/cancel') and method == 'POST':
                return self.cancel(handler, route[len('/tasks/'):-len('/cancel')])
            if route and route.startswith('/tasks/') and method == 'GET':
                return self.query(handler, route[len('/tasks/'):])
            if route == '/tasks' and method == 'GET':
                return self.list_tasks(handler, query)
            raise HttpError(404, 'NotFound', 'Not Found')
        except HttpError as exc:
            self.error(handler, exc.status, exc.code, exc.message)
        except Exception:
            log.exception('emulator HTTP handler failed')
            self.error(handler, 500, 'InternalError', 'emulator internal error')

    def _json(self, body):
        try:
            obj = json.loads(body.decode('utf-8'))
        except ValueError:
            raise HttpError(400, 'InvalidParameter', 'Invalid JSON body')
        if not isinstance(obj, dict):
            raise HttpError(400, 'InvalidParameter', 'Invalid JSON body')
        return obj

    # -- transcription -----------------------------------------------------------------------------
    def submit(self, handler, body):
        if (handler.headers.get('X-DashScope-Async') or '').lower() != 'enable':
            raise HttpError(403, 'AccessDenied', 'current user api does not support synchronous calls')
        req = self._json(body)
        model = req.get('model')
        if not isinstance(model, str) or not model:
            raise HttpError(400, 'InvalidParameter', 'Model is required.')
        if self.emu.knobs['strict_models'] and not (model in TRANSCRIPTION_MODELS
                                                    or model.startswith('fun-asr')):
            raise HttpError(400, 'InvalidParameter', 'Model not exist.')
        urls = (req.get('input') or {}).get('file_urls')
        if (not isinstance(urls, list) or not 1 <= len(urls) <= 100
                or not all(isinstance(u, str) for u in urls)):
            raise HttpError(400, 'InvalidParameter', 'input.file_urls must be a list of 1 to 100 URLs')
        task_id = str(uuid.uuid4())
        task = {'task_id': task_id, 'model': model, 'parameters': req.get('parameters') or {},
                'file_urls': urls, 'submitted': time.time(), 'status': None,
                'stuck': self.emu._http_stuck()}
        with self.emu._lock:
            self.emu.tasks[task_id] = task
        self.reply(handler, 200, {'request_id': str(uuid.uuid4()),
                                  'output': {'task_id': task_id, 'task_status': 'PENDING'}})

    def _status(self, task):
        with self.emu._lock:  # handler threads may query one task at once
            return self._status_locked(task)

    def _status_locked(self, task):
        if task['status'] in ('CANCELED',) or task.get('output') is not None:
            return task['status']
        if task['stuck']:
            return task['stuck']
        elapsed_ms = (time.time() - task['submitted']) * 1000
        knobs = self.emu.knobs
        if elapsed_ms < knobs['pending_ms']:
            return 'PENDING'
        if elapsed_ms < knobs['pending_ms'] + knobs['running_ms']:
            return 'RUNNING'
        self._complete(task)
        return task['status']

    def _complete(self, task):
        results, durations, failure = [], 0, None
        for index, url in enumerate(task['file_urls']):
            if url in self.emu._fail_urls:
                failure = failure or ('InvalidFile.DownloadFailed', 'The audio file cannot be downloaded.')
                results.append({'file_url': url, 'code': 'InvalidFile.DownloadFailed',
                                'message': 'The audio file cannot be downloaded.',
                                'subtask_status': 'FAILED'})
                continue
            name = '%s-%d.json' % (task['task_id'], index)
            content = self._transcript(url, task['parameters'])
            self.emu.result_files[name] = content
            durations += int(math.ceil(content['properties']['original_duration_in_milliseconds'] / 1000.0))
            results.append({'file_url': url, 'transcription_url': '%s/results/%s' % (
                self.emu.http_root, name), 'subtask_status': 'SUCCEEDED'})
        ok = sum(1 for r in results if r['subtask_status'] == 'SUCCEEDED')
        t = task['submitted']
        end = time.time()
        output = {'task_id': task['task_id'], 'task_status': 'SUCCEEDED' if ok else 'FAILED',
                  'submit_time': _stamp(t), 'scheduled_time': _stamp(t + 0.1),
                  'end_time': _stamp(end), 'results': results,
                  'task_metrics': {'TOTAL': len(results), 'SUCCEEDED': ok,
                                   'FAILED': len(results) - ok}}
        if not ok:
            output['code'], output['message'] = failure
        task['status'] = output['task_status']
        task['output'] = output
        task['usage'] = {'duration': durations} if ok else None

    def _local_audio(self, url):
        """Bytes of a /files/ URL of this emulator (never fetched over the network), else None."""
        prefix = self.emu.http_root + '/files/'
        if not url.startswith(prefix) or not self.emu.files_dir:
            return None
        root = os.path.realpath(self.emu.files_dir)
        path = os.path.realpath(os.path.join(root, url[len(prefix):]))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            return None
        with open(path, 'rb') as f:
            return f.read()

    def _transcript(self, url, parameters):
        audio = self._local_audio(url)
        if audio is not None:
            # A local WAV/PCM file: sentences where the VAD finds them (reference §5.11).
            script = self.emu._transcription_sentences(url, generated=True)
            pipeline = speech.Pipeline(script, speech.sniff_format(audio), 16000,
                                       speech.Settings(self.emu.knobs, '', parameters))
            results = pipeline.feed(audio) + pipeline.finish()
            timed = [p['output']['sentence'] for p in results
                     if p['output']['sentence']['end_time'] is not None]
            rate, duration = pipeline.sample_rate, int(pipeline.audio_ms)
        else:
            ms_per_token = self.emu.knobs['ms_per_token']
            timed, t = [], 0
            for text in self.emu._transcription_sentences(url):
                tokens = speech.tokenize(text)
                begin = t + 40
                t = begin + max(1, len(tokens)) * ms_per_token
                timed.append({'begin_time': begin, 'end_time': t, 'text': speech.tokens_text(tokens),
                              'words': speech.words(tokens, begin, t)})
            rate, duration = 16000, t + 100
        out = []
        speakers = parameters.get('speaker_count') or 2
        for i, sentence in enumerate(timed):
            s = {'begin_time': sentence['begin_time'], 'end_time': sentence['end_time'],
                 'text': sentence['text'], 'sentence_id': i + 1, 'words': sentence['words']}
            if parameters.get('diarization_enabled'):
                s['speaker_id'] = i % speakers
            out.append(s)
        content_ms = sum(s['end_time'] - s['begin_time'] for s in out)
        channels = parameters.get('channel_id') or [0]
        return {'file_url': url,
                'properties': {'audio_format': 'pcm_s16le', 'channels': [0],
                               'original_sampling_rate': rate,
                               'original_duration_in_milliseconds': duration},
                'transcripts': [{'channel_id': c, 'content_duration_in_milliseconds': content_ms,
                                 'text': ''.join(s['text'] for s in out), 'sentences': out}
                                for c in channels]}

    def query(self, handler, task_id):
        task = self.emu.tasks.get(task_id)
        if task is None:
            return self.reply(handler, 200, {'request_id': str(uuid.uuid4()),
                                             'output': {'task_id': task_id, 'task_status': 'UNKNOWN'}})
        fault = self.emu._http_503(task_id)
        if fault:
            raise HttpError(503, 'ServiceUnavailable', 'Service temporarily unavailable.')
        status = self._status(task)
        body = {'request_id': str(uuid.uuid4())}
        if task.get('output') is not None:
            body['output'] = task['output']
            if task.get('usage'):
                body['usage'] = task['usage']
        else:
            body['output'] = {'task_id': task_id, 'task_status': status,
                              'submit_time': _stamp(task['submitted'])}
        self.reply(handler, 200, body)

    def cancel(self, handler, task_id):
        task = self.emu.tasks.get(task_id)
        if task is None or self._status(task) != 'PENDING':
            raise HttpError(400, 'UnsupportedOperation', 'Failed to cancel the task, please confirm '
                            'if the task is in PENDING status.')
        task['status'] = 'CANCELED'
        task['output'] = {'task_id': task_id, 'task_status': 'CANCELED',
                          'submit_time': _stamp(task['submitted'])}
        self.reply(handler, 200, {'request_id': str(uuid.uuid4())})

    def list_tasks(self, handler, query):
        page_no = int(query.get('page_no', 1))
        page_size = int(query.get('page_size', 10))
        tasks = list(self.emu.tasks.values())
        summaries = []
        for task in tasks:
            status = self._status(task)
            if query.get('status') and status != query['status']:
                continue
            if query.get('model_name') and task['model'] != query['model_name']:
                continue
            summaries.append({'task_id': task['task_id'], 'task_status': status,
                              'model_name': task['model'], 'gmt_create': _stamp(task['submitted'])})
        total = len(summaries)
        page = summaries[(page_no - 1) * page_size: page_no * page_size]
        self.reply(handler, 200, {'request_id': str(uuid.uuid4()), 'data': page, 'total': total,
                                  'total_page': max(1, -(-total // page_size)), 'page_no': page_no,
                                  'page_size': page_size})

    def result_file(self, handler, name):
        content = self.emu.result_files.get(name)
        if content is None:
            raise HttpError(404, 'NotFound', 'result file not found')
        self.reply(handler, 200, content)

    def local_file(self, handler, name):
        root = self.emu.files_dir
        path = os.path.realpath(os.path.join(root or '', name))
        if not root or not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
            raise HttpError(404, 'NotFound', 'file not found')
        with open(path, 'rb') as f:
            data = f.read()
        handler.send_response(200)
        handler.send_header('Content-Type', 'application/octet-stream')
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # -- customization -----------------------------------------------------------------------------
    def customization(self, handler, body):
        req = self._json(body)
        if req.get('model') != 'speech-biasing':
            raise HttpError(400, 'InvalidParameter', "Model must be 'speech-biasing'.")
        inp = req.get('input') or {}
        action = inp.get('action')
        rid = str(uuid.uuid4())
        vocabs = self.emu.vocabularies
        if action == 'create_vocabulary':
            prefix = inp.get('prefix')
            if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
                raise HttpError(400, 'InvalidParameter', 'prefix must be 1-10 lower-case letters or digits')
            if not inp.get('target_model'):
                raise HttpError(400, 'InvalidParameter', 'target_model is required')
            entries = _check_vocabulary(inp.get('vocabulary'))
            vid = 'vocab-%s-%s' % (prefix, uuid.uuid4().hex)
            now = _stamp(time.time(), ms=False)
            vocabs[vid] = {'vocabulary': entries, 'target_model': inp['target_model'],
                           'gmt_create': now, 'gmt_modified': now, 'prefix': prefix,
                           'created': time.time()}
            return self.reply(handler, 200, {'request_id': rid, 'output': {'vocabulary_id': vid},
                                             'usage': {'count': 1}})
        if action == 'list_vocabulary':
            prefix = inp.get('prefix')
            page_index = int(inp.get('page_index') or 0)
            page_size = int(inp.get('page_size') or 10)
            items = [(vid, v) for vid, v in sorted(vocabs.items(), key=lambda kv: kv[1]['created'])
                     if not prefix or v['prefix'] == prefix]
            page = items[page_index * page_size:(page_index + 1) * page_size]
            return self.reply(handler, 200, {'request_id': rid, 'output': {'vocabulary_list': [
                {'vocabulary_id': vid, 'gmt_create': v['gmt_create'],
                 'gmt_modified': v['gmt_modified'], 'status': self._vstatus(v)} for vid, v in page]},
                'usage': {'count': 1}})
        vid = inp.get('vocabulary_id')
        if action in ('query_vocabulary', 'update_vocabulary', 'delete_vocabulary'):
            if vid not in vocabs:
                raise HttpError(404, 'ResourceNotFound', 'vocabulary not found')
            v = vocabs[vid]
            if action == 'query_vocabulary':
                return self.reply(handler, 200, {'request_id': rid, 'output': {
                    'vocabulary': v['vocabulary'], 'target_model': v['target_model'],
                    'gmt_create': v['gmt_create'], 'gmt_modified': v['gmt_modified'],
                    'status': self._vstatus(v)}, 'usage': {'count': 1}})
            if action == 'update_vocabulary':
                v['vocabulary'] = _check_vocabulary(inp.get('vocabulary'))
                v['gmt_modified'] = _stamp(time.time(), ms=False)
            else:
                del vocabs[vid]
            return self.reply(handler, 200, {'request_id': rid, 'output': {},
                                             'usage': {'count': 1}})
        raise HttpError(400, 'InvalidParameter', 'Unsupported action: %s' % action)

    def _vstatus(self, v):
        undeployed = self.emu.knobs['undeployed_ms'] / 1000.0
        return 'UNDEPLOYED' if time.time() - v['created'] < undeployed else 'OK'


def _check_vocabulary(entries):
    if not isinstance(entries, list) or not 1 <= len(entries) <= 500:
        raise HttpError(400, 'InvalidParameter', 'vocabulary must be a list of 1 to 500 entries')
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get('text'), str) or not e['text']:
            raise HttpError(400, 'InvalidParameter', 'vocabulary entries need a text')
        w = e.get('weight')
        if isinstance(w, bool) or not isinstance(w, int) or not (1 <= w <= 5 or w == 50
                                                                 or -6 <= w <= -1):
            raise HttpError(400, 'InvalidParameter', 'weight must be an integer in 1-5')
    return entries


def speech_mask(value):
    from .server import mask_authorization
    return mask_authorization(value)
