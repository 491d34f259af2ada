"""python -m nls_lite.emulator --port PORT: serve the emulated NLS gateway until SIGINT/SIGTERM.

Line 1 of stdout: the WebSocket URL; line 2: the CreateToken base URL. Logs go to stderr.
"""
import argparse
import logging
import signal
import sys
import threading

DEFAULT_TOKEN = 'test-token'
DEFAULT_APPKEY = 'test-appkey'
DEFAULT_AKID = 'my_access_key_id'
DEFAULT_AKSECRET = 'my_access_key_secret'


def build_parser():
    p = argparse.ArgumentParser(prog='python -m nls_lite.emulator',
                                description='Local emulator of the Alibaba Cloud NLS gateway (SpeechRecognizer, '
                                            'SpeechTranscriber, CreateToken).')
    p.add_argument('--host', default='127.0.0.1', help='address to bind (default 127.0.0.1)')
    p.add_argument('--port', type=int, default=0, help='WebSocket port; 0 picks a free one (default 0)')
    p.add_argument('--http-port', type=int, default=0, help='CreateToken HTTP port; 0 picks a free one')
    p.add_argument('--token', action='append', metavar='TOKEN',
                   help='accepted token, repeatable (default: %s)' % DEFAULT_TOKEN)
    p.add_argument('--any-token', action='store_true', help='accept any non-empty token')
    p.add_argument('--appkey', action='append', metavar='APPKEY',
                   help='accepted appkey, repeatable (default: %s)' % DEFAULT_APPKEY)
    p.add_argument('--any-appkey', action='store_true', help='accept any non-empty appkey')
    p.add_argument('--akid', action='append', metavar='AKID',
                   help='AccessKey id for CreateToken, repeatable, paired in order with --aksecret '
                        '(default: %s)' % DEFAULT_AKID)
    p.add_argument('--aksecret', action='append', metavar='AKSECRET',
                   help='AccessKey secret for CreateToken (default: %s)' % DEFAULT_AKSECRET)
    p.add_argument('--transcript', action='append', metavar='TEXT',
                   help='scripted transcript returned for any audio; repeat for one sentence per flag '
                        '(default: 北京的天气。)')
    p.add_argument('--idle-timeout', type=float, default=10.0, metavar='SECONDS',
                   help='idle timeout of a connection (default 10, as the real gateway)')
    p.add_argument('--token-ttl', type=int, default=86400, metavar='SECONDS',
                   help='lifetime of tokens issued by CreateToken (default 86400)')
    p.add_argument('--certfile', help='serve wss:// with this certificate (PEM)')
    p.add_argument('--keyfile', help='private key for --certfile')
    p.add_argument('--log-level', default='INFO', help='stderr log level (default INFO)')
    p.add_argument('--demo', action='store_true',
                   help='run one recognizer and one transcriber session against this emulator with generated '
                        'audio (raw protocol), print what the server answers, and exit')
    return p


def _demo_audio(rate=16000):
    """Two tone bursts separated by more than the default 800 ms sentence silence."""
    import array
    import math
    samples = array.array('h')
    for seconds, on in ((0.3, False), (1.2, True), (1.0, False), (0.8, True), (1.0, False)):
        n = int(rate * seconds)
        step = 2 * math.pi * 440 / rate
        samples.extend((int(8000 * math.sin(step * i)) for i in range(n)) if on else [0] * n)
    return samples.tobytes()


def demo(emu, token, appkey, out=sys.stdout):
    """Drive the emulator the way a raw-protocol client does: ?token=, 3200-byte chunks, no context."""
    import json
    import uuid
    import websocket
    audio = _demo_audio()
    for namespace, start, stop, done in (
            ('SpeechRecognizer', 'StartRecognition', 'StopRecognition', 'RecognitionCompleted'),
            ('SpeechTranscriber', 'StartTranscription', 'StopTranscription', 'TranscriptionCompleted')):
        ws = websocket.create_connection(emu.url + '?token=' + token, timeout=10)
        try:
            task_id = uuid.uuid4().hex

            def command(name, payload=None):
                msg = {'header': {'message_id': uuid.uuid4().hex, 'task_id': task_id, 'namespace': namespace,
                                  'name': name, 'appkey': appkey}}
                if payload is not None:
                    msg['payload'] = payload
                ws.send(json.dumps(msg))

            command(start, {'format': 'pcm', 'sample_rate': 16000, 'enable_intermediate_result': True,
                            'enable_punctuation_prediction': True})
            out.write('> %s\n< %s\n' % (start, ws.recv()))
            for i in range(0, len(audio), 3200):
                ws.send_binary(audio[i:i + 3200])
            out.write('> %d bytes of audio\n' % len(audio))
            command(stop)
            out.write('> %s\n' % stop)
            while True:
                message = ws.recv()
                out.write('< %s\n' % message)
                name = json.loads(message)['header']['name']
                if name in (done, 'TaskFailed'):
                    break
        finally:
            ws.close()
        out.flush()
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    akids = args.akid or [DEFAULT_AKID]
    secrets = args.aksecret or [DEFAULT_AKSECRET]
    if len(akids) != len(secrets):
        print('error: give one --aksecret per --akid', file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    from nls_lite.emulator import NlsEmulator
    script = '北京的天气。'
    if args.transcript:
        script = args.transcript[0] if len(args.transcript) == 1 else list(args.transcript)
    emu = NlsEmulator(host=args.host, port=args.port, http_port=args.http_port,
                      tokens={t: None for t in (args.token or [DEFAULT_TOKEN])}, accept_any_token=args.any_token,
                      appkeys={a: {'sample_rate': None} for a in (args.appkey or [DEFAULT_APPKEY])},
                      accept_any_appkey=args.any_appkey, access_keys=dict(zip(akids, secrets)),
                      token_ttl_s=args.token_ttl, idle_timeout_s=args.idle_timeout, script=script,
                      certfile=args.certfile, keyfile=args.keyfile, max_records=1000)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        emu.start()
    except OSError as exc:
        print('error: cannot serve on %s port %s: %s' % (args.host, args.port, exc), file=sys.stderr)
        return 1
    except ImportError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    try:
        sys.stdout.write(emu.url + '\n' + emu.token_url + '\n')
        sys.stdout.flush()
        if args.demo:
            return demo(emu, next(iter(emu.tokens)), next(iter(emu.appkeys)) if emu.appkeys else 'demo')
        logging.getLogger('nls_lite.emulator').info('serving %s (CreateToken %s); Ctrl-C stops',
                                                    emu.url, emu.token_url)
        while not stop.wait(3600):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
