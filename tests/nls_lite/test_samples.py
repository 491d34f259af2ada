"""Vendor sample programs run unchanged apart from the import line and the URL, and the CLI demo."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nls_helpers import make_pcm

SEED = Path(__file__).resolve().parents[3] / 'shared' / 'seeds' / '004_9291abd1576775c5.txt'
REPO = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + sys.path), PYTHONIOENCODING='utf-8')
    env.update(extra)
    return env


def seed_sample():
    if not SEED.exists():
        pytest.skip('the seed pages (../shared/seeds) are not next to this checkout')
    blocks = re.findall(r'```python\n(.*?)```', SEED.read_text(encoding='utf-8'), re.S)
    sample = [b for b in blocks if 'NlsSpeechRecognizer' in b]
    assert len(sample) == 1, 'seed 004 should hold exactly one recognizer sample'
    return sample[0]


@pytest.mark.nls_emulator(accept_any_token=True, accept_any_appkey=True)
def test_seed_004_sample_runs_unchanged(nls_emulator, tmp_path):
    code = seed_sample()
    assert code.count('\nimport nls\n') == 1
    assert code.count('URL="wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1"') == 1
    code = code.replace('\nimport nls\n', '\nimport nls_lite as nls\n')
    code = code.replace('URL="wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1"', 'URL="%s"' % nls_emulator.url)
    (tmp_path / 'tests').mkdir()
    (tmp_path / 'tests' / 'test1.pcm').write_bytes(make_pcm([('tone', 1.2), ('silence', 0.3)]))
    (tmp_path / 'sample.py').write_text(code, encoding='utf-8')
    result = subprocess.run([sys.executable, 'sample.py'], cwd=str(tmp_path), env=_env(),
                            capture_output=True, text=True, encoding='utf-8', timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    markers = ['thread:thread0 start..', 'thread0: session start', 'test_on_start:',
               "on_completed:args=>('thread0',) message=>", "on_close: args=>('thread0',)",
               'thread0: sr stopped:True']
    positions = [next(i for i, line in enumerate(lines) if line.startswith(m)) for m in markers]
    assert positions == sorted(positions), result.stdout
    assert '北京的天气' in lines[positions[3]]
    assert 'on_error' not in result.stdout and result.stderr == ''
    record, = nls_emulator.wait_for_sessions(1)
    assert record.token == 'yourToken' and record.appkey == 'yourAppkey'
    assert record.received[0]['payload']['hello'] == 123
    assert record.binary_frames == len(make_pcm([('tone', 1.2), ('silence', 0.3)])) // 640


TRANSCRIBER_SAMPLE = '''
import os, time
import nls_lite as nls

class TestSt:
    def __init__(self, tid, data):
        self.id, self.data = tid, data
    def on_sentence_begin(self, message, *args): print("begin", args)
    def on_sentence_end(self, message, *args): print("end", args, message)
    def on_start(self, message, *args): print("start", args)
    def on_error(self, message, *args): print("error", args, message)
    def on_close(self, *args): print("close", args)
    def on_result_chg(self, message, *args): print("chg", args)
    def on_completed(self, message, *args): print("completed", args)
    def run(self):
        sr = nls.NlsSpeechTranscriber(token=os.environ["TEST_ACCESS_TOKEN"], appkey=os.environ["TEST_ACCESS_APPKEY"],
                                      on_sentence_begin=self.on_sentence_begin, on_sentence_end=self.on_sentence_end,
                                      on_start=self.on_start, on_result_changed=self.on_result_chg,
                                      on_completed=self.on_completed, on_error=self.on_error, on_close=self.on_close,
                                      callback_args=[self.id])
        for _ in range(2):   # the vendor loops forever on one object; twice shows the reuse
            sr.start(aformat="pcm", enable_intermediate_result=True, enable_punctuation_prediction=True,
                     enable_inverse_text_normalization=True)
            for i in range(0, len(self.data) - 639, 640):
                sr.send_audio(self.data[i:i + 640])
                time.sleep(0.001)
            sr.ctrl(ex={"test": "tttt"})
            print("stopped", sr.stop())

TestSt("thread0", open("test1.pcm", "rb").read()).run()
'''


def test_vendor_style_transcriber_without_url_uses_nls_lite_url(nls_emulator, tmp_path):
    """The vendor's tests/test_st.py shape: no url argument, credentials from the environment."""
    (tmp_path / 'test1.pcm').write_bytes(make_pcm([('tone', 0.8), ('silence', 1.0), ('tone', 0.6), ('silence', 0.9)]))
    (tmp_path / 'st.py').write_text(TRANSCRIBER_SAMPLE, encoding='utf-8')
    env = _env(NLS_LITE_URL=nls_emulator.url, TEST_ACCESS_TOKEN='test-token', TEST_ACCESS_APPKEY='test-appkey')
    result = subprocess.run([sys.executable, 'st.py'], cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, encoding='utf-8', timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("start ('thread0',)") == 2 and out.count('stopped True') == 2
    assert out.count("close ('thread0',)") == 2 and 'error' not in out
    assert out.count("begin ('thread0',)") == 4 and "chg ('thread0',)" in out
    assert len(nls_emulator.wait_for_sessions(2)) == 2


def _cli(*args, **env):
    return subprocess.run([sys.executable, '-m', 'nls_lite'] + list(args), env=_env(**env), capture_output=True,
                          text=True, encoding='utf-8', timeout=60, cwd=str(REPO))


def test_cli_demo_transcribes_the_bundled_sample():
    result = _cli('--emulator')
    assert result.returncode == 0, result.stderr
    assert '北京的天气。' in result.stdout
    assert re.search(r'^\[1\] \d+\.\d\d-\d+\.\d\ds 北京的天气。$', result.stdout, re.M), result.stdout


def test_cli_recognizer_mode_with_a_raw_pcm_file(tmp_path):
    (tmp_path / 'a.pcm').write_bytes(make_pcm([('tone', 0.6), ('silence', 0.2)]))
    result = _cli(str(tmp_path / 'a.pcm'), '--emulator', '--mode', 'recognizer', '--transcript', '你好。')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == '你好。'


def test_cli_failures_are_one_line_and_non_zero(tmp_path):
    result = _cli('--url', 'ws://127.0.0.1:9/ws/v1', '--token', 'x', '--appkey', 'y', NLS_TOKEN='', NLS_APPKEY='')
    assert result.returncode == 1
    assert result.stderr.startswith('nls_lite: error: TaskFailed 10000015 SDK:CONNECT_FAILED:')
    assert result.stderr.count('\n') == 1
    result = _cli(NLS_TOKEN='', NLS_APPKEY='', ALIBABA_CLOUD_ACCESS_KEY_ID='', ALIBABA_CLOUD_ACCESS_KEY_SECRET='')
    assert result.returncode == 1 and 'appkey' in result.stderr and result.stderr.count('\n') == 1
    result = _cli(str(tmp_path / 'missing.wav'), '--emulator')
    assert result.returncode == 1 and 'cannot read' in result.stderr
