"""nls_lite benchmarks against the bundled emulator on loopback (a script, not a test).

    python bench/nls_bench.py                       # nls_lite and a raw websocket-client baseline
    PYTHONPATH=. /path/to/venv-with-nls/bin/python bench/nls_bench.py   # adds the vendor SDK side by side

Workloads:
  rate     sequential recognizer sessions (start, 10 x 3200 B frames, stop): sessions per second;
  latency  emulator send -> user callback for every transcriber result, 100 ms frames at real time;
  load     N concurrent transcriber sessions at real time (100 ms frames) in one process: all must
           complete; peak RSS, peak threads, CPU seconds of this process and of the emulator process.
The emulator runs in its own process for `rate` and `load`, and each client's load runs in a process of
its own (so CPU and peak RSS are that client's alone); for `latency` the emulator is in-process, so both
timestamps come from the same perf_counter.
"""
import argparse
import array
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

TOKEN, APPKEY = 'test-token', 'test-appkey'
FRAME = 3200   # 100 ms of 16 kHz 16-bit mono


def pcm(seconds_pattern):
    samples = array.array('h')
    for kind, seconds in seconds_pattern:
        n = int(16000 * seconds)
        if kind == 'tone':
            samples.extend(int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(n))
        else:
            samples.extend([0] * n)
    data = samples.tobytes()
    return [data[i:i + FRAME] for i in range(0, len(data), FRAME)]


def vendor_sdk():
    try:
        import nls
    except ImportError:
        return None
    if not hasattr(nls, 'NlsSpeechRecognizer') or 'nls_lite' in getattr(nls, '__file__', ''):
        return None
    return nls


