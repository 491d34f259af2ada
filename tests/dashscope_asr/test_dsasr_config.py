"""Configuration resolution, key chain, import side effects, response classes and exceptions."""
import json
import os
import pickle
import stat
import subprocess
import sys
from http import HTTPStatus

import pytest

import dashscope_asr
from dashscope_asr.api_entities.dashscope_response import (DashScopeAPIResponse, DictMixin,
                                                           RecognitionResponse, TranscriptionOutput,
                                                           TranscriptionResponse)
from dashscope_asr.audio.asr import RecognitionResult, VocabularyServiceException
from dashscope_asr.common import error
from dashscope_asr.common.api_key import get_default_api_key, save_api_key
from dashscope_asr.common.utils import websocket_headers

NO_KEY = ('No api key provided. You can set by dashscope.api_key = your_api_key in code, or you can '
          'set it via environment variable DASHSCOPE_API_KEY= your_api_key. You can store your api '
          'key to a file, and use dashscope.api_key_file_path=api_key_file_path in code, or you can '
          'set api key file path via environment variable DASHSCOPE_API_KEY_FILE_PATH, You can call '
          'save_api_key to api_key_file_path or default path(~/.dashscope/api_key).')

PROBE = r'''
import json, logging, os, sys
import dashscope_asr as d
print(json.dumps({"api_key": d.api_key, "file": d.api_key_file_path, "ws": d.base_websocket_api_url,
                  "http": d.base_http_api_url, "compat": d.base_compatible_api_url,
                  "handlers": [type(h).__name__ for h in logging.getLogger("dashscope").handlers],
                  "root": len(logging.getLogger().handlers)}))
from dashscope_asr.audio.asr import Recognition
Recognition("m", None, "pcm", 16000)
print(json.dumps([type(h).__name__ for h in logging.getLogger("dashscope").handlers]))
'''


def probe(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith('DASHSCOPE_')}
    full.update(env, HOME=str(tmp_path))
    out = subprocess.run([sys.executable, '-c', PROBE], env=full, capture_output=True, text=True,
                         timeout=30, check=True).stdout.splitlines()
    return json.loads(out[0]), json.loads(out[1])


def test_import_reads_the_environment_and_configures_nothing(tmp_path):
    values, after_client = probe(tmp_path, DASHSCOPE_API_KEY='sk-env',
                                 DASHSCOPE_WEBSOCKET_BASE_URL='ws://127.0.0.1:1/x')
    assert values['api_key'] == 'sk-env' and values['ws'] == 'ws://127.0.0.1:1/x'
    assert values['http'] == 'https://dashscope.aliyuncs.com/api/v1'
    assert values['handlers'] == ['NullHandler'] and values['root'] == 0
    assert after_client == ['NullHandler']
    assert os.listdir(str(tmp_path)) == []  # no files created


def test_maas_region_and_api_version(tmp_path):
    values, _ = probe(tmp_path, DASHSCOPE_API_REGION='ap-southeast-1',
                      DASHSCOPE_WORKSPACE_ID='ws1', DASHSCOPE_API_VERSION='v2')
    assert values['ws'] == 'wss://ws1.ap-southeast-1.maas.aliyuncs.com/api-ws/v2/inference'
    assert values['http'] == 'https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v2'
    values, _ = probe(tmp_path, DASHSCOPE_API_REGION='us-east-1')
    assert values['ws'] == 'wss://{workspace_id}.us-east-1.maas.aliyuncs.com/api-ws/v1/inference'


def test_logging_level_applies_at_first_client(tmp_path):
    _, after_client = probe(tmp_path, DASHSCOPE_LOGGING_LEVEL='debug')
    assert after_client == ['NullHandler', 'StreamHandler']


def test_key_chain(configured, tmp_path, monkeypatch):
    configured.api_key = 'direct'
    assert get_default_api_key() == 'direct'
    configured.api_key = ''
    assert get_default_api_key() == ''  # empty string counts as set
    configured.api_key = None
    key_file = tmp_path / 'key'
    key_file.write_text(' from-file \n')
    configured.api_key_file_path = str(key_file)
    assert get_default_api_key() == 'from-file'
    configured.api_key_file_path = str(tmp_path / 'missing')
    with pytest.raises(OSError):
        get_default_api_key()
    configured.api_key_file_path = None
    monkeypatch.setenv('HOME', str(tmp_path))
    with pytest.raises(error.AuthenticationError) as e:
        get_default_api_key()
    assert str(e.value) == NO_KEY
    save_api_key('saved-key')
    path = tmp_path / '.dashscope' / 'api_key'
    assert get_default_api_key() == 'saved-key'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / '.dashscope').stat().st_mode) == 0o700
    other = tmp_path / 'sub' / 'k'
    save_api_key('x', str(other))
    assert other.read_text() == 'x' and stat.S_IMODE(other.stat().st_mode) == 0o600


