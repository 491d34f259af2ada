"""The HTTP half of the SDK (task and customization APIs) over requests."""
import json
import time
from http import HTTPStatus

import requests

from ..api_entities.dashscope_response import DashScopeAPIResponse
from ..common.constants import DEFAULT_REQUEST_TIMEOUT_SECONDS
from .api_key import get_default_api_key
from .logging import logger
from .utils import (data_inspection_enabled, forced_url, resolve_url, sdk_headers, split_headers,
                    user_agent)

ACCEPT = 'application/json; charset=utf-8'


def base_url(base_address, workspace):
    import dashscope_asr
    return resolve_url(forced_url('HTTP') or base_address or dashscope_asr.base_http_api_url,
                       workspace).rstrip('/')


def post_headers(api_key, workspace, headers, ua_suffix, asynchronous):
    """Headers of a submit/customization POST, in the vendor's order; custom headers win."""
    custom, custom_ua = split_headers(headers)
    out = {}
    if asynchronous:
        out['X-DashScope-Async'] = 'enable'
    out['Accept'] = ACCEPT
    out['Authorization'] = 'Bearer %s' % api_key
    out['user-agent'] = user_agent({'user-agent': custom_ua} if custom_ua else None, ua_suffix)
    out.update(sdk_headers('audio'))
    if data_inspection_enabled():
        out['X-DashScope-DataInspection'] = 'enable'
    out['Content-Type'] = ACCEPT
    if workspace:
        out['X-DashScope-WorkSpace'] = workspace
    out.update(custom)
    return out


def task_headers(api_key, workspace, headers, ua_suffix):
    """Headers of a task GET/cancel/list: custom headers go *under* the defaults (vendor order)."""
    custom, custom_ua = split_headers(headers)
    out = dict(custom)
    if workspace:
        out['X-DashScope-WorkSpace'] = workspace
    out['user-agent'] = user_agent({'user-agent': custom_ua} if custom_ua else None, ua_suffix)
    out.update(sdk_headers('tasks'))
    out['Authorization'] = 'Bearer %s' % api_key
    out['Accept'] = ACCEPT
    return out


def request(method, url, **kwargs):
    """One request on its own session; its connection is closed before returning (the body is
    already read), so no socket outlives the call."""
    with requests.Session() as session:
        try:
            return session.request(method, url, **kwargs)
        finally:
            # urllib3 2.7 no longer closes pools when a PoolManager is cleared: close ours now.
            for adapter in session.adapters.values():
                pools = adapter.poolmanager.pools
                for key in list(pools.keys()):
                    try:
                        pools[key].close()
                    except (KeyError, AttributeError):
                        pass


def encode(body):
    return json.dumps(body, ensure_ascii=False).encode('utf-8')


def _json(resp):
    try:
        return resp.json()
    except ValueError:
        return None


def error_response(resp):
    headers = dict(resp.headers)
    if 'application/json' in resp.headers.get('Content-Type', ''):
        body = _json(resp)
        if isinstance(body, dict):
            return DashScopeAPIResponse(
                status_code=resp.status_code, request_id=body.get('request_id', ''),
                code=body.get('code'), message=body.get('message') or body.get('msg') or '',
                headers=headers)
    return DashScopeAPIResponse(status_code=resp.status_code, request_id='', code='Unknown',
                                message=resp.text, headers=headers)


def post_response(resp):
    """Mapping of a submit/customization reply."""
    if resp.status_code != HTTPStatus.OK:
        return error_response(resp)
    body = _json(resp)
    if not isinstance(body, dict):
        return error_response(resp)
    output = body.get('output')
    if output is None and 'task_id' in body:
        output = {'task_id': body['task_id']}
    return DashScopeAPIResponse(status_code=HTTPStatus.OK, request_id=body.get('request_id', ''),
                                code='', message='', output=output, usage=body.get('usage'),
                                headers=dict(resp.headers))


def get_response(resp):
    """Mapping of a task GET reply."""
    if resp.status_code not in (HTTPStatus.OK, HTTPStatus.CREATED):
        return error_response(resp)
    body = _json(resp)
    if not isinstance(body, dict):
        return error_response(resp)
    if 'output' in body:
        output = body['output']
    elif 'data' in body:
        output = body['data']
    else:
        output = body
    return DashScopeAPIResponse(status_code=HTTPStatus.OK, request_id=body.get('request_id', ''),
                                code=body.get('code'), message=body.get('message', ''),
                                output=output, usage=body.get('usage'), headers=dict(resp.headers))


def with_retries(send, retries, interval_s):
    """The vendor's retry rule: up to ``retries`` more tries on a timeout or connection error,
    then the last network error is raised (the vendor raised UnboundLocalError; reference D-65)."""
    attempt = 0
    while True:
        try:
            return send()
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            if attempt >= retries:
                raise
            attempt += 1
            logger.warning('request failed (%s), retry %d of %d', type(exc).__name__, attempt,
                           retries)
            time.sleep(interval_s)


def resolve_key(api_key):
    return api_key if api_key is not None else get_default_api_key()


def timeout_of(kwargs):
    return kwargs.get('request_timeout') or DEFAULT_REQUEST_TIMEOUT_SECONDS
