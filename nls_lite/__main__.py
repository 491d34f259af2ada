"""python -m nls_lite: transcribe a WAV/PCM file with the recognizer or the transcriber.

Against the real gateway (token and appkey from flags or NLS_TOKEN/NLS_APPKEY, or an AccessKey pair to
fetch a token) or, with --emulator, against the bundled local emulator with no credentials at all.
"""
import argparse
import json
import os
import sys
import threading
import time

from . import token as nls_token
from .exception import GetTokenFailed, InvalidParameter
from .speech_recognizer import NlsSpeechRecognizer
from .speech_transcriber import NlsSpeechTranscriber
from .util import _data_chunk

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'samples', 'beijing_weather.wav')
SAMPLE_TRANSCRIPT = '北京的天气。'


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""


def read_audio(path, sample_rate):
    """(pcm bytes, sample rate) of a WAV (16-bit mono PCM) or raw PCM file."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise CliError('cannot read %s: %s' % (path, exc.strerror or exc))
    if data[:4] != b'RIFF':
        return data, sample_rate
    try:
        start, length = _data_chunk(data)
    except ValueError:
        raise CliError('%s is not a valid WAV file' % path)
    fmt = data.find(b'fmt ')
    if fmt < 0 or fmt + 24 > len(data):
        raise CliError('%s has no fmt chunk' % path)
    audio_format, channels, rate = (int.from_bytes(data[fmt + 8:fmt + 10], 'little'),
                                    int.from_bytes(data[fmt + 10:fmt + 12], 'little'),
                                    int.from_bytes(data[fmt + 12:fmt + 16], 'little'))
    bits = int.from_bytes(data[fmt + 22:fmt + 24], 'little')
    if audio_format != 1 or channels != 1 or bits != 16:
        raise CliError('%s must be 16-bit mono PCM (got format %d, %d channel(s), %d bits)'
                       % (path, audio_format, channels, bits))
    return data[start:start + length], rate


def describe_failure(message):
    try:
        header = json.loads(message)['header']
        return 'TaskFailed %s %s' % (header.get('status'), header.get('status_text'))
    except (ValueError, KeyError, TypeError):
        return message


class Printer(object):
    """Prints results as they arrive (callbacks run on the session thread)."""

    def __init__(self, out, show_partials):
        self.out = out
        self.show_partials = show_partials
        self.failure = None
        self.finals = []

    def _payload(self, message):
        return json.loads(message).get('payload') or {}

    def partial(self, message, *args):
        if self.show_partials:
            payload = self._payload(message)
            self.out.write('  ~ %s\n' % payload.get('result', ''))
            self.out.flush()

    def sentence_end(self, message, *args):
        payload = self._payload(message)
        self.finals.append(payload.get('result', ''))
        self.out.write('[%s] %.2f-%.2fs %s\n' % (payload.get('index'), payload.get('begin_time', 0) / 1000.0,
                                                 payload.get('time', 0) / 1000.0, payload.get('result', '')))
        self.out.flush()

    def recognition_completed(self, message, *args):
        payload = self._payload(message)
        self.finals.append(payload.get('result', ''))
        self.out.write('%s\n' % payload.get('result', ''))
        self.out.flush()

    def error(self, message, *args):
        self.failure = describe_failure(message)


def stream(client, pcm, sample_rate, chunk_ms, realtime, progress):
    chunk = max(2, int(sample_rate * 2 * chunk_ms / 1000) // 2 * 2)
    total = len(pcm)
    began = time.monotonic()
    next_report = 10.0
    for offset in range(0, total, chunk):
        if realtime:
            due = began + offset / (sample_rate * 2.0)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)   # pacing to the audio clock, not synchronisation
        if client.send_audio(pcm[offset:offset + chunk]) is False:
            return False
        sent_s = (offset + chunk) / (sample_rate * 2.0)
        if progress and sent_s >= next_report:
            sys.stderr.write('nls_lite: sent %.0f s of %.0f s\n' % (sent_s, total / (sample_rate * 2.0)))
            next_report += 10.0
    return True


def resolve_credentials(args):
    if args.token and args.appkey:
        return args.token, args.appkey
    if not args.appkey:
        raise CliError('an appkey is needed: --appkey or NLS_APPKEY (or use --emulator)')
    if args.akid and args.aksecret:
        try:
            return nls_token.getToken(args.akid, args.aksecret, domain=args.region,
                                      url=args.token_url or 'nls-meta.%s.aliyuncs.com' % args.region), args.appkey
        except GetTokenFailed as exc:
            raise CliError('could not get a token: %s' % exc)
    raise CliError('a token is needed: --token or NLS_TOKEN, or an AccessKey pair via --akid/--aksecret '
                   'or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or use --emulator)')


def transcribe(args, url, token_value, appkey):
    pcm, rate = read_audio(args.file, args.sample_rate)
    if not pcm:
        raise CliError('%s holds no audio' % args.file)
    printer = Printer(sys.stdout, not args.no_partials)
    closed = threading.Event()
    common = dict(url=url, token=token_value, appkey=appkey, on_result_changed=printer.partial,
                  on_error=printer.error, on_close=lambda *a: closed.set())
    if args.mode == 'recognizer':
        client = NlsSpeechRecognizer(on_completed=printer.recognition_completed, **common)
    else:
        client = NlsSpeechTranscriber(on_sentence_end=printer.sentence_end, **common)
    with client:
        try:
            started = client.start(aformat='pcm', sample_rate=rate, enable_intermediate_result=not args.no_partials,
                                   enable_punctuation_prediction=True, enable_inverse_text_normalization=True,
                                   timeout=args.timeout)
        except InvalidParameter as exc:
            raise CliError(str(exc))
        if not started:
            raise CliError(printer.failure or 'the session did not start')
        sent = stream(client, pcm, rate, args.chunk_ms, args.realtime, args.progress)
        stopped = sent and client.stop(timeout=args.timeout)
    if not stopped:
        raise CliError(printer.failure or 'the session ended before its result')
    return 0


def build_parser():
    env = os.environ.get
    parser = argparse.ArgumentParser(prog='python -m nls_lite', description=__doc__.split('\n\n')[0])
    parser.add_argument('file', nargs='?', default=None,
                        help='16-bit mono WAV, or raw 16-bit PCM (default: the bundled sample)')
    parser.add_argument('--mode', choices=('transcriber', 'recognizer'), default='transcriber',
                        help='real-time transcription (any length) or one-sentence recognition (<= 60 s)')
    parser.add_argument('--emulator', action='store_true', help='run against the bundled local emulator')
    parser.add_argument('--transcript', default=None, help='with --emulator: the text the emulator returns')
    parser.add_argument('--url', default=env('NLS_LITE_URL', 'wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1'))
    parser.add_argument('--token', default=env('NLS_TOKEN'))
    parser.add_argument('--appkey', default=env('NLS_APPKEY'))
    parser.add_argument('--akid', default=env('ALIBABA_CLOUD_ACCESS_KEY_ID'))
    parser.add_argument('--aksecret', default=env('ALIBABA_CLOUD_ACCESS_KEY_SECRET'))
    parser.add_argument('--region', default='cn-shanghai', help='region of the token service')
    parser.add_argument('--token-url', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--sample-rate', type=int, default=16000, help='sample rate of raw PCM input')
    parser.add_argument('--chunk-ms', type=int, default=100, help='audio per frame sent (default 100 ms)')
    parser.add_argument('--realtime', action='store_true', help='pace the audio at real time')
    parser.add_argument('--no-partials', action='store_true', help='do not ask for intermediate results')
    parser.add_argument('--timeout', type=float, default=10, help='connect/start/stop timeout in seconds')
    parser.add_argument('--quiet', dest='progress', action='store_false', help='no progress lines on stderr')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.file is None:
        args.file = SAMPLE
    try:
        if args.emulator:
            try:
                from .emulator import NlsEmulator
            except ImportError as exc:
                raise CliError("--emulator needs the 'emulator' extra (pip install 'speech-sdk-lite[emulator]'): %s"
                               % exc)
            script = args.transcript or (SAMPLE_TRANSCRIPT if args.file == SAMPLE else None)
            options = {'script': script} if script else {}
            with NlsEmulator(**options) as emu:
                return transcribe(args, emu.url, 'test-token', 'test-appkey')
        token_value, appkey = resolve_credentials(args)
        return transcribe(args, args.url, token_value, appkey)
    except CliError as exc:
        sys.stderr.write('nls_lite: error: %s\n' % exc)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('nls_lite: interrupted\n')
        return 130


if __name__ == '__main__':
    sys.exit(main())