class EmulatorProcess(object):
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, '-m', 'nls_lite.emulator', '--port', '0', '--log-level',
                                      'WARNING'], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        self.proc.stdout.readline()
        if not self.url.startswith('ws://'):
            raise SystemExit('emulator did not start')

    def cpu_seconds(self):
        with open('/proc/%d/stat' % self.proc.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


# -- the three clients, same workload ----------------------------------------------------------------

def lite_recognizer_session(url, frames):
    import nls_lite
    done = threading.Event()
    sr = nls_lite.NlsSpeechRecognizer(url=url, token=TOKEN, appkey=APPKEY, on_close=lambda *a: done.set())
    assert sr.start() is True
    for f in frames:
        sr.send_audio(f)
    assert sr.stop() is True
    assert done.is_set()


def vendor_recognizer_session(url, frames, nls):
    done = threading.Event()
    completed = []
    sr = nls.NlsSpeechRecognizer(url=url, token=TOKEN, appkey=APPKEY, on_completed=lambda m, *a: completed.append(m),
                                 on_close=lambda *a: done.set())
    sr.start()
    for f in frames:
        sr.send_audio(f)
    sr.stop()
    done.wait(10)
    assert completed


def raw_recognizer_session(url, frames):
    """What a careful hand-written websocket-client script does for the same session."""
    import uuid
    import websocket
    ws = websocket.create_connection(url, header=['X-NLS-Token: ' + TOKEN], timeout=10)
    task = uuid.uuid4().hex

    def cmd(name, payload=None):
        message = {'header': {'message_id': uuid.uuid4().hex, 'task_id': task, 'namespace': 'SpeechRecognizer',
                              'name': name, 'appkey': APPKEY}}
        if payload is not None:
            message['payload'] = payload
        return json.dumps(message)
    ws.send(cmd('StartRecognition', {'format': 'pcm', 'sample_rate': 16000}))
    assert json.loads(ws.recv())['header']['name'] == 'RecognitionStarted'
    for f in frames:
        ws.send_binary(f)
    ws.send(cmd('StopRecognition'))
    while json.loads(ws.recv())['header']['name'] != 'RecognitionCompleted':
        pass
    ws.close()


def bench_rate(url, sessions, nls):
    frames = pcm([('tone', 0.6), ('silence', 0.4)])
    rows = []
    runners = [('raw websocket-client', lambda: raw_recognizer_session(url, frames)),
               ('nls_lite', lambda: lite_recognizer_session(url, frames))]
    if nls:
        runners.append(('vendor nls 1.0.2', lambda: vendor_recognizer_session(url, frames, nls)))
    for name, run in runners:
        run()   # warm-up
        began = time.perf_counter()
        for _ in range(sessions):
            run()
        elapsed = time.perf_counter() - began
        rows.append((name, sessions / elapsed, elapsed / sessions * 1000))
    raw_ms = rows[0][2]
    print('\n## Sequential session rate (%d recognizer sessions, 10 frames of 100 ms each)\n' % sessions)
    print('| client | sessions/s | ms/session | time vs raw |')
    print('|---|---|---|---|')
    for name, rate, ms in rows:
        print('| %s | %.1f | %.2f | %.2fx |' % (name, rate, ms, ms / raw_ms))


def bench_latency(sessions, nls):
    from nls_lite.emulator import NlsEmulator
    from nls_lite.emulator import server as emu_server
    stamps = {}
    original = emu_server.Session.send

    async def stamped_send(self, message):
        if isinstance(message, str):
            stamps[message[message.index('"message_id":"') + 14:][:32]] = time.perf_counter()
        return await original(self, message)
    emu_server.Session.send = stamped_send
    frames = pcm([('tone', 1.5), ('silence', 1.0), ('tone', 1.5), ('silence', 1.0)])

    def measure(latencies):
        def on_result(message, *args):
            now = time.perf_counter()
            sent = stamps.get(json.loads(message)['header']['message_id'])
            if sent is not None:
                latencies.append((now - sent) * 1000)
        return on_result

    def lite(url, latencies):
        import nls_lite
        cb = measure(latencies)
        st = nls_lite.NlsSpeechTranscriber(url=url, token=TOKEN, appkey=APPKEY, on_sentence_begin=cb,
                                           on_sentence_end=cb, on_result_changed=cb)
        run_realtime(st, frames)

    def vendor(url, latencies):
        cb = measure(latencies)
        st = nls.NlsSpeechTranscriber(url=url, token=TOKEN, appkey=APPKEY, on_sentence_begin=cb,
                                      on_sentence_end=cb, on_result_changed=cb)
        run_realtime(st, frames)

    def raw(url, latencies):
        import uuid
        import websocket
        ws = websocket.create_connection(url, header=['X-NLS-Token: ' + TOKEN], timeout=10)
        task = uuid.uuid4().hex
        head = {'task_id': task, 'namespace': 'SpeechTranscriber', 'appkey': APPKEY}
        ws.send(json.dumps({'header': dict(head, message_id=uuid.uuid4().hex, name='StartTranscription'),
                            'payload': {'format': 'pcm', 'sample_rate': 16000, 'enable_intermediate_result': True}}))
        ws.recv()
        cb = measure(latencies)
        done = threading.Event()

        def reader():
            while True:
                message = ws.recv()
                if 'TranscriptionCompleted' in message:
                    done.set()
                    return
                cb(message)
        t = threading.Thread(target=reader)
        t.start()
        began = time.monotonic()
        for i, f in enumerate(frames):
            delay = began + i * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ws.send_binary(f)
        ws.send(json.dumps({'header': dict(head, message_id=uuid.uuid4().hex, name='StopTranscription')}))
        done.wait(10)
        t.join()
        ws.close()

    rows = []
    with NlsEmulator() as emu:
        for name, run in [('raw websocket-client', raw), ('nls_lite', lite)] + ([('vendor nls 1.0.2', vendor)] if nls else []):
            latencies = []
            for _ in range(sessions):
                run(emu.url, latencies)
            latencies.sort()
            q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
            rows.append((name, len(latencies), q(0.5), q(0.9), q(0.99), latencies[-1]))
    emu_server.Session.send = original
    print('\n## Result-to-callback latency (emulator send -> user callback, 100 ms frames, real time)\n')
    print('| client | results | p50 ms | p90 ms | p99 ms | max ms |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        print('| %s | %d | %.3f | %.3f | %.3f | %.3f |' % row)


def run_realtime(client, frames):
    client.start(enable_intermediate_result=True)
    began = time.monotonic()
    for i, f in enumerate(frames):
        delay = began + i * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.send_audio(f)
    return client.stop()


def load_worker(name, url, count, seconds):
    """One client's concurrent load in a process of its own, so that its peak RSS is its own."""
    module = vendor_sdk() if name == 'vendor' else __import__('nls_lite')
    frames = pcm([('tone', 1.0), ('silence', 0.9)] * max(1, int(seconds / 1.9)))
    ok, errors = [], []
    peak_threads = [threading.active_count()]
    stop_sampling = threading.Event()

    def sample():
        while not stop_sampling.wait(0.05):
            peak_threads[0] = max(peak_threads[0], threading.active_count())

    def session(i):
        try:
            st = module.NlsSpeechTranscriber(url=url, token=TOKEN, appkey=APPKEY,
                                             on_error=lambda m, *a: errors.append(m))
            result = run_realtime(st, frames)
            if result is False or (result is None and errors):
                errors.append('session %d: stop returned %r' % (i, result))
            else:
                ok.append(i)
        except Exception as exc:
            errors.append('session %d: %r' % (i, exc))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    threads = []
    for i in range(count):
        t = threading.Thread(target=session, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.002)   # a 1 s ramp, as real clients never arrive in one instant
    for t in threads:
        t.join(120)
    wall = time.monotonic() - began
    stop_sampling.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({'completed': len(ok), 'errors': len(errors), 'first_errors': [str(e) for e in errors[:3]],
                      'wall': wall, 'threads': peak_threads[0], 'rss_mib': usage.ru_maxrss / 1024.0,
                      'cpu': usage.ru_utime + usage.ru_stime, 'audio_s': len(frames) / 10.0}))


def bench_load(url, emulator, count, seconds, nls):
    rows = []
    for name, label in [('lite', 'nls_lite')] + ([('vendor', 'vendor nls 1.0.2')] if nls else []):
        emu_cpu0 = emulator.cpu_seconds()
        out = subprocess.run([sys.executable, os.path.abspath(__file__), '--load-worker', name, '--url', url,
                              '--concurrent', str(count), '--seconds', str(seconds)],
                             capture_output=True, text=True, timeout=600)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result['first_errors']:
            print('  %s first errors: %s' % (label, result['first_errors']), file=sys.stderr)
        rows.append((label, count, result['completed'], result['errors'], result['wall'], result['threads'],
                     result['rss_mib'], result['cpu'], emulator.cpu_seconds() - emu_cpu0))
        audio_s = result['audio_s']
    print('\n## %d concurrent real-time transcriber sessions (%.1f s of audio each, 100 ms frames)\n'
          % (count, audio_s))
    print('| client | sessions | completed | errors | wall s | peak threads | peak RSS MiB | client CPU s | emulator CPU s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        print('| %s | %d | %d | %d | %.1f | %d | %.0f | %.1f | %.1f |' % row)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sessions', type=int, default=200, help='sequential sessions for the rate test')
    parser.add_argument('--latency-sessions', type=int, default=3)
    parser.add_argument('--concurrent', type=int, default=500)
    parser.add_argument('--seconds', type=float, default=6.0, help='audio per concurrent session')
    parser.add_argument('--only', choices=('rate', 'latency', 'load'), action='append')
    parser.add_argument('--load-worker', choices=('lite', 'vendor'), help=argparse.SUPPRESS)
    parser.add_argument('--url', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_worker:
        return load_worker(args.load_worker, args.url, args.concurrent, args.seconds)
    nls = vendor_sdk()
    import websocket
    print('python %s, websocket-client %s, vendor SDK: %s' % (sys.version.split()[0], websocket.__version__,
                                                             'nls 1.0.2' if nls else 'not installed'))
    only = set(args.only or ('rate', 'latency', 'load'))
    if 'latency' in only:
        bench_latency(args.latency_sessions, nls)
    if only & {'rate', 'load'}:
        emulator = EmulatorProcess()
        try:
            if 'rate' in only:
                bench_rate(emulator.url, args.sessions, nls)
            if 'load' in only:
                bench_load(emulator.url, emulator, args.concurrent, args.seconds, nls)
        finally:
            emulator.close()


if __name__ == '__main__':
    main()
