"""``python -m dds_client.emulator``: the standalone DDS gateway emulator (reference 5.1.2).

Line 1 of stdout is the served URL; logs go to stderr; SIGINT/SIGTERM stop it (exit 0).
"""

import argparse
import json
import logging
import sys


def _fault(text):
    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError("fault parameter %r is not k=v" % item)
        params[key] = value
    return name, params


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dds_client.emulator",
                                description="Loopback emulator of the DDS dialogue gateway.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--path", default="/dsg/v1/prod")
    p.add_argument("--product-id", default="100200300", help="accepted productId (100200300)")
    p.add_argument("--apikey", default="emulator-apikey", help="accepted apikey (emulator-apikey)")
    p.add_argument("--device-name", action="append", default=None,
                   help="accepted device name (emulator-device); repeat in pairs with "
                        "--device-secret")
    p.add_argument("--device-secret", action="append", default=None,
                   help="secret of the device named at the same position "
                        "(emulator-device-secret)")
    p.add_argument("--transcript", default="今天天气怎么样",
                   help="transcript returned for any audio (今天天气怎么样)")
    p.add_argument("--script", help="dialogue script (JSON file)")
    p.add_argument("--record-id-suffix", action="store_true",
                   help="echo recordId as <recordId>:<suffix>")
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--max-audio-seconds", type=float, default=60.0)
    p.add_argument("--fault", action="append", type=_fault, default=[],
                   help="NAME[:k=v,...], repeatable (e.g. delay:seconds=2)")
    p.add_argument("--record", metavar="FILE.jsonl", help="append every event as a JSON line")
    p.add_argument("--max-records", type=int, default=1000,
                   help="frames/requests/connections kept in memory (1000; 0 = unbounded)")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    names = args.device_name or []
    secrets = args.device_secret or []
    if len(names) != len(secrets):
        parser.error("--device-name and --device-secret must be given in pairs")
    device_name, device_secret = "emulator-device", "emulator-device-secret"
    devices = {}
    if names:
        device_name, device_secret = names[0], secrets[0]
        devices = dict(zip(names[1:], secrets[1:]))
    from . import Emulator
    try:
        emulator = Emulator(host=args.host, port=args.port, path=args.path,
                            product_id=args.product_id, apikey=args.apikey,
                            device_name=device_name, device_secret=device_secret,
                            devices=devices, transcript=args.transcript, script=args.script,
                            record_id_suffix=args.record_id_suffix,
                            idle_timeout=args.idle_timeout,
                            max_audio_seconds=args.max_audio_seconds, faults=args.fault,
                            max_records=args.max_records)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    record = None
    if args.record:
        record = open(args.record, "a", encoding="utf-8")

        def sink(event):
            record.write(json.dumps(event, ensure_ascii=False) + "\n")
            record.flush()
        emulator._sinks.append(sink)
    try:
        emulator.start()
    except OSError as exc:
        print("error: cannot listen on %s:%s: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 1
    try:
        print(emulator.url, flush=True)
        emulator.serve_forever()
    finally:
        emulator.stop()
        if record is not None:
            record.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
