"""Import surface and import-time side effects."""
import importlib
import os
import subprocess
import sys

import pytest

MODULES = {
    'sis_rasr.client.rasr_client': ['RasrClient', 'websocket_wait_time', 'connect_sleep_time', 'user_dict',
                                    'time_dict'],
    'sis_rasr.client.asr_client': ['SasrWebsocketClient'],
    'sis_rasr.bean.rasr_request': ['RasrRequest'],
    'sis_rasr.bean.asr_request': ['SasrWebsocketRequest'],
    'sis_rasr.bean.callback': ['RasrCallBack', 'RttsCallBack'],
    'sis_rasr.bean.sis_config': ['SisConfig'],
    'sis_rasr.bean.sis_enum': ['WebsocketStatus'],
    'sis_rasr.exception.exceptions': ['ClientException', 'ServerException'],
    'sis_rasr.auth.signer': ['Signer', 'HttpRequest', 'urlencode', 'findHeader', 'HexEncodeSHA256Hash',
                             'CanonicalRequest', 'CanonicalURI', 'CanonicalQueryString', 'CanonicalHeaders',
                             'SignedHeaders', 'StringToSign', 'SignStringToSign', 'AuthHeaderValue', 'hmacsha256'],
    'sis_rasr.auth.aksk_service': ['get_signed_headers', 'aksk_connect'],
    'sis_rasr.auth.token_service': ['get_token'],
    'sis_rasr.utils.http_utils': ['http_connect', 'parse_resp', 'generate_scheme_host_uri', 'NUM_MAX_RETRY'],
    'sis_rasr.utils.io_utils': ['encode_file', 'save_audio_from_base64str'],
    'sis_rasr.utils.logger_utils': ['logger'],
}


@pytest.mark.parametrize('module', sorted(MODULES))
def test_vendor_module_paths(module):
    mod = importlib.import_module(module)
    for name in MODULES[module]:
        assert hasattr(mod, name), '%s.%s missing' % (module, name)


def test_short_form():
    from sis_rasr import RasrCallBack, RasrClient, RasrRequest, SisConfig
    from sis_rasr.client.rasr_client import RasrClient as Deep
    assert RasrClient is Deep and RasrRequest and RasrCallBack and SisConfig
    from sis_rasr.client import rasr_client
    assert rasr_client.websocket_wait_time == 18


def test_import_has_no_side_effects(tmp_path):
    code = ('import logging, warnings, sys\n'
            'warnings.simplefilter("error")\n'
            'import sis_rasr, sis_rasr.client.asr_client, sis_rasr.auth.token_service, sis_rasr.utils.http_utils\n'
            'import sis_rasr.emulator.pytest_plugin\n'
            'assert logging.getLogger().handlers == [], logging.getLogger().handlers\n'
            'assert logging.getLogger().level == logging.WARNING\n'
            'assert "websockets" not in sys.modules\n'
            'import urllib3, warnings as w\n'
            'assert not any(f[2] is urllib3.exceptions.InsecureRequestWarning for f in w.filters if f[0] == "ignore")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), check=True, env=env, timeout=30)
    assert os.listdir(str(tmp_path)) == []


def test_io_utils(tmp_path):
    from sis_rasr.exception.exceptions import ClientException
    from sis_rasr.utils import io_utils
    path = tmp_path / 'a.bin'
    path.write_bytes(b'abc')
    encoded = io_utils.encode_file(str(path))
    assert encoded == 'YWJj'
    out = tmp_path / 'x' / 'y.bin'
    io_utils.save_audio_from_base64str(encoded, str(out))
    assert out.read_bytes() == b'abc'
    with pytest.raises(ClientException, match="doesn't exist"):
        io_utils.encode_file(str(tmp_path / 'missing'))
