"""dds_client benchmarks against its emulator (figures for bench/README.md; never a test).

    python bench/dds_bench.py                     # all three measurements
    python bench/dds_bench.py --skip-load         # only the text round trip and callback latency
    python bench/dds_bench.py --sessions 50       # a smaller concurrent audio run

1. Text-turn round trip: ``DDSClient.send_text().result()`` versus a raw websocket-client script
   (``create_connection``, ``send(json)``, ``recv()``), both against the standalone emulator in a
   subprocess, on one connection each.
2. Result-to-callback latency: from the emulator handing the dialogue frame to its socket (in-process
   emulator, its frame record's timestamp) to ``on_dialog`` running on the client's thread.
3. N concurrent audio sessions at real time in one process: N clients (one connection and one reader
   thread each) stream the bundled 16 kHz WAV in 100 ms frames paced by one scheduler thread, against
   the emulator in a subprocess; reports completions, wall time, late frames, RSS, threads and CPU.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import websocket  # noqa: E402

from dds_client import DDSClient  # noqa: E402
from dds_client.emulator import Emulator  # noqa: E402

SAMPLE = os.path.join(ROOT, "dds_client", "samples", "weather_16k.wav")
PRODUCT_ID, APIKEY = "100200300", "emulator-apikey"


def start_emulator_process():
    proc = subprocess.Popen([sys.executable, "-m", "dds_client.emulator", "--port", "0",
                             "--log-level", "ERROR"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("ws://"):
        proc.kill()
        raise SystemExit("emulator did not start")
    return proc, url


def stop_process(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_text(url, turns):
    """Alternating blocks of raw and client turns, so that drift hits all alike. The raw loop
    runs twice: websocket-client's defaults (pure-Python UTF-8 validation of every text frame)
    and with skip_utf8_validation=True, which is what DDSClient uses (it decodes in C)."""
    query = "%s?productId=%s&apikey=%s" % (url, PRODUCT_ID, APIKEY)
    raws = [("raw websocket-client script (defaults)", websocket.create_connection(query), []),
            ("raw websocket-client script (skip_utf8_validation=True)",
             websocket.create_connection(query, skip_utf8_validation=True), [])]
    client_times = []
    c = DDSClient(PRODUCT_ID, APIKEY, url=url).connect()
    try:
        for block in range(turns // 50 + 1):
            for _name, ws, times in raws:
                for i in range(50):
                    t0 = time.perf_counter()
                    ws.send(json.dumps({"topic": "nlu.input.text",
                                        "recordId": uuid.uuid4().hex, "refText": "你好"}))
                    json.loads(ws.recv())
                    if block:
                        times.append(time.perf_counter() - t0)
            for i in range(50):
                t0 = time.perf_counter()
                c.send_text("你好").result()
                if block:
                    client_times.append(time.perf_counter() - t0)
    finally:
        for _name, ws, _times in raws:
            ws.close()
        c.close()
    rows = []
    for name, values in [(n, t) for n, _ws, t in raws] + [("DDSClient.send_text().result()",
                                                           client_times)]:
        rows.append("| text turn RTT, %s | %d | %.3f ms | %.3f ms |" % (
            name, len(values), statistics.median(values) * 1e3, pct(values, 0.95) * 1e3))
    for name, _ws, times in raws:
        rows.append("| DDSClient overhead vs %s (median difference) | %d | %+.3f ms | |" % (
            name, len(client_times),
            (statistics.median(client_times) - statistics.median(times)) * 1e3))
    return rows


def bench_callback(turns):
    arrivals = {}
    with Emulator() as emu:
        def on_dialog(r):
            arrivals[r.record_id] = time.monotonic()
        with DDSClient(**emu.client_kwargs(), on_dialog=on_dialog) as c:
            for _ in range(turns + 20):
                c.send_text("你好").result()
        sent = {}
        for conn, direction, kind, data, t in emu.frames:
            if direction == "out" and kind == "text" and '"dm"' in data:
                sent[json.loads(data)["recordId"]] = t
    lat = [arrivals[rid] - sent[rid] for rid in list(arrivals)[20:] if rid in sent]
    return ["| result-to-callback latency (emulator send -> on_dialog) | %d | %.3f ms | %.3f ms |"
            % (len(lat), statistics.median(lat) * 1e3, pct(lat, 0.95) * 1e3)]


def bench_load(url, sessions):
    with open(SAMPLE, "rb") as f:
        data = f.read()
    frames = [data[i:i + 3200] for i in range(0, len(data), 3200)]
    interval = 0.1
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    rss0 = rss_mib()
    clients, streams = [], []
    t_connect = time.monotonic()
    for _ in range(sessions):
        c = DDSClient(PRODUCT_ID, APIKEY, url=url, timeout=60, connect_timeout=30)
        c.connect()
        clients.append(c)
    t_connect = time.monotonic() - t_connect
    threads_peak = threading.active_count()
    start = time.monotonic()
    for c in clients:
        streams.append(c.start_audio("wav", 16000, real_back=True, enable_vad=False))
    # One pacing thread drives every stream: frame k of every session is due at start + k*100 ms.
    late = []
    for k, frame in enumerate(frames):
        due = start + k * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        late.append(time.monotonic() - due)
        for s in streams:
            s.write(frame)
    ended = time.monotonic()
    for s in streams:
        s.end()
    results, failures = [], 0
    for s in streams:
        try:
            r = s.result(timeout=60)
            results.append(r)
        except Exception as exc:  # counted, reported below
            failures += 1
            print("session failed: %s" % exc, file=sys.stderr)
    finish_time = time.monotonic() - ended
    rss_peak = rss_mib()
    threads_peak = max(threads_peak, threading.active_count())
    for c in clients:
        c.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    wall = time.monotonic() - wall0
    ok = sum(1 for r in results if r.asr is not None and r.asr.text_compact == "今天天气怎么样")
    audio_s = len(data) / 32000.0
    return [
        "| concurrent audio sessions at real time (one process, %d x %.2f s WAV, 100 ms frames) "
        "| %d | %d/%d complete, %d failed | |" % (sessions, audio_s, sessions, ok, sessions,
                                                   failures),
        "| connect %d clients (sequential) | %d | %.2f s | |" % (sessions, sessions, t_connect),
        "| last result after the end frames (all sessions) | %d | %.2f s | |" % (
            sessions, finish_time),
        "| pacing lag of the frame scheduler (median / max) | %d | %.1f ms | %.1f ms |" % (
            len(late), statistics.median(late) * 1e3, max(late) * 1e3),
        "| client process RSS (before / with %d sessions) | | %.0f MiB | %.0f MiB |" % (
            sessions, rss0, rss_peak),
        "| client process threads (peak) | | %d | |" % threads_peak,
        "| client process CPU time (user+sys), connect to close, %.1f s wall | | %.1f s "
        "(%.0f%% of one core) | |" % (wall, cpu, 100.0 * cpu / wall),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=500)
    p.add_argument("--sessions", type=int, default=500)
    p.add_argument("--skip-load", action="store_true")
    args = p.parse_args()
    print("| measurement | n | median / value | p95 / max |")
    print("|---|---|---|---|")
    proc, url = start_emulator_process()
    try:
        for row in bench_text(url, args.turns):
            print(row, flush=True)
    finally:
        stop_process(proc)
    for row in bench_callback(args.turns):
        print(row, flush=True)
    if not args.skip_load:
        proc, url = start_emulator_process()
        try:
            for row in bench_load(url, args.sessions):
                print(row, flush=True)
        finally:
            stop_process(proc)
    print("websocket-client %s, Python %s, %d CPUs" % (
        websocket.__version__, sys.version.split()[0], os.cpu_count()))


if __name__ == "__main__":
    main()
