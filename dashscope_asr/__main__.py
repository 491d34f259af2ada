"""python -m dashscope_asr: recognise a file in real time, or transcribe file URLs.

    python -m dashscope_asr --emulator                      # bundled sample, local emulator
    python -m dashscope_asr speech.wav --fast               # real service, as fast as possible
    python -m dashscope_asr --call speech.wav               # Recognition.call()
    python -m dashscope_asr --transcribe https://host/a.wav # file transcription (HTTP task)

The key comes from --api-key, DASHSCOPE_API_KEY, or the key file (see save_api_key).
"""
import argparse
import os
import struct
import sys
import threading
import time

import dashscope_asr
from dashscope_asr.audio.asr import Recognition, RecognitionCallback, Transcription
from dashscope_asr.common.error import DashScopeException

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'samples', 'asr_example.wav')
SAMPLE_TRANSCRIPT = ['北京今天天气怎么样？', '明天会下雨吗？']


def wav_info(path):
    """(sample_rate, channels) from a WAV header, or None."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4096)
    except OSError:
        return None
    if head[:4] != b'RIFF' or head[8:12] != b'WAVE':
        return None
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack('<I', head[pos + 4:pos + 8])[0]
        if cid == b'fmt ' and pos + 16 <= len(head):
            channels, rate = struct.unpack('<HI', head[pos + 10:pos + 16])
            return rate, channels
        pos += 8 + size + (size & 1)
    return None


class Printer(RecognitionCallback):
    """Prints results as they come; final sentences on their own line."""

    def __init__(self, out, partials):
        self.out = out
        self.partials = partials
        self.error = None
        self.done = threading.Event()

    def on_event(self, result):
        sentence = result.get_sentence()
        if not sentence:
            return
        if result.is_sentence_end(sentence):
            self.out.write('[%6.2f-%6.2f] %s\n' % (sentence['begin_time'] / 1000.0,
                                                    sentence['end_time'] / 1000.0, sentence['text']))
        elif self.partials:
            self.out.write('           ... %s\n' % sentence['text'])
        self.out.flush()

    def on_error(self, result):
        self.error = result
        self.done.set()

    def on_complete(self):
        self.done.set()


def recognise(args, out):
    path = args.file or SAMPLE
    if not os.path.isfile(path):
        sys.stderr.write('error: no such audio file: %s\n' % path)
        return 2
    info = wav_info(path)
    fmt = args.format or ('wav' if info else os.path.splitext(path)[1].lstrip('.').lower() or 'pcm')
    rate = args.sample_rate or (info[0] if info else 16000)
    kwargs = {}
    if args.language_hints:
        kwargs['language_hints'] = args.language_hints.split(',')
    if args.vocabulary_id:
        kwargs['vocabulary_id'] = args.vocabulary_id
    if args.call:
        result = Recognition(args.model, None, fmt, rate, workspace=args.workspace,
                             **kwargs).call(path)
        if result.status_code != 200:
            return fail(result)
        for sentence in result.get_sentence() or []:
            out.write('[%6.2f-%6.2f] %s\n' % (sentence['begin_time'] / 1000.0,
                                              sentence['end_time'] / 1000.0, sentence['text']))
        return 0
    printer = Printer(out, args.partials)
    recognition = Recognition(args.model, printer, fmt, rate, workspace=args.workspace, **kwargs)
    bytes_per_s = rate * 2 * ((info[1] if info else 1) or 1)
    frame = max(2, int(bytes_per_s * args.frame_ms / 1000) // 2 * 2)
    recognition.start()
    started = time.monotonic()
    sent = 0
    try:
        with open(path, 'rb') as f:
            while not printer.done.is_set():
                chunk = f.read(frame)
                if not chunk:
                    break
                recognition.send_audio_frame(chunk)
                sent += len(chunk)
                if not args.fast:  # real time: frame n goes out n frame-durations after start
                    delay = started + sent / float(bytes_per_s) - time.monotonic()
                    if delay > 0:
                        printer.done.wait(delay)
        recognition.stop()
    except DashScopeException:
        if printer.error is None:
            raise
    if printer.error is not None:
        return fail(printer.error)
    out.write('first package delay %.0f ms, last package delay %.0f ms, task %s\n' % (
        recognition.get_first_package_delay(), recognition.get_last_package_delay(),
        recognition.get_last_request_id()))
    return 0


def transcribe(args, out):
    import requests
    response = Transcription.call(args.model if args.model != DEFAULT_MODEL else 'paraformer-v2',
                                  args.transcribe, workspace=args.workspace)
    if response.status_code != 200:
        return fail(response)
    out.write('task %s: %s\n' % (response.output.task_id, response.output.task_status))
    for item in response.output.get('results') or []:
        if item.get('subtask_status') != 'SUCCEEDED':
            out.write('%s: %s %s\n' % (item.get('file_url'), item.get('code'), item.get('message')))
            continue
        content = requests.get(item['transcription_url'], timeout=30).json()
        out.write('%s\n' % content.get('file_url'))
        for transcript in content.get('transcripts') or []:
            for sentence in transcript.get('sentences') or []:
                out.write('[%6.2f-%6.2f] %s\n' % (sentence['begin_time'] / 1000.0,
                                                  sentence['end_time'] / 1000.0, sentence['text']))
    return 0 if response.output.task_status == 'SUCCEEDED' else 1


def fail(result):
    sys.stderr.write('error: status %s, code %s: %s\n' % (result.status_code, result.code,
                                                         result.message))
    return 1


DEFAULT_MODEL = 'paraformer-realtime-v2'


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m dashscope_asr', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('file', nargs='?', help='audio file (default: the bundled 16 kHz sample)')
    parser.add_argument('--model', default=DEFAULT_MODEL)
    parser.add_argument('--format', help='pcm, wav, mp3, opus, speex, aac, amr (default: from file)')
    parser.add_argument('--sample-rate', type=int, help='default: from the WAV header, else 16000')
    parser.add_argument('--fast', action='store_true', help='send as fast as possible, not paced')
    parser.add_argument('--frame-ms', type=int, default=100, help='audio per frame (default 100)')
    parser.add_argument('--partials', action='store_true', help='print intermediate results too')
    parser.add_argument('--call', action='store_true', help='use Recognition.call() (whole file)')
    parser.add_argument('--transcribe', nargs='+', metavar='URL', help='transcribe file URLs')
    parser.add_argument('--language-hints', help='comma separated, e.g. zh,en')
    parser.add_argument('--vocabulary-id')
    parser.add_argument('--workspace')
    parser.add_argument('--api-key', help='default: DASHSCOPE_API_KEY or the key file')
    parser.add_argument('--url', help='WebSocket URL (default: dashscope.base_websocket_api_url)')
    parser.add_argument('--http-url', help='HTTP API base (default: dashscope.base_http_api_url)')
    parser.add_argument('--emulator', action='store_true', help='run against a local emulator')
    args = parser.parse_args(argv)
    if args.api_key:
        dashscope_asr.api_key = args.api_key
    if args.url:
        dashscope_asr.base_websocket_api_url = args.url
    if args.http_url:
        dashscope_asr.base_http_api_url = args.http_url
    emu = None
    if args.emulator:
        try:
            from dashscope_asr.emulator import Emulator
            emu = Emulator(running_ms=300)
            emu.script_file(SAMPLE, SAMPLE_TRANSCRIPT)
            emu.start()
        except ImportError:
            sys.stderr.write("error: the emulator needs 'websockets' (pip install "
                             "'speech-sdk-lite[emulator]')\n")
            return 2
        emu.apply_to(dashscope_asr)
    try:
        if args.transcribe:
            return transcribe(args, sys.stdout)
        return recognise(args, sys.stdout)
    except DashScopeException as exc:
        sys.stderr.write('error: %s: %s\n' % (type(exc).__name__, exc))
        return 2
    except OSError as exc:
        sys.stderr.write('error: %s\n' % exc)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if emu is not None:
            emu.stop()


if __name__ == '__main__':
    sys.exit(main())
