# -*- coding: utf-8 -*-
"""python -m sis_rasr: stream an audio file to SIS real-time recognition and print results as they arrive.

    python -m sis_rasr --emulator                      # bundled sample, bundled emulator, no credentials
    python -m sis_rasr speech.wav --mode sentence      # real service: AK/SK (or user/password) from flags/env
"""
import argparse
import json
import os
import sys
import threading
import wave

from sis_rasr.bean.asr_request import SasrWebsocketRequest
from sis_rasr.bean.callback import RasrCallBack
from sis_rasr.bean.rasr_request import RasrRequest
from sis_rasr.bean.sis_config import SisConfig
from sis_rasr.client.rasr_client import RasrClient
from sis_rasr.exception.exceptions import ClientException

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'samples', 'sis_rasr_zh16k.wav')
SAMPLE_TEXT = u'北京今天天气怎么样？'
MODES = {'continue': 'continue_stream_connect', 'sentence': 'sentence_stream_connect',
         'short': 'short_stream_connect', 'sasr': 'sasr_stream_connect'}
ENV = 'HUAWEICLOUD_SIS_'


class PrintingCallback(RasrCallBack):
    """ Prints results as they come; remembers whether anything went wrong. """

    def __init__(self, out, err, json_output=False):
        self.out = out
        self.err = err
        self.json_output = json_output
        self.errors = []
        self.lock = threading.Lock()

    def _print(self, stream, text):
        with self.lock:
            stream.write(text + '\n')
            stream.flush()

    def on_open(self):
        self._print(self.err, 'connected')

    def on_start(self, message):
        self._print(self.err, 'recognition started, %s' % message)

    def on_response(self, message):
        if self.json_output:
            self._print(self.out, json.dumps(message, ensure_ascii=False))
            return
        for seg in message.get('segments', []):
            text = seg.get('result', {}).get('text', '')
            if seg.get('is_final'):
                self._print(self.out, '[%6.2fs - %6.2fs] %s' % (seg.get('start_time', 0) / 1000.0,
                                                              seg.get('end_time', 0) / 1000.0, text))
            else:
                self._print(self.err, '  ... %s' % text)

    def on_end(self, message):
        self._print(self.err, 'recognition ended, %s' % message)

    def on_close(self):
        self._print(self.err, 'connection closed')

    def on_error(self, error):
        self.errors.append(error)
        if isinstance(error, str):
            try:
                body = json.loads(error)
                error = '%s %s: %s' % (body.get('resp_type'), body.get('error_code'), body.get('error_msg'))
            except ValueError:
                pass
        else:
            error = '%s: %s' % (type(error).__name__, error)
        self._print(self.err, 'error: %s' % error)

    def on_event(self, event):
        self._print(self.err, 'event: %s' % event)


def build_parser():
    env = os.environ.get
    p = argparse.ArgumentParser(prog='python -m sis_rasr', description='Stream an audio file to Huawei Cloud SIS '
                                'real-time recognition and print results as they arrive.')
    p.add_argument('file', nargs='?', default=SAMPLE, help='audio file: WAV (mono 16-bit PCM) or raw audio '
                                                           '(give --audio-format); default: the bundled sample')
    p.add_argument('--mode', choices=sorted(MODES), default='continue', help='recognition mode (default continue)')
    p.add_argument('--emulator', action='store_true', help='run against a bundled local emulator')
    g = p.add_argument_group('credentials (flags, else %s* environment variables)' % ENV)
    g.add_argument('--ak', default=env(ENV + 'AK'), help='AK (%sAK)' % ENV)
    g.add_argument('--sk', default=env(ENV + 'SK'), help='SK (%sSK)' % ENV)
    g.add_argument('--user', default=env(ENV + 'USER'), help='IAM user for token auth (%sUSER)' % ENV)
    g.add_argument('--password', default=env(ENV + 'PASSWORD'), help='IAM password (%sPASSWORD)' % ENV)
    g.add_argument('--domain', default=env(ENV + 'DOMAIN'), help='IAM domain / account (%sDOMAIN)' % ENV)
    g.add_argument('--region', default=env(ENV + 'REGION', 'cn-north-4'), help='region (%sREGION, default '
                                                                                'cn-north-4)' % ENV)
    g.add_argument('--project-id', default=env(ENV + 'PROJECT_ID'), help='project id (%sPROJECT_ID)' % ENV)
    g.add_argument('--endpoint', default=None, help='service endpoint, e.g. wss://sis-ext.cn-north-4.myhuaweicloud.com')
    g.add_argument('--token-url', default=None, help='IAM token URL')
    g.add_argument('--insecure', action='store_true', help='do not verify TLS certificates')
    r = p.add_argument_group('recognition')
    r.add_argument('--audio-format', help='e.g. pcm16k16bit, pcm8k16bit, alaw8k8bit (default: from the WAV header)')
    r.add_argument('--property', help='e.g. chinese_16k_general (default: chinese_<rate>_general)')
    r.add_argument('--punc', action='store_true', help='add punctuation')
    r.add_argument('--interim', action='store_true', help='print interim results (to stderr)')
    r.add_argument('--word-info', action='store_true', help='ask for word timings (shown with --json)')
    r.add_argument('--vad-head', type=int, help='ms of leading silence allowed [0, 60000]')
    r.add_argument('--vad-tail', type=int, help='ms of trailing silence that ends a sentence [0, 3000]')
    r.add_argument('--max-seconds', type=int, help='max sentence length in seconds [0, 60]')
    r.add_argument('--chunk-ms', type=int, default=100, help='audio per frame in ms (default 100)')
    r.add_argument('--speed', type=float, default=1.0, help='pacing: 1 = real time, 0 = as fast as possible')
    r.add_argument('--json', action='store_true', help='print each RESULT message as JSON')
    return p


