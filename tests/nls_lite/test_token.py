"""CreateToken: POP RPC signature vectors, the HTTP exchange (with `responses`), errors, retries."""
import logging
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from nls_lite import exception, token
from nls_lite.token import NlsToken, createToken, getToken

BASE = dict(AccessKeyId='my_access_key_id', Action='CreateToken', Version='2019-02-28',
            Timestamp='2019-04-18T08:32:31Z', Format='JSON', RegionId='cn-shanghai',
            SignatureMethod='HMAC-SHA1', SignatureVersion='1.0')
SECRET = 'my_access_key_secret'
URL = 'https://nls-meta.cn-shanghai.aliyuncs.com/'


def test_vector_v1_get():
    params = dict(BASE, SignatureNonce='b924c8c3-6d03-4c5d-ad36-d984d3116788')
    assert token.canonicalized_query(params) == (
        'AccessKeyId=my_access_key_id&Action=CreateToken&Format=JSON&RegionId=cn-shanghai&'
        'SignatureMethod=HMAC-SHA1&SignatureNonce=b924c8c3-6d03-4c5d-ad36-d984d3116788&SignatureVersion=1.0&'
        'Timestamp=2019-04-18T08%3A32%3A31Z&Version=2019-02-28')
    assert token.string_to_sign('GET', params) == (
        'GET&%2F&AccessKeyId%3Dmy_access_key_id%26Action%3DCreateToken%26Format%3DJSON%26RegionId%3D'
        'cn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Db924c8c3-6d03-4c5d-ad36-d984d3116788%26'
        'SignatureVersion%3D1.0%26Timestamp%3D2019-04-18T08%253A32%253A31Z%26Version%3D2019-02-28')
    assert token.sign('GET', params, SECRET) == 'hHq4yNsPitlfDJ2L0nQPdugdEzM='


def test_vector_v2_post():
    params = dict(BASE, SignatureNonce='b924c8c3-6d03-4c5d-ad36-d984d3116788')
    assert token.sign('POST', params, SECRET) == 'X4/yeE8FUchC5Wv7AZJybEuDWzw='
    assert token.percent_encode('X4/yeE8FUchC5Wv7AZJybEuDWzw=') == 'X4%2FyeE8FUchC5Wv7AZJybEuDWzw%3D'


def test_vector_v3_aliyunsdkcore_style_with_empty_signature_type():
    params = dict(BASE, SignatureNonce='0123456789abcdef0123456789abcdef', SignatureType='')
    assert 'SignatureNonce=0123456789abcdef0123456789abcdef&SignatureType=&SignatureVersion' in \
        token.canonicalized_query(params)
    assert token.sign('POST', params, SECRET) == 'itLojYZRO2WuhCm3Lx4rh4LW1Qg='


def test_percent_encoding_vector():
    assert token.percent_encode('a b*c~d/é') == 'a%20b%2Ac~d%2F%C3%A9'


def _query(request):
    return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))


def _ok(expire=None):
    return {'NlsRequestId': 'a' * 32, 'RequestId': 'B-C',
            'Token': {'ExpireTime': expire or int(time.time()) + 86400, 'Id': 'tok' * 8, 'UserId': '123'}}


@responses.activate
def test_get_token_signs_a_post_over_https():
    responses.add(responses.POST, URL, json=_ok())
    assert getToken('my_access_key_id', SECRET) == 'tok' * 8
    request = responses.calls[0].request
    assert request.url.startswith(URL + '?')
    assert request.body in (None, b'', '')
    query = _query(request)
    assert set(query) == {'AccessKeyId', 'Action', 'Format', 'RegionId', 'SignatureMethod', 'SignatureNonce',
                          'SignatureVersion', 'Timestamp', 'Version', 'Signature'}
    assert query['RegionId'] == 'cn-shanghai' and query['Version'] == '2019-02-28'
    assert len(query['SignatureNonce']) == 32
    signature = query.pop('Signature')
    assert signature == token.sign('POST', query, SECRET)
    assert request.headers['x-acs-action'] == 'CreateToken'
    assert request.headers['x-acs-version'] == '2019-02-28'


