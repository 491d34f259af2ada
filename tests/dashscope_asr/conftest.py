"""Fixtures of the dashscope_asr tests: an emulator the package is pointed at, a recording callback."""
import pytest

import dashscope_asr
from dsasr_helpers import SAMPLE_WAV, SCRIPT, Recorder


@pytest.fixture
def configured(monkeypatch):
    """Module configuration restored after the test; no key file lookups in $HOME."""
    for name in ('api_key', 'api_key_file_path', 'base_websocket_api_url', 'base_http_api_url'):
        monkeypatch.setattr(dashscope_asr, name, getattr(dashscope_asr, name))
    monkeypatch.setenv('HOME', '/nonexistent-home-for-tests')
    return dashscope_asr


@pytest.fixture
def emu(dashscope_emulator, configured):
    """The plugin's emulator with the sample's script, and dashscope_asr pointed at it."""
    dashscope_emulator.default_sentences = list(SCRIPT)
    dashscope_emulator.apply_to(configured)
    return dashscope_emulator


@pytest.fixture
def sample_bytes():
    with open(SAMPLE_WAV, 'rb') as f:
        return f.read()


@pytest.fixture
def recorder():
    return Recorder()
