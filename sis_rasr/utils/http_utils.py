# -*- coding: utf-8 -*-
"""HTTP helpers over requests (IAM token, later-phase REST clients). Never touches urllib3 warnings."""
import json

import requests

from sis_rasr.exception.exceptions import ClientException, ServerException
from sis_rasr.utils.logger_utils import logger

NUM_MAX_RETRY = 5


def http_connect(url, header, data, http_method='POST', time_out=5, proxy=None, certificate_check=True):
    """
        Sends one request, retrying up to NUM_MAX_RETRY times on requests' connection errors.
    :param data:     dict (JSON-encoded) or str; body for POST/PUT, query for GET/DELETE
    :param proxy:    None (ignore environment proxies), [host, port] or [host, port, user, password]
    :param certificate_check: verify TLS (default True; the vendor default was False)
    :return: the requests Response
    """
    if isinstance(data, dict):
        data = json.dumps(data)
    if http_method not in ('POST', 'GET', 'PUT', 'DELETE'):
        logger.error('%s is invalid' % http_method)
        raise ClientException('%s is invalid' % http_method)
    proxies = _generate_request_proxy(proxy) if proxy is not None else {'http': None, 'https': None}
    send = getattr(requests, http_method.lower())
    payload = {'data': data} if http_method in ('POST', 'PUT') else {'params': data}
    resp = None
    for _ in range(NUM_MAX_RETRY):
        try:
            resp = send(url, headers=header, timeout=time_out, verify=certificate_check, proxies=proxies, **payload)
            break
        except requests.exceptions.RequestException as e:
            logger.error('Error occurs in %s, the client will retry %d times. Error message is %s'
                         % (http_method, NUM_MAX_RETRY, type(e).__name__))
    if resp is None:
        logger.error('%s Response is empety, url is %s' % (http_method, url))
        raise ClientException('%s Response is empety, url is %s' % (http_method, url))
    return resp


def parse_resp(resp):
    """ Response -> JSON (None for an empty body); an error_code/error_msg body raises ServerException. """
    if resp is None or resp.text is None or resp.text == '':
        return None
    text = resp.text
    try:
        result = json.loads(text)
    except ValueError:
        error_msg = 'Parsing json failed, the text is %s' % text
        logger.error(error_msg)
        raise ClientException(error_msg)
    if isinstance(result, dict) and 'error_code' in result and 'error_msg' in result:
        logger.error(json.dumps(result))
        raise ServerException(result['error_code'], result['error_msg'])
    return result


def generate_scheme_host_uri(url):
    if url.find('//') == -1 or url.find('com') == -1:
        error_msg = '%s is invalid' % url
        logger.error(error_msg)
        raise ClientException(error_msg)
    scheme, rest = url.split('//', 1)
    host, uri = rest.split('com', 1)
    return scheme + '//', host + 'com', uri


def _generate_request_proxy(proxy):
    if not isinstance(proxy, list) or len(proxy) not in (2, 4):
        logger.error('Proxy must be list, the format is [host, port] or [host, port, username, password]')
        raise ClientException('Proxy must be list, the format is [host, port] or [host, port, username, password]')
    host_port = str(proxy[0]) + ':' + str(proxy[1])
    if len(proxy) == 4:
        host_port = str(proxy[2]) + ':' + str(proxy[3]) + '@' + host_port
    return {'http': 'http://' + host_port, 'https': 'https://' + host_port}
