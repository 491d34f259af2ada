"""python -m dashscope_asr.emulator --port PORT [--api-key KEY ...] [--transcript TEXT]

Line 1 of stdout: the WebSocket URL; line 2: the HTTP API base URL; then ``export`` lines.
Logs go to stderr; serves until SIGINT/SIGTERM (exit 0).
"""
import argparse
import json
import logging
import signal
import sys
import threading

from . import DEFAULT_API_KEY, DEFAULT_KNOBS, Emulator
from .speech import split_sentences


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m dashscope_asr.emulator',
                                     description='Local DashScope Paraformer speech-service emulator.')
    parser.add_argument('--host', default='127.0.0.1', help='listen address (default 127.0.0.1)')
    parser.add_argument('--port', '--ws-port', dest='port', type=int, default=0,
                        help='WebSocket port (0: any free port; default 0)')
    parser.add_argument('--http-port', type=int, default=0, help='HTTP API port (default 0)')
    parser.add_argument('--api-key', action='append', default=None,
                        help='accepted API key, repeatable; "*" accepts any (default %s)'
                        % DEFAULT_API_KEY)
    parser.add_argument('--transcript', help='text returned for any audio (split into sentences '
                        'at 。！？.!?)')
    parser.add_argument('--script', help='JSON file {"default": [...], "files": {path: [...]}, '
                        '"urls": {url: [...]}}')
    parser.add_argument('--fault', action='append', default=[],
                        help='fault to inject, e.g. no_task_started or JSON {"fault": "close:1011", '
                        '"at": "after_results:2", "count": 1}')
    parser.add_argument('--files-dir', help='directory served under /files/')
    parser.add_argument('--knob', action='append', default=[], metavar='NAME=JSON',
                        help='emulator knob, e.g. task_idle_timeout_s=5 (see DEFAULT_KNOBS)')
    parser.add_argument('--cert', help='PEM certificate: serve wss:// and https://')
    parser.add_argument('--key', help='PEM private key for --cert')
    parser.add_argument('--log-level', default='INFO')
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    knobs = {}
    for item in args.knob:
        name, _, value = item.partition('=')
        if name not in DEFAULT_KNOBS:
            parser.error('unknown knob %s' % name)
        try:
            knobs[name] = json.loads(value)
        except ValueError:
            knobs[name] = value
    ssl_context = None
    if args.cert:
        import ssl
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(args.cert, args.key)
    emu = Emulator(host=args.host, ws_port=args.port, http_port=args.http_port,
                   ssl_context=ssl_context,
                   api_keys=tuple(args.api_key or (DEFAULT_API_KEY,)), files_dir=args.files_dir,
                   **knobs)
    if args.transcript:
        emu.default_sentences = split_sentences(args.transcript) or [args.transcript]
    if args.script:
        with open(args.script, encoding='utf-8') as f:
            script = json.load(f)
        emu.default_sentences = list(script.get('default') or emu.default_sentences)
        for path, sentences in (script.get('files') or {}).items():
            emu.script_file(path, sentences)
        for url, sentences in (script.get('urls') or {}).items():
            emu.transcription_script(url, sentences)
    for spec in args.fault:
        if spec.startswith('{'):
            obj = json.loads(spec)
            emu.inject(obj['fault'], count=obj.get('count', 1), at=obj.get('at'),
                       task_id=obj.get('task_id'))
        else:
            emu.inject(spec)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emu.start()
    try:
        print(emu.ws_url)
        print(emu.http_url)
        for name, value in sorted(emu.env().items()):
            if name.startswith('DASHSCOPE_'):
                print('export %s=%s' % (name, value))
        sys.stdout.flush()
        while not stop.wait(3600):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
