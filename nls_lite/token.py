"""Access tokens from the NLS CreateToken service (POP RPC, signature v1.0), without aliyunsdkcore.

getToken() returns the token string as the original does; createToken() also gives ExpireTime; NlsToken
(named after the vendor C++ SDK's class) keeps one and refreshes it before it expires.
"""
import base64
import datetime
import hashlib
import hmac
import logging
import threading
import time
import uuid
from urllib.parse import quote

import requests

from .exception import GetTokenFailed, TokenClientError, TokenServerError

__all__ = ['getToken', 'createToken', 'NlsToken']

_log = logging.getLogger('nls')

_ATTEMPTS = 3   # aliyunsdkcore retries too; each attempt is re-signed (a reused nonce is rejected)
_USER_AGENT = 'nls-lite (python; compatible with nls-python-sdk 1.1.0)'


def percent_encode(value):
    """RFC 3986 encoding of the UTF-8 bytes, unreserved set A-Z a-z 0-9 - _ . ~ (POP's rule)."""
    return quote(str(value), safe='-_.~')


def canonicalized_query(params):
    return '&'.join(percent_encode(k) + '=' + percent_encode(params[k]) for k in sorted(params))


def string_to_sign(method, params):
    return method + '&' + percent_encode('/') + '&' + percent_encode(canonicalized_query(params))


def sign(method, params, access_key_secret):
    """POP signature over every parameter in `params` (which must not hold Signature itself)."""
    digest = hmac.new((access_key_secret + '&').encode('utf-8'),
                      string_to_sign(method, params).encode('utf-8'), hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


def mask(akid):
    return (str(akid)[:4] + '****') if akid else '****'


def _base_url(url, scheme):
    if '://' in url:
        scheme, url = url.split('://', 1)
    return '%s://%s/' % (scheme, url.strip('/'))


def _request_params(akid, domain, version):
    return {
        'AccessKeyId': akid,
        'Action': 'CreateToken',
        'Format': 'JSON',
        'RegionId': domain,
        'SignatureMethod': 'HMAC-SHA1',
        'SignatureNonce': uuid.uuid4().hex,
        'SignatureVersion': '1.0',
        'Timestamp': datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ'),
        'Version': version,
    }


def _server_error(response):
    try:
        body = response.json()
        return TokenServerError(response.status_code, body['Code'], body['Message'],
                                body.get('RequestId', ''))
    except (ValueError, KeyError, TypeError):
        return TokenServerError(response.status_code, 'SDK.InvalidServerResponse',
                                (response.text or '')[:200], '')


def createToken(akid, aksecret, domain='cn-shanghai', version='2019-02-28',
                url='nls-meta.cn-shanghai.aliyuncs.com', *, scheme='https', timeout=(5, 10)):
    """Call CreateToken and return its Token object: {'ExpireTime': epoch s, 'Id': str, 'UserId': str}."""
    if akid is None or aksecret is None:
        raise GetTokenFailed('No akid or aksecret')
    base = _base_url(url, scheme)
    headers = {'x-acs-action': 'CreateToken', 'x-acs-version': version,
               'Accept': 'application/json', 'User-Agent': _USER_AGENT}
    failure = None
    for attempt in range(1, _ATTEMPTS + 1):
        params = _request_params(akid, domain, version)
        params['Signature'] = sign('POST', params, aksecret)
        query = '&'.join(percent_encode(k) + '=' + percent_encode(v) for k, v in params.items())
        _log.debug('CreateToken attempt %d for AccessKeyId %s at %s', attempt, mask(akid), base)
        try:
            response = requests.post(base + '?' + query, headers=headers, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            failure = TokenClientError(exc)
            continue
        except requests.RequestException as exc:
            raise TokenClientError(exc)
        if response.status_code >= 500:
            failure = _server_error(response)
            continue
        if response.status_code != 200:
            raise _server_error(response)
        try:
            body = response.json()
        except ValueError:
            raise TokenServerError(response.status_code, 'SDK.InvalidServerResponse',
                                   (response.text or '')[:200], '')
        if not isinstance(body, dict) or 'Token' not in body:
            raise GetTokenFailed(f'Token not in response:{body}')
        token = body['Token']
        if not isinstance(token, dict) or 'Id' not in token:
            raise GetTokenFailed(f'Missing id field in token:{token}')
        return token
    raise failure


def getToken(akid, aksecret, domain='cn-shanghai', version='2019-02-28',
             url='nls-meta.cn-shanghai.aliyuncs.com', **kwargs):
    """Return a new access token string (Token.Id). Keyword-only extras: scheme, timeout."""
    return createToken(akid, aksecret, domain, version, url, **kwargs)['Id']


class NlsToken(object):
    """A token that renews itself: getToken() returns the cached Id until `refresh_before_s` before
    its ExpireTime, then fetches a new one. Thread-safe; one fetch at a time."""

    def __init__(self, akid, aksecret, domain='cn-shanghai', version='2019-02-28',
                 url='nls-meta.cn-shanghai.aliyuncs.com', *, scheme='https', timeout=(5, 10),
                 refresh_before_s=600):
        if akid is None or aksecret is None:
            raise GetTokenFailed('No akid or aksecret')
        self._args = (akid, aksecret, domain, version, url)
        self._kwargs = {'scheme': scheme, 'timeout': timeout}
        self._refresh_before_s = refresh_before_s
        self._lock = threading.Lock()
        self._token = None

    def applyNlsToken(self):
        """Fetch a new token now; returns its Id."""
        token = createToken(*self._args, **self._kwargs)
        with self._lock:
            self._token = token
        return token['Id']

    def getToken(self):
        with self._lock:
            token = self._token
            if token is not None and time.time() < token.get('ExpireTime', 0) - self._refresh_before_s:
                return token['Id']
            token = self._token = createToken(*self._args, **self._kwargs)
            return token['Id']

    def getExpireTime(self):
        """ExpireTime (epoch seconds) of the cached token, 0 before the first fetch."""
        with self._lock:
            return self._token.get('ExpireTime', 0) if self._token else 0

    def __repr__(self):
        return '<NlsToken akid=%s expires=%s>' % (mask(self._args[0]), self.getExpireTime())
