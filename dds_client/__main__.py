"""``python -m dds_client``: interactive text chat and audio-file turns (reference 3.14)."""

import argparse
import io
import json
import math
import os
import sys
import wave
from array import array

from . import AsrResult, DDSClient, DDSError, DialogResult, NluResult


def builtin_audio():
    """A speech-like test signal (16 kHz mono 16-bit WAV), made in memory."""
    rate = 16000
    samples = array("h", [0] * (rate * 3 // 10))
    for i in range(rate * 16 // 10):                 # 1.6 s of a syllable-rate modulated tone
        envelope = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * i / rate)
        samples.append(int(6000 * envelope * math.sin(2 * math.pi * 220 * i / rate)))
    samples.extend([0] * (rate * 8 // 10))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dds_client",
                                description="Chat with the DDS dialogue gateway (text or audio).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", help="gateway URL (default: the and-home gateway)")
    where.add_argument("--dui", metavar="BRANCH", help="use the DUI cloud with this branch")
    where.add_argument("--emulator", action="store_true",
                       help="start an in-process emulator and talk to it")
    p.add_argument("--dui-version", choices=("v1", "v2", "v3"), default="v2")
    p.add_argument("--product-id", default=os.environ.get("DDS_PRODUCT_ID"))
    p.add_argument("--apikey", default=os.environ.get("DDS_APIKEY"))
    p.add_argument("--device-name", default=os.environ.get("DDS_DEVICE_NAME"))
    p.add_argument("--device-secret", default=os.environ.get("DDS_DEVICE_SECRET"))
    p.add_argument("--ai-type", choices=("dm", "asr", "nlu", "tts"))
    p.add_argument("--text", action="append", default=[], help="one turn per text (repeatable)")
    p.add_argument("--audio", action="append", default=[],
                   help="one audio turn per file; 'builtin' is a generated test signal")
    p.add_argument("--transcript", default="今天天气怎么样",
                   help="the emulator's transcript for audio (with --emulator)")
    p.add_argument("--realtime", action="store_true", help="pace audio at real time")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per turn (10)")
    p.add_argument("--json", action="store_true", help="print every raw server message")
    return p


class Printer:
    def __init__(self, out, as_json):
        self.out = out
        self.as_json = as_json
        self._partial = False

    def raw(self, message):
        if self.as_json:
            self.out.write(json.dumps(message, ensure_ascii=False) + "\n")
            self.out.flush()

    def partial(self, result):
        if not self.as_json:
            self.out.write("\r... %s" % result.text_compact)
            self.out.flush()
            self._partial = True

    def _end_partial(self):
        if self._partial:
            self.out.write("\n")
            self._partial = False

    def result(self, r):
        if self.as_json:
            return
        self._end_partial()
        lines = []
        if isinstance(r, DialogResult):
            if r.asr is not None:
                lines.append("asr: %s" % r.asr.text_compact)
            lines.append("[session %s] %s" % ((r.session_id or "--------")[:8], r.nlg or ""))
            if r.widget_type:
                rest = {k: v for k, v in r.widget.items() if k != "duiWidget"}
                lines.append("  widget: %s %s" % (r.widget_type,
                                                   json.dumps(rest, ensure_ascii=False)[:120]))
            if r.command_api:
                lines.append("  command: %s %s" % (r.command_api, json.dumps(
                    r.command_param, ensure_ascii=False)))
            if r.native_api:
                lines.append("  native: %s %s" % (r.native_api, json.dumps(
                    r.native_param, ensure_ascii=False)))
            if r.should_end_session:
                lines.append("(dialogue ended)")
        elif isinstance(r, AsrResult):
            lines.append("asr: %s" % r.text_compact)
        elif isinstance(r, NluResult):
            lines.append("nlu: task=%s intent=%s slots=%s" % (
                r.task, r.intent, json.dumps(r.slots, ensure_ascii=False)))
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def make_client(args, parser, emulator, printer):
    kwargs = dict(ai_type=args.ai_type, timeout=args.timeout, on_message=printer.raw,
                  on_asr_partial=printer.partial)
    if emulator is not None:
        return DDSClient(**emulator.client_kwargs(), **kwargs)
    if not args.product_id:
        parser.error("--product-id (or DDS_PRODUCT_ID) is required")
    if args.apikey and (args.device_name or args.device_secret):
        parser.error("give --apikey or --device-name/--device-secret, not both")
    if args.dui:
        try:
            return DDSClient.for_dui(args.product_id, args.apikey, branch=args.dui,
                                     version=args.dui_version, device_name=args.device_name,
                                     device_secret=args.device_secret, **kwargs)
        except ValueError as exc:
            parser.error(str(exc))
    if args.url:
        kwargs["url"] = args.url
    try:
        return DDSClient(args.product_id, args.apikey, device_name=args.device_name,
                         device_secret=args.device_secret, **kwargs)
    except ValueError as exc:
        parser.error(str(exc))


def chat(client, printer, stdin, timeout):
    interactive = stdin.isatty()
    while True:
        if interactive:
            printer.out.write("你> ")
            printer.out.flush()
        line = stdin.readline()
        if not line:
            return
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            return
        if text == "/new":
            client.reset_session()
            printer.out.write("(new session)\n")
            continue
        printer.result(client.send_text(text).result(timeout))


def main(argv=None, stdin=None, stdout=None):
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    audio = []
    for item in args.audio:
        if item == "builtin":
            audio.append(("builtin", builtin_audio()))
        elif not os.path.isfile(item):
            parser.error("no such audio file: %s" % item)
        else:
            audio.append((item, item))
    printer = Printer(stdout, args.json)
    emulator = None
    try:
        if args.emulator:
            from .emulator import Emulator
            emulator = Emulator(transcript=args.transcript).start()
        client = make_client(args, parser, emulator, printer)
        with client:
            if not args.text and not audio:
                chat(client, printer, stdin, args.timeout)
            for text in args.text:
                printer.result(client.send_text(text).result(args.timeout))
            for _name, source in audio:
                request = client.send_audio_file(source, realtime=args.realtime,
                                                 real_back=True)
                printer.result(request.result(args.timeout))
    except DDSError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if emulator is not None:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