def test_set_region(configured, monkeypatch):
    for name in ('base_compatible_api_url',):
        monkeypatch.setattr(dashscope_asr, name, getattr(dashscope_asr, name))
    with pytest.raises(ValueError, match="Unsupported region 'mars'"):
        dashscope_asr.set_region('mars', 'ws')
    with pytest.raises(ValueError, match='workspace_id is required'):
        dashscope_asr.set_region('us-east-1')
    with pytest.raises(ValueError, match='Invalid workspace_id'):
        dashscope_asr.set_region('us-east-1', '-bad')
    dashscope_asr.set_region('eu-central-1', 'w1')
    assert dashscope_asr.base_websocket_api_url == (
        'wss://w1.eu-central-1.maas.aliyuncs.com/api-ws/v1/inference')
    assert dashscope_asr.base_http_api_url == 'https://w1.eu-central-1.maas.aliyuncs.com/api/v1'


def test_handshake_header_rules(monkeypatch):
    monkeypatch.delenv('DASHSCOPE_DISABLE_DATA_INSPECTION', raising=False)
    monkeypatch.setenv('DASHSCOPE_DISABLE_SDK_HEADERS', '1')
    lines = websocket_headers('sk-1', None, {'Authorization': 'Bearer other'}, None)
    assert lines[0] == 'Authorization: Bearer other'  # custom headers win, in place
    assert len(lines) == 2 and lines[1].startswith('user-agent: dashscope/2.0.2; ')


def test_dict_mixin_and_responses():
    r = DashScopeAPIResponse(status_code=HTTPStatus.OK, request_id='r', output={'a': 1}, extra=2)
    assert list(r) == ['status_code', 'request_id', 'code', 'message', 'output', 'usage',
                       'headers', 'extra']
    assert r.output == {'a': 1} and r['extra'] == 2
    r.new = 3
    assert r['new'] == 3
    with pytest.raises(AttributeError, match="'DashScopeAPIResponse' object has no attribute 'nope'"):
        r.nope
    assert json.loads(str(r)) == {'status_code': 200, 'request_id': 'r', 'code': '', 'message': '',
                                  'output': {'a': 1}, 'usage': None}
    assert repr(r).startswith("DashScopeAPIResponse({'status_code'")
    m = DictMixin(x=1)
    assert str(m) == '{"x": 1}' and repr(m) == "DictMixin({'x': 1})"
    assert type(m.copy()) is DictMixin and m.getattr('x') == 1
    copied = pickle.loads(pickle.dumps(r))
    assert copied == r and type(copied) is DashScopeAPIResponse


def test_recognition_result_from_an_error_and_helpers():
    err = RecognitionResult(RecognitionResponse.from_api_response(
        DashScopeAPIResponse(status_code=44, request_id='t', code='C', message='m')))
    assert list(err) == ['status_code', 'request_id', 'code', 'message', 'usages', 'output', 'usage']
    assert err.get_sentence() is None and err.get_usage({'end_time': 1}) is None
    assert json.loads(str(err))['status_code'] == 44
    ok = RecognitionResult(RecognitionResponse.from_api_response(DashScopeAPIResponse(
        status_code=HTTPStatus.OK, request_id='t', output={'sentence': {'end_time': 5}}, usage={})),
        usages=[{'end_time': 5, 'usage': {}}])
    assert json.loads(str(ok))['usage'] == {'duration': 0}  # the vendor's conversion
    assert ok.get_usage({'end_time': 5}) == {} and ok.get_usage({'end_time': None}) is None
    assert not RecognitionResult.is_sentence_end({'end_time': None, 'sentence_end': True})
    assert RecognitionResult.is_sentence_end({'end_time': 0})
    assert not RecognitionResult.is_sentence_end(None)


def test_transcription_response_tolerates_missing_fields():
    r = TranscriptionResponse.from_api_response(DashScopeAPIResponse(
        status_code=HTTPStatus.OK, output={'results': []}, usage={'duration': 1}))
    assert r.output == TranscriptionOutput(task_id=None, task_status=None, results=[])
    assert r.usage.duration == 1


def test_exceptions_keep_vendor_texts_and_pickle():
    failure = error.RequestFailure(request_id='r', message='m', name='N', http_code=44)
    assert str(failure) == 'Request failed, request_id: r, http_code: 44 error_name: N, error_message: m'
    assert str(pickle.loads(pickle.dumps(failure))) == str(failure)
    exc = VocabularyServiceException('r', 404, 'ResourceNotFound', 'gone')
    assert str(exc) == 'Request: r, Status Code: 404, Code: ResourceNotFound, Error Message: gone'
    assert pickle.loads(pickle.dumps(exc))._status_code == 404
    assert not isinstance(exc, error.DashScopeException)
    for name in ('AuthenticationError', 'InvalidParameter', 'InvalidTask', 'ModelRequired',
                 'InputRequired', 'InputDataRequired', 'UnexpectedMessageReceived',
                 'UnknownMessageReceived', 'TimeoutException', 'ServiceUnavailableError'):
        assert issubclass(getattr(error, name), error.DashScopeException)