def read_audio(path, audio_format):
    """ -> (bytes, audio_format). WAV: PCM frames without the header, format from the header. """
    with open(path, 'rb') as f:
        head = f.read(12)
    if head[:4] == b'RIFF' and head[8:12] == b'WAVE':
        with wave.open(path, 'rb') as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            data = w.readframes(w.getnframes())
        if channels != 1 or width != 2 or rate not in (8000, 16000):
            raise ValueError('%s: need mono 16-bit PCM at 8 or 16 kHz, got %d ch, %d bit, %d Hz'
                             % (path, channels, width * 8, rate))
        return data, audio_format or 'pcm%dk16bit' % (rate // 1000)
    if not audio_format:
        raise ValueError('%s is not a WAV file: give --audio-format' % path)
    with open(path, 'rb') as f:
        return f.read(), audio_format


def bytes_per_second(audio_format):
    rate = 16000 if '16k' in audio_format else 8000
    return rate * (2 if audio_format.startswith('pcm') else 1)


def main(argv=None, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        data, audio_format = read_audio(args.file, args.audio_format)
    except (OSError, ValueError, wave.Error) as e:
        err.write('error: %s\n' % e)
        return 2
    prop = args.property or 'chinese_%s_general' % ('16k' if '16k' in audio_format else '8k')
    emu = None
    if args.emulator:
        from sis_rasr.emulator import SisEmulator
        emu = SisEmulator(transcript=SAMPLE_TEXT if args.file == SAMPLE else None).start()
        args.ak, args.sk, args.project_id, args.region = emu.ak, emu.sk, emu.project_id, emu.region
        args.endpoint = emu.ws_endpoint
        args.user = None
    use_aksk = bool(args.ak or args.sk)
    if not args.project_id or not (use_aksk or args.user):
        err.write('error: give --project-id and either --ak/--sk or --user/--password/--domain '
                  '(or the %s* environment variables), or use --emulator\n' % ENV)
        return 2
    config = SisConfig()
    if args.insecure:
        config.set_certificate_check(False)
    callback = PrintingCallback(out, err, args.json)
    request = (SasrWebsocketRequest if args.mode == 'sasr' else RasrRequest)(audio_format, prop)
    request.set_add_punc('yes' if args.punc else 'no')
    request.set_interim_results('yes' if args.interim else 'no')
    request.set_need_word_info('yes' if args.word_info else 'no')
    for name in ('vad_head', 'vad_tail', 'max_seconds'):
        if getattr(args, name) is not None:
            getattr(request, 'set_' + name)(getattr(args, name))
    chunk = max(1, bytes_per_second(audio_format) * args.chunk_ms // 1000)
    sleep = args.chunk_ms / 1000.0 / args.speed if args.speed > 0 else 0
    client = None
    try:
        client = RasrClient(user_name=args.user, password=args.password, domain_name=args.domain,
                            region=args.region, project_id=args.project_id, callback=callback, config=config,
                            service_endpoint=args.endpoint, token_url=args.token_url, ak=args.ak, sk=args.sk,
                            use_aksk=use_aksk)
        getattr(client, MODES[args.mode])(request)
        client.send_start()
        client.send_audio(data, byte_len=chunk, sleep_time=sleep)
        client.send_end()
    except ClientException as e:
        err.write('error: %s\n' % e)
        return 1
    except KeyboardInterrupt:
        err.write('interrupted\n')
        return 130
    finally:
        if client is not None:
            client.close()
        if emu is not None:
            emu.stop()
    return 1 if callback.errors else 0


if __name__ == '__main__':
    sys.exit(main())
