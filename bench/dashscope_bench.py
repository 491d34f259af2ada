"""dashscope_asr benchmarks against the local emulator (never a test; figures go to bench/README.md).

    python bench/dashscope_bench.py                       # ours, all workloads
    python bench/dashscope_bench.py --vendor-python /tmp/ds-vendor/bin/python   # side by side

Workloads:
  latency     result-to-callback latency: the emulator's send time of each result-generated frame
              to the moment on_event runs, streaming the bundled sample in 100 ms frames at real time
  rate        sequential sessions per second with Recognition.call() on the bundled sample, against
              a raw websocket-client script speaking the same protocol
  concurrent  N sessions at once, each streaming 3 s of audio in 100 ms frames at real time: how
              many complete, client peak RSS, peak threads, client CPU seconds

The vendor SDK (``pip install dashscope``) runs the same workloads in a child process of its own
interpreter; ``dashscope_asr`` must be importable there (PYTHONPATH is set to this checkout).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SAMPLE = os.path.join(ROOT, 'dashscope_asr', 'samples', 'asr_example.wav')
KEY = 'sk-emulator'


def client_module(name):
    if name == 'vendor':
        import dashscope as module
    else:
        import dashscope_asr as module
    return module


def pct(values, p):
    values = sorted(values)
    if not values:
        return float('nan')
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(math.floor(k)), int(math.ceil(k))
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def rss_peak_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


# -- latency ---------------------------------------------------------------------------------------

def bench_latency(client, sessions):
    from dashscope_asr.emulator import Emulator
    ds = client_module(client)
    Recognition = ds.audio.asr.Recognition
    RecognitionCallback = ds.audio.asr.RecognitionCallback
    with open(SAMPLE, 'rb') as f:
        audio = f.read()
    frame = 3200  # 100 ms of 16 kHz pcm16
    latencies = []
    with Emulator(default_sentences=['北京今天天气怎么样？', '明天会下雨吗？']) as emu:
        emu.apply_to(ds)
        for _ in range(sessions):
            received = []

            class CB(RecognitionCallback):
                def on_event(self, result):
                    received.append(time.time())

            r = Recognition('paraformer-realtime-v2', CB(), 'wav', 16000)
            r.start()
            start = time.monotonic()
            for i in range(0, len(audio), frame):
                r.send_audio_frame(audio[i:i + frame])
                delay = start + (i + frame) / 32000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            r.stop()
            sent = [fr.t for fr in emu.records[-1].sent
                    if fr.json and fr.json['header']['event'] == 'result-generated']
            n = min(len(sent), len(received))
            latencies.extend((received[k] - sent[k]) * 1000.0 for k in range(n))
    return {'results': len(latencies), 'p50_ms': pct(latencies, 50), 'p90_ms': pct(latencies, 90),
            'max_ms': max(latencies) if latencies else float('nan')}


# -- session rate ----------------------------------------------------------------------------------

def raw_session(url, audio):
    """The seed's protocol with a bare websocket-client connection, as a hand-written client does."""
    import uuid
    import websocket
    ws = websocket.create_connection(url, header=['Authorization: Bearer ' + KEY], timeout=30,
                                     suppress_origin=True)
    try:
        task_id = uuid.uuid4().hex
        ws.send(json.dumps({'header': {'streaming': 'duplex', 'task_id': task_id,
                                       'action': 'run-task'},
                            'payload': {'model': 'paraformer-realtime-v2',
                                        'parameters': {'sample_rate': 16000, 'format': 'wav'},
                                        'input': {}, 'task': 'asr', 'task_group': 'audio',
                                        'function': 'recognition'}}))
        assert json.loads(ws.recv())['header']['event'] == 'task-started'
        done = threading.Event()
        finals = []

        def read():
            while True:
                msg = json.loads(ws.recv())
                event = msg['header']['event']
                if event == 'result-generated':
                    if msg['payload']['output']['sentence']['end_time'] is not None:
                        finals.append(msg)
                else:
                    done.set()
                    return

        reader = threading.Thread(target=read)
        reader.start()
        for i in range(0, len(audio), 12800):
            ws.send_binary(audio[i:i + 12800])
        ws.send(json.dumps({'header': {'streaming': 'duplex', 'task_id': task_id,
                                       'action': 'finish-task'}, 'payload': {'input': {}}}))
        done.wait(30)
        reader.join(30)
        return len(finals)
    finally:
        ws.close()


