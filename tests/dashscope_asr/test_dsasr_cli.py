"""python -m dashscope_asr: results as they come, clear failures."""
import socket

import pytest

from dashscope_asr.__main__ import main


@pytest.fixture(autouse=True)
def isolated(configured):
    return configured


def test_streaming_against_the_emulator(capsys):
    assert main(['--emulator', '--fast', '--partials']) == 0
    out = capsys.readouterr().out
    assert '北京今天天气怎么样？' in out and '明天会下雨吗？' in out
    assert '... 北' in out  # partials printed as they arrive
    assert 'first package delay' in out


def test_call_and_transcribe_against_the_emulator(capsys):
    assert main(['--emulator', '--call']) == 0
    assert '[  0.20-  2.42] 北京今天天气怎么样？' in capsys.readouterr().out
    assert main(['--emulator', '--transcribe', 'https://example.invalid/a.wav']) == 0
    out = capsys.readouterr().out
    assert 'SUCCEEDED' in out and '模拟识别结果第1句。' in out


def test_clear_failures(capsys, configured, tmp_path):
    configured.api_key = None
    assert main(['--fast']) == 2
    assert 'No api key provided' in capsys.readouterr().err
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    assert main(['--api-key', 'k', '--url', 'ws://127.0.0.1:%d/api-ws/v1/inference' % port,
                 '--fast']) == 1
    assert 'ClientConnectorError: Cannot connect to host 127.0.0.1' in capsys.readouterr().err
    assert main(['--emulator', str(tmp_path / 'missing.wav')]) == 2
    assert 'no such audio file' in capsys.readouterr().err
