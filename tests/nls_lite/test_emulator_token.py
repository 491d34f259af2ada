"""The emulator's CreateToken endpoint (§5.10) over plain HTTP with requests, and its POP signature."""
import json
import time
import uuid

import pytest
import requests

from nls_emu_helpers import AKID, SECRET, RawClient, signed_url

from nls_lite.emulator.http import percent_encode, sign, string_to_sign

VECTOR = [('AccessKeyId', AKID), ('Action', 'CreateToken'), ('Version', '2019-02-28'),
          ('Timestamp', '2019-04-18T08:32:31Z'), ('Format', 'JSON'), ('RegionId', 'cn-shanghai'),
          ('SignatureMethod', 'HMAC-SHA1'), ('SignatureVersion', '1.0')]


def test_signature_vectors_of_the_reference():
    v1 = VECTOR + [('SignatureNonce', 'b924c8c3-6d03-4c5d-ad36-d984d3116788')]
    sts = string_to_sign('GET', v1)
    assert sts.startswith('GET&%2F&AccessKeyId%3Dmy_access_key_id%26Action%3DCreateToken')
    assert '%26Timestamp%3D2019-04-18T08%253A32%253A31Z%26Version%3D2019-02-28' in sts
    assert sign(SECRET, sts) == 'hHq4yNsPitlfDJ2L0nQPdugdEzM='
    assert sign(SECRET, string_to_sign('POST', v1)) == 'X4/yeE8FUchC5Wv7AZJybEuDWzw='
    v3 = VECTOR + [('SignatureNonce', '0123456789abcdef0123456789abcdef'), ('SignatureType', '')]
    assert sign(SECRET, string_to_sign('POST', v3)) == 'itLojYZRO2WuhCm3Lx4rh4LW1Qg='
    assert percent_encode('a b*c~d/é') == 'a%20b%2Ac~d%2F%C3%A9'


def test_create_token_and_use_it(nls_emulator):
    before = time.time()
    r = requests.post(signed_url(nls_emulator.token_url), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ['NlsRequestId', 'RequestId', 'Token']
    assert list(body['Token']) == ['ExpireTime', 'Id', 'UserId']
    token = body['Token']['Id']
    assert len(token) == 32 and len(body['NlsRequestId']) == 32
    assert body['RequestId'] == body['RequestId'].upper() and body['RequestId'].count('-') == 4
    assert before + 86400 - 5 <= body['Token']['ExpireTime'] <= time.time() + 86400 + 5
    c = RawClient(nls_emulator.url, token=token)
    try:
        c.start()
        assert c.recv()['header']['name'] == 'RecognitionStarted'
    finally:
        c.close()
    log = nls_emulator.token_requests[0]
    assert log['method'] == 'POST' and log['status'] == 200 and log['params']['SignatureType'] == ''


def test_get_is_accepted(nls_emulator):
    r = requests.get(signed_url(nls_emulator.token_url, method='GET'), timeout=5)
    assert r.status_code == 200 and r.json()['Token']['Id']


@pytest.mark.parametrize('kwargs,status,code', [
    ({'akid': 'unknown'}, 404, 'InvalidAccessKeyId.NotFound'),
    ({'secret': 'wrong'}, 400, 'SignatureDoesNotMatch'),
    ({'method': 'GET'}, 400, 'SignatureDoesNotMatch'),  # signed for GET, sent as POST
    ({'timestamp': '2019-04-18T08:32:31Z'}, 400, 'InvalidTimeStamp.Expired'),
    ({'drop': 'SignatureNonce'}, 400, 'MissingParameter'),
    ({'drop': 'Version'}, 400, 'MissingParameter'),
])
def test_errors(nls_emulator, kwargs, status, code):
    r = requests.post(signed_url(nls_emulator.token_url, **kwargs), timeout=5)
    assert r.status_code == status
    body = r.json()
    assert list(body) == ['RequestId', 'HostId', 'Code', 'Message'] and body['Code'] == code
    if code == 'SignatureDoesNotMatch':
        assert body['Message'].startswith('Specified signature is not matched with our calculation. server '
                                          'string to sign is:POST&%2F&')
    assert SECRET not in r.text


def test_nonce_reuse(nls_emulator):
    nonce = uuid.uuid4().hex
    assert requests.post(signed_url(nls_emulator.token_url, nonce=nonce), timeout=5).status_code == 200
    r = requests.post(signed_url(nls_emulator.token_url, nonce=nonce), timeout=5)
    assert r.status_code == 400 and r.json()['Code'] == 'SignatureNonceUsed'


def test_issued_token_expires(nls_emulator):
    nls_emulator.token_ttl_s = -1
    token = requests.post(signed_url(nls_emulator.token_url), timeout=5).json()['Token']['Id']
    with pytest.raises(Exception) as info:
        RawClient(nls_emulator.url, token=token)
    assert info.value.status_code == 403
    assert 'has expired' in json.loads(info.value.resp_body)['header']['status_text']


@pytest.mark.parametrize('fault,params,check', [
    ('token_http_status', {'status': 503}, lambda r: r.status_code == 503 and r.json()['Code'] == 'InternalError'),
    ('token_body', {'body': '{"odd":1}'}, lambda r: r.status_code == 200 and r.json() == {'odd': 1}),
    ('token_non_json', {}, lambda r: r.status_code == 200 and r.text.startswith('<html>')),
    ('token_missing_token', {}, lambda r: 'Token' not in r.json()),
    ('token_missing_id', {}, lambda r: 'Id' not in r.json()['Token']),
])
def test_token_faults(nls_emulator, fault, params, check):
    nls_emulator.inject(fault, **params)
    assert check(requests.post(signed_url(nls_emulator.token_url), timeout=5))
    # times=1: the next request is answered normally
    assert requests.post(signed_url(nls_emulator.token_url), timeout=5).json()['Token']['Id']


def test_token_delay(nls_emulator):
    nls_emulator.inject('token_delay_s', seconds=0.3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(signed_url(nls_emulator.token_url), timeout=(2, 0.1))