def bench_rate(client, url, http_url, sessions):
    with open(SAMPLE, 'rb') as f:
        audio = f.read()
    out = {}
    if client == 'ours':
        began = time.perf_counter()
        for _ in range(sessions):
            assert raw_session(url, audio) >= 1
        out['raw_sessions_per_s'] = sessions / (time.perf_counter() - began)
    ds = client_module(client)
    ds.api_key = KEY
    ds.base_websocket_api_url = url
    Recognition = ds.audio.asr.Recognition
    began = time.perf_counter()
    for _ in range(sessions):
        result = Recognition('paraformer-realtime-v2', None, 'wav', 16000).call(SAMPLE)
        assert result.status_code == 200 and result.get_sentence(), result
    out['sessions_per_s'] = sessions / (time.perf_counter() - began)
    return out


# -- concurrency -----------------------------------------------------------------------------------

def bench_concurrent(client, url, sessions, seconds=3.0):
    ds = client_module(client)
    ds.api_key = KEY
    ds.base_websocket_api_url = url
    Recognition = ds.audio.asr.Recognition
    RecognitionCallback = ds.audio.asr.RecognitionCallback
    n = int(16000 * seconds)
    # 1 s tone, 1 s silence, ...: a sentence per second of speech
    samples = array('h', (int(6000 * math.sin(2 * math.pi * 300 * i / 16000.0))
                          if (i // 16000) % 2 == 0 else 0 for i in range(n)))
    audio = samples.tobytes()
    frames = [audio[i:i + 3200] for i in range(0, len(audio), 3200)]
    completed = []
    errors = []
    lock = threading.Lock()

    class CB(RecognitionCallback):
        def on_complete(self):
            with lock:
                completed.append(1)

        def on_error(self, result):
            with lock:
                errors.append('%s %s %s' % (result.status_code, result.code, result.message))

    cpu0 = sum(os.times()[:2])
    began = time.monotonic()
    recs = []
    for _ in range(sessions):
        r = Recognition('paraformer-realtime-v2', CB(), 'pcm', 16000)
        r.start()
        recs.append(r)
    peak_threads = threading.active_count()
    start = time.monotonic()
    for k, chunk in enumerate(frames):
        for r in recs:
            try:
                r.send_audio_frame(chunk)
            except Exception:
                pass  # a failed session: counted through on_error
        peak_threads = max(peak_threads, threading.active_count())
        delay = start + (k + 1) * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    stop_began = time.monotonic()
    for r in recs:
        try:
            r.stop()
        except Exception:
            pass
    wall = time.monotonic() - began
    cpu = sum(os.times()[:2]) - cpu0
    time.sleep(0.5)
    return {'sessions': sessions, 'completed': len(completed), 'errors': len(errors),
            'first_error': errors[0] if errors else '', 'wall_s': wall,
            'stop_all_s': time.monotonic() - 0.5 - stop_began,
            'peak_rss_mb': rss_peak_mb(), 'peak_threads': peak_threads, 'client_cpu_s': cpu,
            'threads_after': threading.active_count(), 'audio_s': seconds}


# -- driver ----------------------------------------------------------------------------------------

def run_child(python, args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               NO_PROXY='127.0.0.1,localhost')
    out = subprocess.run([python, os.path.abspath(__file__)] + args + ['--json'], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit('child %s failed' % python)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_emulator():
    proc = subprocess.Popen([sys.executable, '-m', 'dashscope_asr.emulator', '--port', '0',
                             '--api-key', KEY, '--log-level', 'WARNING',
                             '--transcript', '北京今天天气怎么样？明天会下雨吗？'],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    url = proc.stdout.readline().strip()
    http_url = proc.stdout.readline().strip()
    return proc, url, http_url


def measure(client, workloads, args, url, http_url):
    result = {}
    if 'latency' in workloads:
        result['latency'] = bench_latency(client, args.latency_sessions)
    if 'rate' in workloads:
        result['rate'] = bench_rate(client, url, http_url, args.rate_sessions)
    if 'concurrent' in workloads:
        result['concurrent'] = bench_concurrent(client, url, args.sessions)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--client', choices=('ours', 'vendor'), default='ours')
    parser.add_argument('--workload', default='latency,rate,concurrent')
    parser.add_argument('--sessions', type=int, default=500, help='concurrent sessions')
    parser.add_argument('--rate-sessions', type=int, default=50)
    parser.add_argument('--latency-sessions', type=int, default=5)
    parser.add_argument('--vendor-python', help='interpreter with the vendor SDK installed')
    parser.add_argument('--url', help=argparse.SUPPRESS)
    parser.add_argument('--http-url', help=argparse.SUPPRESS)
    parser.add_argument('--json', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    workloads = args.workload.split(',')
    if args.json:  # child mode: one client, print JSON
        print(json.dumps(measure(args.client, workloads, args, args.url, args.http_url)))
        return 0
    proc, url, http_url = start_emulator()
    try:
        child_args = ['--workload', args.workload, '--sessions', str(args.sessions),
                      '--rate-sessions', str(args.rate_sessions),
                      '--latency-sessions', str(args.latency_sessions), '--url', url,
                      '--http-url', http_url]
        ours = run_child(sys.executable, child_args + ['--client', 'ours'])
        vendor = (run_child(args.vendor_python, child_args + ['--client', 'vendor'])
                  if args.vendor_python else None)
    finally:
        proc.terminate()
        proc.wait(10)
    print_table(ours, vendor, args)
    return 0


def fmt(v):
    if isinstance(v, float):
        return '%.2f' % v if abs(v) < 100 else '%.0f' % v
    return str(v)


def print_table(ours, vendor, args):
    rows = []

    def row(name, key_path, better='lower'):
        def get(d):
            for k in key_path:
                if d is None or k not in d:
                    return None
                d = d[k]
            return d
        a, b = get(ours), get(vendor)
        if a is None:
            return
        ratio = ''
        if better != 'none' and isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
            ratio = '%.2fx' % ((b / a) if better == 'lower' else (a / b))
        rows.append((name, fmt(a), fmt(b) if b is not None else '-', ratio))

    row('result→on_event latency p50 (ms), 100 ms frames', ('latency', 'p50_ms'))
    row('result→on_event latency p90 (ms)', ('latency', 'p90_ms'))
    row('result→on_event latency max (ms)', ('latency', 'max_ms'))
    row('results measured', ('latency', 'results'), better='none')
    row('call() sessions/s (sequential)', ('rate', 'sessions_per_s'), better='higher')
    row('raw websocket-client script sessions/s', ('rate', 'raw_sessions_per_s'), better='none')
    row('concurrent sessions started', ('concurrent', 'sessions'), better='none')
    row('concurrent sessions completed', ('concurrent', 'completed'), better='higher')
    row('concurrent errors', ('concurrent', 'errors'), better='none')
    row('concurrent wall time (s, 3 s audio each)', ('concurrent', 'wall_s'))
    row('client peak RSS (MB)', ('concurrent', 'peak_rss_mb'))
    row('client peak threads', ('concurrent', 'peak_threads'))
    row('client CPU (s)', ('concurrent', 'client_cpu_s'))
    row('threads left after stop()', ('concurrent', 'threads_after'), better='none')
    print('| workload | dashscope_asr | dashscope %s | vendor/ours (>1: ours better) |'
          % ('2.0.2' if vendor else '(not run)'))
    print('|---|---|---|---|')
    for r in rows:
        print('| %s | %s | %s | %s |' % r)
    if ours.get('rate', {}).get('raw_sessions_per_s'):
        print('\nours vs raw websocket-client script: %.2f of the raw rate' % (
            ours['rate']['sessions_per_s'] / ours['rate']['raw_sessions_per_s']))
    for name, d in (('ours', ours), ('vendor', vendor)):
        if d and d.get('concurrent', {}).get('first_error'):
            print('%s first error: %s' % (name, d['concurrent']['first_error']))


if __name__ == '__main__':
    sys.exit(main())
