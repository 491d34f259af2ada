"""File transcription: asynchronous HTTP tasks (``dashscope.audio.asr.transcription``)."""
import time
from http import HTTPStatus
from typing import List

from ...api_entities.dashscope_response import DashScopeAPIResponse, TranscriptionResponse
from ...common import _http
from ...common.constants import REPEATABLE_STATUS, TaskStatus
from ...common.error import InvalidParameter, InvalidTask, ModelRequired
from ...common.logging import apply_env_logging_level, logger

__all__ = ['Transcription']

# Keys of **kwargs consumed by the request instead of going to `parameters`.
_RESERVED = ('headers', 'base_address', 'user_agent', 'request_timeout', 'resources', 'api_key',
             'workspace', 'session', 'stream', 'task_id', 'is_service', 'api_protocol',
             'http_method', 'async_request', 'query', 'form', 'sdk_module')
_TERMINAL = (TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.SUCCEEDED, TaskStatus.UNKNOWN)


class Transcription(object):
    """Submit audio file URLs for recognition and poll the task."""

    MAX_QUERY_TRY_COUNT = 3
    # Seconds between network retries, and the first poll interval of wait() (vendor values).
    _RETRY_INTERVAL_S = 2
    _WAIT_FIRST_INTERVAL_S = 1
    _WAIT_MAX_INTERVAL_S = 5

    class Models:
        paraformer_v1 = 'paraformer-v1'
        paraformer_8k_v1 = 'paraformer-8k-v1'
        paraformer_mtl_v1 = 'paraformer-mtl-v1'

    @classmethod
    def async_call(cls, model: str, file_urls: List[str], phrase_id: str = None, api_key: str = None,
                   workspace: str = None, **kwargs) -> TranscriptionResponse:
        """Submit a transcription task; returns the reply as is (errors included)."""
        return TranscriptionResponse.from_api_response(
            cls._submit(model, file_urls, phrase_id, api_key, workspace, kwargs))

    @classmethod
    def call(cls, model: str, file_urls: List[str], phrase_id: str = None, api_key: str = None,
             workspace: str = None, **kwargs) -> TranscriptionResponse:
        """Submit, then wait for the task to end."""
        wait_timeout = kwargs.pop('wait_timeout', -1)
        response = cls._submit(model, file_urls, phrase_id, api_key, workspace, kwargs)
        # Poll where we submitted (the vendor dropped these; reference D-61).
        forward = {k: kwargs[k] for k in ('base_address', 'headers', 'request_timeout', 'user_agent')
                   if k in kwargs}
        return cls.wait(response, api_key=api_key, workspace=workspace, wait_timeout=wait_timeout,
                        **forward)

    @classmethod
    def fetch(cls, task, api_key: str = None, workspace: str = None,
              **kwargs) -> TranscriptionResponse:
        """One status query of a task (id or submit response)."""
        task_id = cls._task_id(task)
        return TranscriptionResponse.from_api_response(_http.with_retries(
            lambda: cls._get(task_id, api_key, workspace, kwargs), cls.MAX_QUERY_TRY_COUNT,
            cls._RETRY_INTERVAL_S))

    @classmethod
    def wait(cls, task, api_key: str = None, workspace: str = None, wait_timeout=-1,
             **kwargs) -> TranscriptionResponse:
        """Poll until the task ends (1, 1, 2, 2, 2, 4, … s apart, at most 5 s), or ``wait_timeout``."""
        task_id = cls._task_id(task)
        start = time.time()
        step = 0
        interval = cls._WAIT_FIRST_INTERVAL_S
        while True:
            step += 1
            if wait_timeout is not None and wait_timeout > 0 and time.time() - start >= wait_timeout:
                logger.warning('Wait task: %s timeout after %s seconds.', task_id, wait_timeout)
                return TranscriptionResponse.from_api_response(DashScopeAPIResponse(
                    request_id=task_id, status_code=HTTPStatus.REQUEST_TIMEOUT,
                    code='WaitTaskTimeout',
                    message='Wait task: %s timeout after %s seconds.' % (task_id, wait_timeout)))
            if step % 3 == 0:
                interval = min(interval * 2, cls._WAIT_MAX_INTERVAL_S)
            response = cls._get(task_id, api_key, workspace, kwargs)
            if response.status_code == HTTPStatus.OK:
                if response.output is None:
                    return TranscriptionResponse.from_api_response(response)
                status = response.output.get('task_status')
                if status in _TERMINAL:
                    return TranscriptionResponse.from_api_response(response)
                logger.info('The task %s is  %s', task_id, status)
            elif response.status_code in REPEATABLE_STATUS:
                logger.warning('Get task: %s temporary failure, status code: %s, retrying.',
                               task_id, response.status_code)
            else:
                return TranscriptionResponse.from_api_response(response)
            time.sleep(interval)

    @classmethod
    def cancel(cls, task, api_key: str = None, workspace: str = None,
               **kwargs) -> DashScopeAPIResponse:
        """Cancel a PENDING task."""
        return cls._task_call('POST', cls._task_id(task), '/cancel', api_key, workspace, kwargs)

    @classmethod
    def list(cls, start_time: str = None, end_time: str = None, model_name: str = None,
             api_key_id: str = None, region: str = None, status: str = None, page_no: int = 1,
             page_size: int = 10, api_key: str = None, workspace: str = None,
             **kwargs) -> DashScopeAPIResponse:
        """List async tasks (times as ``20230420000000``)."""
        key = _http.resolve_key(api_key)
        params = {'page_no': page_no, 'page_size': page_size}
        for name, value in (('start_time', start_time), ('end_time', end_time),
                            ('model_name', model_name), ('api_key_id', api_key_id),
                            ('region', region), ('status', status)):
            if value is not None:
                params[name] = value
        resp = _http.request('GET', 
            '%s/tasks' % _http.base_url(kwargs.get('base_address'), workspace), params=params,
            headers=_http.task_headers(key, workspace, kwargs.get('headers'),
                                       kwargs.get('user_agent')),
            timeout=_http.timeout_of(kwargs))
        if resp.status_code != HTTPStatus.OK:
            return _http.error_response(resp)
        body = resp.json()
        request_id = body.pop('request_id', '')
        return DashScopeAPIResponse(request_id=request_id, status_code=HTTPStatus.OK, code=None,
                                    output=body, usage=None, message='')

    # -- internals ---------------------------------------------------------------------------------
    @staticmethod
    def _task_id(task):
        if isinstance(task, str):
            task_id = task
        elif isinstance(task, DashScopeAPIResponse):
            if task.status_code != HTTPStatus.OK:
                raise InvalidTask('Invalid task, task create failed: %s' % task)
            task_id = (task.output or {}).get('task_id')
        else:
            raise InvalidParameter('Task invalid!')
        if not task_id:
            raise InvalidParameter('Task id required!')
        return task_id

    @classmethod
    def _submit(cls, model, file_urls, phrase_id, api_key, workspace, kwargs):
        if not model:
            raise ModelRequired('Model is required!')
        apply_env_logging_level()
        key = _http.resolve_key(api_key)
        url = '%s/services/audio/asr/transcription' % _http.base_url(kwargs.get('base_address'),
                                                                     workspace)
        parameters = {k: v for k, v in kwargs.items() if v is not None and k not in _RESERVED}
        body = {'model': model, 'parameters': parameters}
        resources = kwargs.get('resources')
        if phrase_id:
            resources = [{'resource_id': phrase_id, 'resource_type': 'asr_phrase'}]
        if resources:
            body['resources'] = resources
        body['input'] = {'file_urls': file_urls}
        data = _http.encode(body)
        headers = _http.post_headers(key, workspace, kwargs.get('headers'),
                                     kwargs.get('user_agent'), asynchronous=True)
        resp = _http.with_retries(
            lambda: _http.request('POST', url, data=data, headers=headers, timeout=_http.timeout_of(kwargs)),
            cls.MAX_QUERY_TRY_COUNT, cls._RETRY_INTERVAL_S)
        return _http.post_response(resp)

    @classmethod
    def _get(cls, task_id, api_key, workspace, kwargs):
        return cls._task_call('GET', task_id, '', api_key, workspace, kwargs)

    @classmethod
    def _task_call(cls, method, task_id, suffix, api_key, workspace, kwargs):
        """One request on /tasks/<task_id><suffix> with the task API's headers and timeout."""
        key = _http.resolve_key(api_key)
        resp = _http.request(
            method, '%s/tasks/%s%s' % (_http.base_url(kwargs.get('base_address'), workspace), task_id, suffix),
            headers=_http.task_headers(key, workspace, kwargs.get('headers'), kwargs.get('user_agent')),
            timeout=_http.timeout_of(kwargs))
        return _http.get_response(resp)
