"""util.wav2pcm / GetDefaultContext, the 'nls' logger switches, and import-time rules."""
import logging
import os
import struct
import subprocess
import sys

import pytest

import nls_lite as nls
from nls_lite import util


def _wav(pcm, extra_chunks=b'', rate=16000):
    fmt = struct.pack('<4sIHHIIHH', b'fmt ', 16, 1, 1, rate, rate * 2, 2, 16)
    body = b'WAVE' + fmt + extra_chunks + b'data' + struct.pack('<I', len(pcm)) + pcm
    return b'RIFF' + struct.pack('<I', len(body)) + body


def test_wav2pcm_canonical_file_is_byte_identical_to_the_original(tmp_path):
    pcm = bytes(range(256)) * 10
    wav = _wav(pcm)
    assert len(wav) == 44 + len(pcm)
    (tmp_path / 'a.wav').write_bytes(wav)
    assert util.wav2pcm(str(tmp_path / 'a.wav'), str(tmp_path / 'a.pcm')) is None
    assert (tmp_path / 'a.pcm').read_bytes() == wav[44:]


def test_wav2pcm_finds_the_data_chunk_after_other_chunks(tmp_path):
    pcm = b'\x01\x02' * 100
    wav = _wav(pcm, extra_chunks=b'LIST' + struct.pack('<I', 5) + b'abcde' + b'\0')
    (tmp_path / 'b.wav').write_bytes(wav)
    util.wav2pcm(str(tmp_path / 'b.wav'), str(tmp_path / 'b.pcm'))
    assert (tmp_path / 'b.pcm').read_bytes() == pcm


@pytest.mark.parametrize('content', [b'', b'RIFF', b'RIFF\0\0\0\0WAVX' + b'\0' * 40, b'\0' * 100])
def test_wav2pcm_rejects_before_touching_the_output(tmp_path, content):
    (tmp_path / 'bad.wav').write_bytes(content)
    out = tmp_path / 'out.pcm'
    out.write_bytes(b'keep me')
    with pytest.raises(ValueError, match='not a wav!'):
        util.wav2pcm(str(tmp_path / 'bad.wav'), str(out))
    assert out.read_bytes() == b'keep me'


def test_default_context_is_a_new_dict_each_time():
    first = util.GetDefaultContext()
    assert first == {'sdk': {'name': 'nls-python-sdk', 'version': '1.1.0', 'language': 'python'}}
    first['sdk']['version'] = 'x'
    assert util.GetDefaultContext()['sdk']['version'] == '1.1.0'


def test_enable_trace_on_and_off(caplog):
    logger = logging.getLogger('nls')
    handler = logging.StreamHandler()
    before = list(logger.handlers)
    try:
        nls.enableTrace(True, handler=handler)
        assert nls.isEnabledForTrace() and nls.isEnabledForDebug()
        assert handler in logger.handlers and logger.level == logging.DEBUG
        with caplog.at_level(logging.DEBUG, logger='nls'):
            nls.dump('title', 'body')
        assert [r.getMessage() for r in caplog.records][-3:] == ['### title ###', 'body', '#' * 40]
    finally:
        nls.enableTrace(False)
    assert not nls.isEnabledForTrace()
    assert logger.handlers == before and logger.level == logging.NOTSET


def test_import_is_silent_and_configures_nothing(tmp_path):
    code = ('import logging, os, sys\n'
            'before = set(os.listdir("."))\n'
            'import nls_lite as nls\n'
            'assert set(os.listdir(".")) == before, "import created files"\n'
            'assert not logging.getLogger().handlers, "root logger configured"\n'
            'assert all(isinstance(h, logging.NullHandler) for h in logging.getLogger("nls").handlers)\n'
            'assert all(isinstance(h, logging.NullHandler) for h in logging.getLogger("websocket").handlers)\n'
            'assert not any(t.name.startswith("nls") for t in __import__("threading").enumerate())\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, '-W', 'error', '-c', code], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
