# -*- coding: utf-8 -*-
"""APIG "SDK-HMAC-SHA256" request signing (the AK/SK scheme of Huawei Cloud API Gateway).

Function and attribute names follow the vendor's signer module; the output is byte-identical.
"""
import copy
import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import quote, unquote

BasicDateFormat = "%Y%m%dT%H%M%SZ"
Algorithm = "SDK-HMAC-SHA256"
HeaderXDate = "X-Sdk-Date"
HeaderHost = "host"
HeaderAuthorization = "Authorization"
HeaderContentSha256 = "x-sdk-content-sha256"


def hmacsha256(keyByte, message):
    return hmac.new(keyByte.encode('utf-8'), message.encode('utf-8'), digestmod=hashlib.sha256).digest()


def StringToSign(canonicalRequest, t):
    digest = HexEncodeSHA256Hash(canonicalRequest.encode('utf-8'))
    return "%s\n%s\n%s" % (Algorithm, t.strftime(BasicDateFormat), digest)


def urlencode(s):
    return quote(s, safe='~')


def findHeader(r, header):
    wanted = header.lower()
    for k in r.headers:
        if k.lower() == wanted:
            return r.headers[k]
    return None


def HexEncodeSHA256Hash(data):
    return hashlib.sha256(data).hexdigest()


class HttpRequest:
    """ A request to sign: method, scheme, host (with :port), uri, query (dict of lists), headers, body. """

    def __init__(self, method="", url="", headers=None, body=""):
        self.method = method
        scheme = 'http'
        parts = url.split("://", 1)
        if len(parts) > 1:
            scheme, url = parts
        query = {}
        parts = url.split('?', 1)
        url = parts[0]
        if len(parts) > 1:
            for pair in parts[1].split("&"):
                key, _, value = pair.partition("=")
                if key == '':
                    continue
                query.setdefault(unquote(key), []).append(unquote(value))
        host, slash, path = url.partition('/')
        self.scheme = scheme
        self.host = host
        self.uri = '/' + path if slash else '/'
        self.query = query
        self.headers = {} if headers is None else copy.deepcopy(headers)
        self.body = body.encode("utf-8") if isinstance(body, str) else body


def CanonicalRequest(r, signedHeaders):
    canonicalHeaders = CanonicalHeaders(r, signedHeaders)
    hexencode = findHeader(r, HeaderContentSha256)
    if hexencode is None:
        hexencode = HexEncodeSHA256Hash(r.body)
    return "%s\n%s\n%s\n%s\n%s\n%s" % (r.method.upper(), CanonicalURI(r), CanonicalQueryString(r),
                                       canonicalHeaders, ";".join(signedHeaders), hexencode)


def CanonicalURI(r):
    path = "/".join(urlencode(segment) for segment in unquote(r.uri).split('/'))
    if not path.endswith('/'):
        path += "/"  # APIG always signs the path with a trailing slash
    return path


def CanonicalQueryString(r):
    pairs = []
    for key in sorted(r.query):
        k = urlencode(key)
        value = r.query[key]
        if type(value) is list:
            value.sort()
            for v in value:
                pairs.append(k + "=" + urlencode(str(v)))
        else:
            pairs.append(k + "=" + urlencode(str(value)))
    return '&'.join(pairs)


def CanonicalHeaders(r, signedHeaders):
    stripped = {}
    for key in r.headers:
        value = r.headers[key].strip()
        stripped[key.lower()] = value
        # http.client sends header values as latin-1: keep UTF-8 bytes intact on the wire.
        r.headers[key] = value.encode("utf-8").decode('iso-8859-1')
    return '\n'.join(key + ":" + stripped[key] for key in signedHeaders) + "\n"


def SignedHeaders(r):
    return sorted(key.lower() for key in r.headers)


def SignStringToSign(stringToSign, signingKey):
    return hmacsha256(signingKey, stringToSign).hex()


def AuthHeaderValue(signature, AppKey, signedHeaders):
    return "%s Access=%s, SignedHeaders=%s, Signature=%s" % (
        Algorithm, AppKey, ";".join(signedHeaders), signature)


class Signer:
    """ Signs an ``HttpRequest`` in place with ``Key`` (AK) and ``Secret`` (SK). """

    def __init__(self):
        self.Key = ""
        self.Secret = ""

    def Verify(self, r, authorization):
        """ True iff ``authorization`` (bare hex signature) matches the one computed for ``r``. """
        if isinstance(r.body, str):
            r.body = r.body.encode('utf-8')
        headerTime = findHeader(r, HeaderXDate)
        if headerTime is None:
            return False
        t = datetime.strptime(headerTime, BasicDateFormat)
        signedHeaders = SignedHeaders(r)
        stringToSign = StringToSign(CanonicalRequest(r, signedHeaders), t)
        return hmac.compare_digest(authorization, SignStringToSign(stringToSign, self.Secret))

    def Sign(self, r):
        """ Adds X-Sdk-Date (if absent), host (if absent), Authorization and content-length. """
        if isinstance(r.body, str):
            r.body = r.body.encode('utf-8')
        headerTime = findHeader(r, HeaderXDate)
        if headerTime is None:
            t = datetime.now(timezone.utc)
            r.headers[HeaderXDate] = t.strftime(BasicDateFormat)
        else:
            t = datetime.strptime(headerTime, BasicDateFormat)
        if findHeader(r, 'host') is None:
            r.headers[HeaderHost] = r.host
        signedHeaders = SignedHeaders(r)
        stringToSign = StringToSign(CanonicalRequest(r, signedHeaders), t)
        signature = SignStringToSign(stringToSign, self.Secret)
        r.headers[HeaderAuthorization] = AuthHeaderValue(signature, self.Key, signedHeaders)
        r.headers["content-length"] = str(len(r.body))
        queryString = CanonicalQueryString(r)
        if queryString != "":
            r.uri = r.uri + "?" + queryString
