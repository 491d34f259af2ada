#!/usr/bin/env python
"""sis_rasr benchmarks against the bundled emulator (loopback only). Prints a markdown table.

    python bench/sis_bench.py                    # everything, 500 concurrent sessions
    python bench/sis_bench.py --sessions 50      # smaller concurrency run
    python bench/sis_bench.py --skip-concurrency

Measures: close() latency (the vendor SDK 1.8.1 blocks for connect_lost_timeout, 10 s with its defaults);
session rate of sis_rasr versus a raw websocket-client script doing the same frames; result-to-callback
latency (emulator send -> on_response, same process clock); N concurrent continuous-mode sessions streaming
the bundled sample at real time from one client process, against an emulator in a separate process.
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
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import websocket  # noqa: E402

from sis_rasr import RasrCallBack, RasrClient, RasrRequest, SisConfig  # noqa: E402
from sis_rasr.auth import aksk_service  # noqa: E402
from sis_rasr.emulator import SisEmulator  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(HERE), 'sis_rasr', 'samples', 'sis_rasr_zh16k.wav')
START = json.dumps(RasrRequest('pcm16k16bit', 'chinese_16k_general').construct_params())
END = '{"command": "END", "cancel": "false"}'


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


class Collect(RasrCallBack):
    def __init__(self):
        self.arrivals = []
        self.finals = []
        self.errors = []
        self.closed = threading.Event()

    def on_response(self, message):
        self.arrivals.append(time.time())
        for seg in message['segments']:
            if seg['is_final']:
                self.finals.append(seg['result']['text'])

    def on_error(self, error):
        self.errors.append(error)

    def on_close(self):
        self.closed.set()


def client_for(emu_like, cb, **kw):
    config = SisConfig()
    config.set_connect_timeout(30)
    return RasrClient(ak=emu_like['ak'], sk=emu_like['sk'], use_aksk=True, region='cn-north-4',
                      project_id=emu_like['project_id'], callback=cb, config=config,
                      service_endpoint=emu_like['endpoint'], **kw)


def bench_close(emu, n):
    times = []
    for _ in range(n):
        cb = Collect()
        c = client_for(emu, cb)
        c.continue_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
        c.send_start()
        c.send_end()
        t0 = time.perf_counter()
        c.close()
        times.append((time.perf_counter() - t0) * 1000)
        assert cb.closed.is_set()
    return times


def bench_session_rate(emu, n):
    def sis_session():
        cb = Collect()
        c = client_for(emu, cb)
        c.short_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
        c.send_start()
        c.send_end()
        c.close()

    url = emu['endpoint'] + '/v1/' + emu['project_id'] + '/rasr/short-stream'

    def raw_session():
        headers = aksk_service.get_signed_headers(emu['ak'], emu['sk'], 'http' + url[2:], None, None, 'GET')
        host = headers.pop('host')
        ws = websocket.create_connection(url, header=headers, host=host, timeout=10)
        ws.send(START)
        ws.recv()
        ws.send(END)
        while json.loads(ws.recv())['resp_type'] != 'END':
            pass
        ws.close()

    # Interleaved rounds, so drift in the (shared) machine's load hits both alike.
    spent = {'raw websocket-client': 0.0, 'sis_rasr': 0.0}
    fns = (('raw websocket-client', raw_session), ('sis_rasr', sis_session))
    for _, fn in fns:
        fn()
    rounds = 4
    for _ in range(rounds):
        for name, fn in fns:
            t0 = time.perf_counter()
            for _ in range(n // rounds):
                fn()
            spent[name] += time.perf_counter() - t0
    return dict((name, (n // rounds) * rounds / t) for name, t in spent.items())


def bench_result_latency(emu_obj, emu):
    emu_obj.interim_interval_ms = 20
    cb = Collect()
    c = client_for(emu, cb)
    req = RasrRequest('pcm16k16bit', 'chinese_16k_general')
    req.set_interim_results('yes')
    c.continue_stream_connect(req)
    c.send_start()
    with wave.open(SAMPLE) as w:
        pcm = w.readframes(w.getnframes())
    n_before = len(emu_obj.connections)
    c.send_audio(pcm * 3, byte_len=1280, sleep_time=0.002)
    c.send_end()
    c.close()
    record = emu_obj.connections[n_before - 1]
    sent = [t for t, _, text in record.sent if '"resp_type":"RESULT"' in text]
    latencies = [(arrival - s) * 1000 for s, arrival in zip(sent, cb.arrivals)]
    return latencies


class EmulatorProcess(object):
    """ python -m sis_rasr.emulator in its own process, so client figures are the client's alone. """

    def __enter__(self):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        self.proc = subprocess.Popen([sys.executable, '-m', 'sis_rasr.emulator', '--port', '0', '--transcript',
                                      '北京今天天气怎么样？'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env)
        from sis_rasr.emulator import DEFAULT_AK, DEFAULT_SK, DEFAULT_PROJECT_ID
        return {'ak': DEFAULT_AK, 'sk': DEFAULT_SK, 'project_id': DEFAULT_PROJECT_ID,
                'endpoint': self.proc.stdout.readline().decode().strip()}

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


def bench_concurrency(emu, n, stagger_s):
    with wave.open(SAMPLE) as w:
        pcm = w.readframes(w.getnframes())
    audio_s = len(pcm) / 32000.0
    results = []
    lock = threading.Lock()
    peak_threads = [threading.active_count()]
    stop = threading.Event()

    def sampler():
        while not stop.wait(0.1):
            peak_threads[0] = max(peak_threads[0], threading.active_count())

    def session(i):
        time.sleep(stagger_s * i / n)
        cb = Collect()
        t0 = time.perf_counter()
        ok = False
        try:
            c = client_for(emu, cb)
            try:
                c.continue_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
                c.send_start()
                c.send_audio(pcm, byte_len=3200, sleep_time=0.1)   # 100 ms frames at real time
                c.send_end()
            finally:
                c.close()
            ok = cb.finals == ['北京今天天气怎么样'] and not cb.errors
        except Exception as e:  # counted as a failure
            cb.errors.append(e)
        with lock:
            results.append((ok, time.perf_counter() - t0, cb.errors[:1]))

    threading.Thread(target=sampler, daemon=True).start()
    cpu0 = os.times()
    wall0 = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    stop.set()
    time.sleep(0.3)
    leftover = threading.active_count()
    durations = [d for ok, d, _ in results if ok]
    failures = [e for ok, _, e in results if not ok]
    return {'n': n, 'ok': len(durations), 'failures': failures[:3], 'audio_s': audio_s, 'wall': wall,
            'session_p50': statistics.median(durations) if durations else 0,
            'session_max': max(durations) if durations else 0,
            'cpu': (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
            'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            'peak_threads': peak_threads[0], 'leftover_threads': leftover}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--sessions', type=int, default=500)
    p.add_argument('--stagger', type=float, default=2.0, help='spread session starts over this many seconds')
    p.add_argument('--close-n', type=int, default=50)
    p.add_argument('--rate-n', type=int, default=200)
    p.add_argument('--skip-concurrency', action='store_true')
    args = p.parse_args()
    rows = []
    with SisEmulator() as emu_obj:
        emu = {'ak': emu_obj.ak, 'sk': emu_obj.sk, 'project_id': emu_obj.project_id, 'endpoint': emu_obj.ws_endpoint}
        lat = bench_result_latency(emu_obj, emu)
    with EmulatorProcess() as emu:
        closes = bench_close(emu, args.close_n)
        rows.append(('close() latency (n=%d, after END)' % args.close_n,
                     'p50 %.2f ms, max %.2f ms (target < 50 ms; vendor 1.8.1: connect_lost_timeout, 10 s by default)'
                     % (statistics.median(closes), max(closes))))
        rates = bench_session_rate(emu, args.rate_n)
        rows.append(('session rate, connect+START+END+close (n=%d, sequential)' % args.rate_n,
                     'sis_rasr %.0f/s vs raw websocket-client script %.0f/s (%.0f%%)'
                     % (rates['sis_rasr'], rates['raw websocket-client'],
                        100.0 * rates['sis_rasr'] / rates['raw websocket-client'])))
        rows.append(('result-to-callback latency (n=%d RESULTs, emulator in process)' % len(lat),
                     'p50 %.3f ms, p99 %.3f ms (target p50 < 1 ms)' % (pct(lat, 50), pct(lat, 99))))
        if not args.skip_concurrency:
            r = bench_concurrency(emu, args.sessions, args.stagger)
            rows.append(('%d concurrent continuous sessions, %.1f s sample at real time (100 ms frames)'
                         % (r['n'], r['audio_s']),
                         '%d/%d complete with the right final, wall %.1f s, session p50 %.2f s / max %.2f s'
                         % (r['ok'], r['n'], r['wall'], r['session_p50'], r['session_max'])))
            rows.append(('  client process resources',
                         'peak RSS %.0f MB, peak threads %d, CPU %.1f s (%.0f%% of one core), threads left %d'
                         % (r['rss_mb'], r['peak_threads'], r['cpu'], 100.0 * r['cpu'] / r['wall'],
                            r['leftover_threads'])))
            if r['failures']:
                rows.append(('  first failures', repr(r['failures'])))
    print('| measurement | sis_rasr |')
    print('|---|---|')
    for name, value in rows:
        print('| %s | %s |' % (name, value))


if __name__ == '__main__':
    main()
