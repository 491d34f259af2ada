"""APIG SDK-HMAC-SHA256 signing: the reference's test vectors, byte for byte."""
import pytest

from sis_rasr.auth import aksk_service, signer

HOST = 'sis-ext.cn-north-4.myhuaweicloud.com'
DATE = '20240101T000000Z'
EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

VECTORS = [
    ('/v1/0123456789abcdef/rasr/continue-stream',
     'bb3728e7db6049e8f0751932b63870930603441c785b2cc2825ee2d04231caa0',
     '1603afac831177e7869b287a58f34e0f5f90296ba11a74dc6de48170f8c26f45'),
    ('/v1/0123456789abcdef/rasr/sentence-stream',
     '113ebfa31650012b3f41f0a883bf90c637e735e34eed3ee15c2f641582f6a6f0',
     'a2bbe209a61cc771c1817424cb318aad7f80a92af11198e1c3e2bdc1bca382ee'),
    ('/v1/0123456789abcdef/rasr/short-stream',
     'd785cd4c25aeaca311a116a88e7b30148c65956064feb4f09edb63792a16e123',
     '4753dca7d4a0aa99eb666defab9626452fed69f6536f559b6d2bbdfba89e6a98'),
    ('/v1/0123456789abcdef/asr/short-audio',
     '81e3417eee3ba7c7eb5202eb63b8ce07f7ec29ef2d42b18a137dabbe1728d998',
     'c9952ebbe8b1f87c0b174f4776eaee86b00ac2a93e73c946b8863628ee980c59'),
    ('/v1/0123456789abcdef/rtts', None,
     '0ded158e4692f1efe017fb2865d75bbca353887caae833cf5b8ec7d469b001b4'),
]


@pytest.mark.parametrize('path,canonical_sha,signature', VECTORS)
def test_websocket_vectors(path, canonical_sha, signature):
    headers = aksk_service.get_signed_headers('AKEXAMPLE', 'SKEXAMPLE', 'https://' + HOST + path,
                                              {'X-Sdk-Date': DATE}, None, 'GET')
    assert headers['Authorization'] == ('SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=host;x-sdk-date, '
                                        'Signature=' + signature)
    if canonical_sha:
        r = signer.HttpRequest('GET', 'https://' + HOST + path, {'X-Sdk-Date': DATE, 'host': HOST}, '')
        canonical = signer.CanonicalRequest(r, signer.SignedHeaders(r))
        assert signer.HexEncodeSHA256Hash(canonical.encode('utf-8')) == canonical_sha


def test_canonical_request_text():
    r = signer.HttpRequest('GET', 'https://' + HOST + '/v1/0123456789abcdef/rasr/continue-stream',
                           {'X-Sdk-Date': DATE, 'host': HOST})
    assert signer.CanonicalRequest(r, signer.SignedHeaders(r)) == (
        'GET\n/v1/0123456789abcdef/rasr/continue-stream/\n\nhost:' + HOST + '\nx-sdk-date:' + DATE +
        '\n\nhost;x-sdk-date\n' + EMPTY_SHA)


def test_host_with_port_is_signed_with_the_port():
    headers = aksk_service.get_signed_headers(
        'AKEXAMPLE', 'SKEXAMPLE', 'http://127.0.0.1:39517/v1/0123456789abcdef/rasr/continue-stream',
        {'X-Sdk-Date': '20261121T153219Z'}, None, 'GET')
    assert headers == {
        'X-Sdk-Date': '20261121T153219Z', 'host': '127.0.0.1:39517',
        'Authorization': 'SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=host;x-sdk-date, '
                         'Signature=1df70ae3a0f85c94e73c039483b74329c595cc819cfe5d333986623fc34311cb',
        'content-length': '0'}
    assert list(headers) == ['X-Sdk-Date', 'host', 'Authorization', 'content-length']


def test_rest_vector_and_key_order():
    body = {"data": "AAAA", "config": {"audio_format": "pcm16k16bit"}}
    headers = aksk_service.get_signed_headers(
        'AKEXAMPLE', 'SKEXAMPLE', 'https://' + HOST + '/v1/0123456789abcdef/asr/short-audio',
        {'Content-Type': 'application/json', 'X-Sdk-Date': DATE}, body, 'POST')
    assert list(headers) == ['Content-Type', 'X-Sdk-Date', 'host', 'Authorization', 'content-length']
    assert headers['Authorization'].endswith(
        'SignedHeaders=content-type;host;x-sdk-date, '
        'Signature=97c3692896eef7453bde9199cb014ccd56a187f52e203b293702012d61d857fc')
    assert headers['content-length'] == '59'


def test_query_vector_skips_empty_key():
    url = ('https://' + HOST + '/v1/0123456789abcdef/asr/flash?&audio_format=wav&property=chinese_16k_general'
           '&add_punc=no')
    r = signer.HttpRequest('POST', url, {'Content-Type': 'application/json', 'X-Sdk-Date': DATE}, '')
    assert signer.CanonicalQueryString(r) == 'add_punc=no&audio_format=wav&property=chinese_16k_general'
    s = signer.Signer()
    s.Key, s.Secret = 'AKEXAMPLE', 'SKEXAMPLE'
    s.Sign(r)
    assert r.headers['Authorization'].endswith(
        'Signature=179945c81f0201c5cbd68aeb90d4f6ec060d7efad9374d8f1819da9c4d7eb387')
    assert r.uri.endswith('?add_punc=no&audio_format=wav&property=chinese_16k_general')


def test_sign_adds_a_current_date_and_verify_roundtrip():
    s = signer.Signer()
    s.Key, s.Secret = 'AK', 'SK'
    r = signer.HttpRequest('GET', 'http://h:1/v1/p/rasr/short-stream')
    s.Sign(r)
    assert len(r.headers['X-Sdk-Date']) == 16 and r.headers['X-Sdk-Date'].endswith('Z')
    signature = r.headers['Authorization'].rsplit('=', 1)[1]
    check = signer.HttpRequest('GET', 'http://h:1/v1/p/rasr/short-stream',
                               {'X-Sdk-Date': r.headers['X-Sdk-Date'], 'host': 'h:1'})
    assert s.Verify(check, signature)
    assert not s.Verify(check, '0' * 64)


def test_constants_and_helpers():
    assert (signer.BasicDateFormat, signer.Algorithm, signer.HeaderXDate, signer.HeaderHost,
            signer.HeaderAuthorization, signer.HeaderContentSha256) == (
        "%Y%m%dT%H%M%SZ", "SDK-HMAC-SHA256", "X-Sdk-Date", "host", "Authorization", "x-sdk-content-sha256")
    assert signer.urlencode('a b/~') == 'a%20b%2F~'
    r = signer.HttpRequest('GET', 'http://h/a%20b?x=1&x=0&y')
    assert r.query == {'x': ['1', '0'], 'y': ['']}
    assert signer.CanonicalURI(r) == '/a%20b/'
    assert signer.CanonicalQueryString(r) == 'x=0&x=1&y='
    r.headers = {'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD', 'Host': 'h'}
    assert signer.CanonicalRequest(r, signer.SignedHeaders(r)).endswith('\nUNSIGNED-PAYLOAD')
    assert signer.findHeader(r, 'HOST') == 'h'
