"""The seed 003 vendor sample runs unchanged apart from the import prefix (and its fill-in values)."""
import os
import re
import subprocess
import sys

import pytest

from sis_helpers import SAMPLE_WAV

SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'seeds',
                    '003_f162101b98745d82.txt')


def seed_sample():
    if not os.path.exists(SEED):
        pytest.skip('seed 003 not available')
    with open(SEED, encoding='utf-8') as f:
        text = f.read()
    code = re.search(r'```\n(# -\*- coding: utf-8 -\*-.*?)```', text, re.S).group(1)
    assert 'from huaweicloud_sis.client.rasr_client import RasrClient' in code
    return code


def fill(code, values):
    """The sample's globals are '' placeholders the user fills in; fill them, change nothing else."""
    for name, value in values.items():
        code, n = re.subn(r"^%s = ''" % name, '%s = %r' % (name, value), code, count=1, flags=re.M)
        assert n == 1, name
    return code.replace('huaweicloud_sis.', 'sis_rasr.')


@pytest.mark.parametrize('mode', ['continue_stream_connect', 'sentence_stream_connect', 'short_stream_connect'])
def test_seed_sample_runs_against_the_emulator(sis_emulator, tmp_path, mode):
    code = fill(seed_sample(), {'ak': sis_emulator.ak, 'sk': sis_emulator.sk, 'region': sis_emulator.region,
                                'project_id': sis_emulator.project_id, 'path': SAMPLE_WAV,
                                'audio_format': 'pcm16k16bit', 'property': 'chinese_16k_general'})
    if mode != 'continue_stream_connect':   # the sample's commented-out alternatives
        code = code.replace('    rasr_client.continue_stream_connect(request)', '    # ')
        code = code.replace('    # rasr_client.%s(request)' % mode, '    rasr_client.%s(request)' % mode)
    sis_emulator.push_script(['北京今天天气怎么样？'])
    script = tmp_path / 'sample.py'
    script.write_text(code, encoding='utf-8')
    env = dict(os.environ, SIS_RASR_SERVICE_ENDPOINT=sis_emulator.ws_endpoint, PYTHONIOENCODING='utf-8',
               PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=str(tmp_path), timeout=40,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.decode('utf-8')
    assert proc.returncode == 0, proc.stderr.decode('utf-8', 'replace')
    trace_id = sis_emulator.connections[0].sessions[0]['trace_id']
    lines = out.splitlines()
    assert lines[0] == 'websocket connect success'
    assert lines[1] == 'webscoket start to recognize, trace id is %s' % trace_id
    assert '"text": "北京今天天气怎么样？"' in out
    assert lines[-2] == 'websocket is ended, trace id is %s' % trace_id
    assert lines[-1] == 'websocket is closed'
    assert 'error' not in out
    if mode == 'sentence_stream_connect':
        assert 'receive event VOICE_START' in out
    else:
        assert 'receive event' not in out
    assert sorted(os.listdir(str(tmp_path))) == ['sample.py']    # no log file created
    assert sis_emulator.connections[0].path.endswith(mode.replace('_connect', '').replace('_', '-'))
