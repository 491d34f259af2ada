"""Run the vendor's own SDK (``import nls``, alibabacloud-nls-python-sdk) against the nls_lite emulator.

Not a test (CI has no vendor SDK); run it by hand from the repository root with a Python that has the
vendor SDK installed, e.g.:

    python -m venv /tmp/nls-vendor
    /tmp/nls-vendor/bin/pip install --no-deps alibabacloud-nls-python-sdk aliyun-python-sdk-core \
        websocket-client jmespath cryptography
    /tmp/nls-vendor/bin/python bench/nls_vendor_check.py

The emulator runs in a subprocess of EMULATOR_PYTHON (default: the ``python`` on PATH, which must have
this project and websockets installed). Exits 0 when every check passed.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import wave

import nls
from nls.token import getToken

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(ROOT, 'nls_lite', 'samples', 'beijing_weather.wav')
TOKEN = 'vendor-token'
APPKEY = 'vendor-appkey'
AKID, AKSECRET = 'vendor_akid', 'vendor_aksecret'


def start_emulator():
    python = os.environ.get('EMULATOR_PYTHON') or shutil.which('python3') or shutil.which('python')
    cmd = [python, '-m', 'nls_lite.emulator', '--port', '0', '--token', TOKEN, '--appkey', APPKEY,
           '--akid', AKID, '--aksecret', AKSECRET, '--transcript', '北京的天气。', '--log-level', 'WARNING']
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend([proc.stdout.readline(), proc.stdout.readline()]),
                              daemon=True)
    reader.start()
    reader.join(20)
    if len(lines) < 2 or not lines[0].startswith('ws://'):
        proc.kill()
        raise SystemExit('emulator did not start: %r' % (lines,))
    return proc, lines[0].strip(), lines[1].strip()


def load_pcm():
    with wave.open(SAMPLE, 'rb') as w:
        return w.readframes(w.getnframes())


class TestSr:
    """Seed 004's sample class, unchanged apart from URL/TOKEN/APPKEY and recording the callbacks."""

    def __init__(self, tid, data, url, events):
        self.__th = threading.Thread(target=self.__test_run)
        self.__id = tid
        self.__data = data
        self.url = url
        self.events = events

    def start(self):
        self.__th.start()

    def join(self, timeout):
        self.__th.join(timeout)

    def test_on_start(self, message, *args):
        print("test_on_start:{}".format(message))
        self.events.append(('start', message, args))

    def test_on_error(self, message, *args):
        print("on_error args=>{}".format(args))
        self.events.append(('error', message, args))

    def test_on_close(self, *args):
        print("on_close: args=>{}".format(args))
        self.events.append(('close', None, args))

    def test_on_result_chg(self, message, *args):
        print("test_on_chg:{}".format(message))
        self.events.append(('changed', message, args))

    def test_on_completed(self, message, *args):
        print("on_completed:args=>{} message=>{}".format(args, message))
        self.events.append(('completed', message, args))

    def __test_run(self):
        print("thread:{} start..".format(self.__id))
        sr = nls.NlsSpeechRecognizer(
            url=self.url, token=TOKEN, appkey=APPKEY,
            on_start=self.test_on_start, on_result_changed=self.test_on_result_chg,
            on_completed=self.test_on_completed, on_error=self.test_on_error, on_close=self.test_on_close,
            callback_args=[self.__id])
        print("{}: session start".format(self.__id))
        r = sr.start(aformat="pcm", ex={"hello": 123})
        self.__slices = zip(*(iter(self.__data),) * 640)
        for i in self.__slices:
            sr.send_audio(bytes(i))
            time.sleep(0.01)
        r = sr.stop()
        print("{}: sr stopped:{}".format(self.__id, r))
        time.sleep(1)


def run_transcriber(url, data):
    events = []

    def cb(kind):
        return lambda message=None, *args: events.append((kind, message, args))

    st = nls.NlsSpeechTranscriber(
        url=url, token=TOKEN, appkey=APPKEY, on_sentence_begin=cb('begin'), on_sentence_end=cb('end'),
        on_start=cb('start'), on_result_changed=cb('changed'), on_completed=cb('completed'),
        on_error=cb('error'), on_close=lambda *args: events.append(('close', None, args)),
        callback_args=['st0'])
    st.start(aformat="pcm", enable_intermediate_result=True, enable_punctuation_prediction=True,
             enable_inverse_text_normalization=True)
    for i in range(0, len(data) - 639, 640):
        st.send_audio(data[i:i + 640])
        time.sleep(0.01)
    st.ctrl(ex={"test": "tttt"})
    st.stop()
    st.shutdown()
    return events


def main():
    proc, url, token_url = start_emulator()
    failures = []
    try:
        print('emulator:', url, token_url)
        data = load_pcm()
        # 1. Seed 004 sample (recognizer), the vendor's duplicate handshake headers included.
        events = []
        t = TestSr('thread0', data, url, events)
        t.start()
        t.join(30)
        kinds = [e[0] for e in events]
        completed = [json.loads(m) for k, m, _ in events if k == 'completed']
        print('recognizer callbacks:', kinds)
        if kinds[:2] != ['start', 'completed'] or 'close' not in kinds or 'error' in kinds:
            failures.append('recognizer callback order %s' % kinds)
        if not completed or completed[0]['payload']['result'] != '北京的天气':
            failures.append('recognizer result %r' % (completed,))
        if any(e[2] != ('thread0',) for e in events):
            failures.append('callback_args %r' % ([e[2] for e in events],))
        # 2. Transcriber sample flow (tests/test_st.py shape).
        events = run_transcriber(url, data)
        kinds = [e[0] for e in events]
        print('transcriber callbacks:', kinds)
        ends = [json.loads(m)['payload']['result'] for k, m, _ in events if k == 'end']
        print('transcriber sentences:', ends)
        if kinds[0] != 'start' or 'begin' not in kinds or 'changed' not in kinds or 'completed' not in kinds \
                or 'error' in kinds:
            failures.append('transcriber callbacks %s' % kinds)
        if ends != ['北京的天气。']:
            failures.append('transcriber sentences %r' % (ends,))
        # 3. Token through aliyunsdkcore (plain HTTP POST with SignatureType=).
        host = token_url.split('//', 1)[1].rstrip('/')
        token = getToken(AKID, AKSECRET, url=host)
        print('getToken ->', token)
        if not token or len(token) != 32:
            failures.append('getToken returned %r' % (token,))
        # 4. A token issued by CreateToken opens a session.
        got = []
        sr = nls.NlsSpeechRecognizer(url=url, token=token, appkey=APPKEY,
                                     on_start=lambda m, *a: got.append('start'),
                                     on_completed=lambda m, *a: got.append(json.loads(m)['payload']['result']))
        sr.start(aformat='pcm')
        sr.send_audio(data[:32000])
        sr.stop()
        sr.shutdown()
        print('session with issued token:', got)
        if got[:1] != ['start'] or len(got) < 2:
            failures.append('issued token session %r' % (got,))
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = 'killed'
        print('emulator exit code:', code)
        if code != 0:
            failures.append('emulator exit code %r' % (code,))
    if failures:
        print('FAILED:\n  ' + '\n  '.join(failures))
        return 1
    print('OK: the vendor SDK works against the emulator unchanged')
    return 0


if __name__ == '__main__':
    sys.exit(main())