@responses.activate
def test_create_token_returns_expire_time_and_honours_url_scheme_and_region():
    responses.add(responses.POST, 'http://127.0.0.1:8765/', json=_ok(1527592757))
    result = createToken('id', 'secret', domain='ap-southeast-1', url='http://127.0.0.1:8765')
    assert result == {'ExpireTime': 1527592757, 'Id': 'tok' * 8, 'UserId': '123'}
    assert _query(responses.calls[0].request)['RegionId'] == 'ap-southeast-1'


@responses.activate
def test_pop_error_keeps_aliyunsdkcore_text_and_attributes():
    responses.add(responses.POST, URL, status=404, json={
        'RequestId': 'RID-1', 'HostId': 'nls-meta', 'Code': 'InvalidAccessKeyId.NotFound',
        'Message': 'Specified access key is not found.'})
    with pytest.raises(exception.TokenServerError) as info:
        getToken('nobody', 'x')
    err = info.value
    assert isinstance(err, exception.GetTokenFailed)
    assert str(err) == ('HTTP Status: 404 Error:InvalidAccessKeyId.NotFound Specified access key is not found. '
                        'RequestID: RID-1')
    assert (err.http_status, err.error_code, err.request_id) == (404, 'InvalidAccessKeyId.NotFound', 'RID-1')
    assert len(responses.calls) == 1   # a 4xx is final


@responses.activate
def test_5xx_is_retried_with_a_fresh_signature():
    responses.add(responses.POST, URL, status=503, json={'RequestId': 'r', 'Code': 'ServiceUnavailable',
                                                         'Message': 'busy'})
    responses.add(responses.POST, URL, json=_ok())
    assert getToken('id', 'secret') == 'tok' * 8
    nonces = [_query(call.request)['SignatureNonce'] for call in responses.calls]
    assert len(nonces) == 2 and nonces[0] != nonces[1]


@responses.activate
def test_network_failure_after_three_attempts_is_a_client_error():
    responses.add(responses.POST, URL, body=requests.ConnectionError('refused'))
    with pytest.raises(exception.TokenClientError) as info:
        getToken('id', 'secret')
    assert str(info.value).startswith('SDK.HttpError ')
    assert len(responses.calls) == 3


@responses.activate
@pytest.mark.parametrize('body, message', [
    ({'RequestId': 'x'}, "Token not in response:{'RequestId': 'x'}"),
    ({'Token': {'ExpireTime': 1}}, "Missing id field in token:{'ExpireTime': 1}"),
])
def test_incomplete_answers(body, message):
    responses.add(responses.POST, URL, json=body)
    with pytest.raises(exception.GetTokenFailed) as info:
        getToken('id', 'secret')
    assert str(info.value) == message


@responses.activate
def test_non_json_answer():
    responses.add(responses.POST, URL, body='<html>', status=200)
    with pytest.raises(exception.TokenServerError) as info:
        getToken('id', 'secret')
    assert info.value.error_code == 'SDK.InvalidServerResponse'


@pytest.mark.parametrize('akid, secret', [(None, 'x'), ('x', None)])
def test_missing_credentials_raise_before_any_request(akid, secret):
    with responses.RequestsMock() as mock:   # any request would fail this test
        with pytest.raises(exception.GetTokenFailed, match='No akid or aksecret'):
            getToken(akid, secret)
        assert len(mock.calls) == 0


@responses.activate
def test_secrets_never_reach_the_log(caplog):
    responses.add(responses.POST, URL, json=_ok())
    caplog.set_level(logging.DEBUG, logger='nls')
    value = getToken('LTAIabcdefgh', 'SUPERSECRET')
    assert 'SUPERSECRET' not in caplog.text
    assert value not in caplog.text
    assert 'LTAIabcdefgh' not in caplog.text and 'LTAI****' in caplog.text


@responses.activate
def test_nls_token_caches_and_refreshes_before_expiry():
    now = int(time.time())
    responses.add(responses.POST, URL, json={'Token': {'ExpireTime': now + 100, 'Id': 'first'}})
    responses.add(responses.POST, URL, json={'Token': {'ExpireTime': now + 86400, 'Id': 'second'}})
    cached = NlsToken('id', 'secret', refresh_before_s=600)
    assert cached.getExpireTime() == 0
    assert cached.getToken() == 'first'          # first fetch
    assert cached.getToken() == 'second'         # within 600 s of expiry: renewed
    assert cached.getToken() == 'second'         # fresh: served from the cache
    assert len(responses.calls) == 2
    assert cached.getExpireTime() == now + 86400
    assert 'secret' not in repr(cached)
