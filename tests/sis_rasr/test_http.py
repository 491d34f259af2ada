"""HTTP helpers (requests), and that secrets never reach the logs."""
import logging

import pytest
import requests
import responses

from sis_rasr.auth import aksk_service, token_service
from sis_rasr.exception.exceptions import ClientException, ServerException
from sis_rasr.utils import http_utils

URL = 'https://sis-ext.cn-north-4.myhuaweicloud.com/v1/p/asr/short-audio'


@responses.activate
def test_parse_resp_and_server_exception():
    responses.add(responses.POST, URL, status=400, json={'error_code': 'SIS.0001', 'error_msg': 'bad'})
    with pytest.raises(ServerException) as excinfo:
        aksk_service.aksk_connect('ak', 'sk', URL, {'Content-Type': 'application/json'}, {'a': 1}, 'POST')
    assert str(excinfo.value) == 'error_code: SIS.0001\terror_msg: bad'
    sent = responses.calls[0].request
    assert sent.headers['Authorization'].startswith('SDK-HMAC-SHA256 Access=ak, SignedHeaders=content-type;host;')
    assert sent.body == '{"a": 1}'


@responses.activate
def test_parse_resp_non_json_and_empty():
    responses.add(responses.GET, URL, body='<html>')
    with pytest.raises(ClientException, match='Parsing json failed, the text is <html>'):
        aksk_service.aksk_connect('ak', 'sk', URL, None, None, 'GET')
    responses.replace(responses.GET, URL, body='')
    assert aksk_service.aksk_connect('ak', 'sk', URL, None, None, 'GET') is None


def test_aksk_connect_config_type():
    with pytest.raises(ClientException, match="the param 'config' in aksk_connect must be SisConfig class"):
        aksk_service.aksk_connect('ak', 'sk', URL, None, None, 'GET', config=object())
    with pytest.raises(ClientException, match="the param 'config' in token_service must be SisConfig class"):
        token_service.get_token('u', 'p', 'd', 'r', url='http://x', config=object())


@responses.activate
def test_http_connect_retries_then_fails():
    responses.add(responses.POST, URL, body=requests.exceptions.ConnectionError('down'))
    with pytest.raises(ClientException) as excinfo:
        http_utils.http_connect(URL, {}, {'a': 1})
    assert str(excinfo.value) == 'POST Response is empety, url is %s' % URL
    assert len(responses.calls) == http_utils.NUM_MAX_RETRY == 5
    with pytest.raises(ClientException, match='PATCH is invalid'):
        http_utils.http_connect(URL, {}, None, 'PATCH')


@responses.activate
def test_token_without_subject_header():
    responses.add(responses.POST, 'http://iam/v3/auth/tokens', status=401, body='{"error": "no"}')
    with pytest.raises(ClientException, match='Error occurs in getting token, {"error": "no"}'):
        token_service.get_token('u', 'p', 'd', 'r', url='http://iam/v3/auth/tokens')
    assert responses.calls[0].request.req_kwargs['verify'] not in (False, None)   # verified by default


def test_proxy_formats():
    assert http_utils._generate_request_proxy(['h', 8080]) == {'http': 'http://h:8080', 'https': 'https://h:8080'}
    assert http_utils._generate_request_proxy(['h', 1, 'u', 'p']) == {'http': 'http://u:p@h:1',
                                                                       'https': 'https://u:p@h:1'}
    with pytest.raises(ClientException, match='Proxy must be list'):
        http_utils._generate_request_proxy(('h', 1))
    assert http_utils.generate_scheme_host_uri('https://sis.example.com/v1/x') == (
        'https://', 'sis.example.com', '/v1/x')


def test_secrets_never_logged(sis_emulator, recorder, caplog):
    from sis_rasr import RasrClient, RasrRequest
    from sis_helpers import fast_config
    from sis_rasr.client import rasr_client
    rasr_client.user_dict.clear()
    rasr_client.time_dict.clear()
    caplog.set_level(logging.DEBUG)
    clients = [
        RasrClient(ak=sis_emulator.ak, sk=sis_emulator.sk, use_aksk=True, region=sis_emulator.region,
                   project_id=sis_emulator.project_id, callback=recorder, config=fast_config(),
                   service_endpoint=sis_emulator.ws_endpoint),
        RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name, sis_emulator.region,
                   sis_emulator.project_id, recorder, fast_config(), sis_emulator.ws_endpoint,
                   sis_emulator.iam_url),
        RasrClient(ak=sis_emulator.ak, sk='wrong-secret-value', use_aksk=True, region=sis_emulator.region,
                   project_id=sis_emulator.project_id, callback=recorder, config=fast_config(),
                   service_endpoint=sis_emulator.ws_endpoint),
    ]
    for client in clients:
        try:
            client.short_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
            client.send_start()
            client.send_end()
        except ClientException:
            pass
        finally:
            client.close()
    signatures = [v.split('Signature=')[1] for rec in sis_emulator.connections
                  for k, v in rec.headers if k == 'Authorization']
    secrets = [sis_emulator.sk, 'wrong-secret-value', sis_emulator.password, clients[1]._token] + signatures
    assert len(signatures) == 2
    # the client's loggers (the emulator's websockets server logs handshakes at DEBUG, it is not the client)
    text = '\n'.join(r.getMessage() for r in caplog.records
                     if r.name.split('.')[0] in ('sis_rasr', 'websocket', 'urllib3', 'requests')
                     and not r.name.startswith('sis_rasr.emulator'))
    assert 'websocket open' in text     # the log was captured at all
    for secret in secrets:
        assert secret not in text
