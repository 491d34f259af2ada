# -*- coding: utf-8 -*-
"""python -m sis_rasr.emulator: serve the SIS emulator on 127.0.0.1 until SIGINT/SIGTERM.

stdout line 1: the websocket endpoint (pass it as service_endpoint); line 2: the IAM base URL
(serving /v3/auth/tokens). Everything else goes to stderr.
"""
import argparse
import json
import logging
import signal
import sys
import threading

from sis_rasr.emulator import (DEFAULT_AK, DEFAULT_DOMAIN, DEFAULT_PASSWORD, DEFAULT_PROJECT_ID, DEFAULT_REGION,
                               DEFAULT_SK, DEFAULT_USER, SisEmulator)


def build_parser():
    p = argparse.ArgumentParser(prog='python -m sis_rasr.emulator',
                                description='Local emulator of Huawei Cloud SIS real-time recognition (RASR/SASR '
                                            'websocket) and of the IAM token endpoint.')
    p.add_argument('--host', default='127.0.0.1', help='listen address (default 127.0.0.1)')
    p.add_argument('--port', type=int, default=0, help='websocket port, 0 picks a free one (default 0)')
    p.add_argument('--iam-port', type=int, default=0, help='IAM token endpoint port (default 0: any free port)')
    p.add_argument('--ak', action='append', help='accepted AK, repeatable, paired with --sk (default %s)' % DEFAULT_AK)
    p.add_argument('--sk', action='append', help='SK of the --ak at the same position (default %s)' % DEFAULT_SK)
    p.add_argument('--user', action='append', help='IAM user name, repeatable (default %s)' % DEFAULT_USER)
    p.add_argument('--password', action='append', help='password of the --user at the same position (default %s)'
                   % DEFAULT_PASSWORD)
    p.add_argument('--domain', action='append', help='domain of the --user at the same position (default %s)'
                   % DEFAULT_DOMAIN)
    p.add_argument('--project-id', default=DEFAULT_PROJECT_ID,
                   help="accepted project id, 'any' for every project (default %s)" % DEFAULT_PROJECT_ID)
    p.add_argument('--region', default=DEFAULT_REGION, help='region / IAM scope name (default %s)' % DEFAULT_REGION)
    p.add_argument('--auth', choices=('strict', 'lenient', 'off'), default='strict',
                   help='strict: verify signatures and tokens; lenient: format only; off: no auth (default strict)')
    p.add_argument('--transcript', help='scripted text returned for any audio (default: placeholder text)')
    p.add_argument('--script', help='JSON file: a list of sentences (str or {"text","score","start_ms","end_ms"}) '
                                    'used as the default transcript')
    p.add_argument('--audio-script', action='append', default=[], metavar='PATH=TEXT',
                   help='transcript for sessions sending this audio file (prefix match), repeatable')
    p.add_argument('--idle-timeout', type=float, default=20.0,
                   help='seconds without client data before FATAL_ERROR SIS.0304 (default 20)')
    p.add_argument('-v', '--verbose', action='store_true', help='log every frame to stderr')
    return p


def _pairs(first, second, default_first, default_second, what):
    first = first or [default_first]
    second = second or ([default_second] * len(first) if first == [default_first] else [])
    if len(first) != len(second):
        raise SystemExit('error: give one %s per %s' % what)
    return list(zip(first, second))


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    keys = _pairs(args.ak, args.sk, DEFAULT_AK, DEFAULT_SK, '--sk per --ak')
    users = _pairs(args.user, args.password, DEFAULT_USER, DEFAULT_PASSWORD, '--password per --user')
    domains = args.domain or [DEFAULT_DOMAIN] * len(users)
    if len(domains) != len(users):
        raise SystemExit('error: give one --domain per --user')
    emu = SisEmulator(host=args.host, port=args.port, iam_port=args.iam_port, ak=keys[0][0], sk=keys[0][1],
                      project_id=None if args.project_id == 'any' else args.project_id, region=args.region,
                      user_name=users[0][0], password=users[0][1], domain_name=domains[0], auth=args.auth,
                      transcript=args.transcript, idle_timeout_s=args.idle_timeout)
    emu.credentials = dict(keys)
    emu.accounts = [(u, p, d) for (u, p), d in zip(users, domains)]
    if args.script:
        with open(args.script, encoding='utf-8') as f:
            emu.default_sentences = json.load(f)
    for item in args.audio_script:
        path, sep, text = item.partition('=')
        if not sep:
            raise SystemExit('error: --audio-script takes PATH=TEXT')
        emu.register_audio(path, [text])

    stop = threading.Event()

    def _signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGTERM, _signal)
    emu.start()
    try:
        sys.stdout.write(emu.ws_endpoint + '\n' + emu.iam_base_url + '\n')
        sys.stdout.flush()
        log = logging.getLogger('sis_rasr.emulator')
        log.info('serving %s (project %s, region %s); IAM %s', emu.ws_endpoint, emu.project_id or 'any',
                 emu.region, emu.iam_url)
        # Only the built-in demo secrets are echoed; secrets given on the command line are not.
        log.info('AK/SK: %s', ', '.join('%s / %s' % (ak, sk if sk == DEFAULT_SK else '(as given)') for ak, sk in keys))
        log.info('users: %s', ', '.join('%s / %s / %s' % (u, p if p == DEFAULT_PASSWORD else '(as given)', d)
                                         for u, p, d in emu.accounts))
        while not stop.wait(3600):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
