"""Custom hot words v2 (``dashscope.audio.asr.vocabulary``)."""
from http import HTTPStatus
from typing import List

from ...common import _http
from ...common.logging import apply_env_logging_level

__all__ = ['VocabularyService', 'VocabularyServiceException']


class VocabularyServiceException(Exception):
    def __init__(self, request_id: str, status_code: int, code: str, error_message: str) -> None:
        # The values go to Exception too, so the exception pickles (reference D-58).
        super().__init__(request_id, status_code, code, error_message)
        self._request_id = request_id
        self._status_code = status_code
        self._code = code
        self._error_message = error_message

    def __str__(self):
        return 'Request: %s, Status Code: %s, Code: %s, Error Message: %s' % (
            self._request_id, self._status_code, self._code, self._error_message)


class VocabularyService(object):
    """Create, list, query, update and delete hot-word vocabularies."""

    MAX_QUERY_TRY_COUNT = 3
    _RETRY_INTERVAL_S = 2

    def __init__(self, api_key=None, workspace=None, model=None, **kwargs) -> None:
        apply_env_logging_level()
        self._api_key = api_key
        self._workspace = workspace
        self._kwargs = kwargs
        self._last_request_id = None
        self.model = model if model is not None else 'speech-biasing'

    def __call_with_input(self, input):
        kwargs = self._kwargs
        reserved = ('headers', 'base_address', 'user_agent', 'request_timeout')
        parameters = {k: v for k, v in kwargs.items() if k not in reserved and v is not None}
        url = '%s/services/audio/asr/customization' % _http.base_url(kwargs.get('base_address'),
                                                                      self._workspace)
        headers = _http.post_headers(_http.resolve_key(self._api_key), self._workspace,
                                     kwargs.get('headers'), kwargs.get('user_agent'),
                                     asynchronous=False)
        data = _http.encode({'model': self.model, 'parameters': parameters, 'input': input})
        resp = _http.with_retries(
            lambda: _http.request('POST', url, data=data, headers=headers, timeout=_http.timeout_of(kwargs)),
            self.MAX_QUERY_TRY_COUNT, self._RETRY_INTERVAL_S)
        response = _http.post_response(resp)
        if response.status_code != HTTPStatus.OK:
            raise VocabularyServiceException(response.request_id, response.status_code,
                                             response.code, response.message)
        self._last_request_id = response.request_id
        return response

    def create_vocabulary(self, target_model: str, prefix: str, vocabulary: List[dict]) -> str:
        """Create a vocabulary; returns its id.

        ``prefix``: digits and lower-case letters, less than 10 characters. ``vocabulary``: entries
        ``{"text": str, "weight": int (1-5), "lang": str}``.
        """
        response = self.__call_with_input({'action': 'create_vocabulary',
                                            'target_model': target_model, 'prefix': prefix,
                                            'vocabulary': vocabulary})
        return response.output['vocabulary_id']

    def list_vocabularies(self, prefix=None, page_index: int = 0, page_size: int = 10) -> List[dict]:
        """Vocabularies (optionally only those with ``prefix``), a page at a time."""
        input = {'action': 'list_vocabulary'}
        if prefix:
            input['prefix'] = prefix
        input['page_index'] = page_index
        input['page_size'] = page_size
        return self.__call_with_input(input).output['vocabulary_list']

    def query_vocabulary(self, vocabulary_id: str) -> dict:
        """The vocabulary's entries, target model, times and status (``OK`` when usable)."""
        return self.__call_with_input({'action': 'query_vocabulary',
                                       'vocabulary_id': vocabulary_id}).output

    def update_vocabulary(self, vocabulary_id: str, vocabulary: List[dict]) -> None:
        self.__call_with_input({'action': 'update_vocabulary', 'vocabulary_id': vocabulary_id,
                                'vocabulary': vocabulary})

    def delete_vocabulary(self, vocabulary_id: str) -> None:
        self.__call_with_input({'action': 'delete_vocabulary', 'vocabulary_id': vocabulary_id})

    def get_last_request_id(self):
        return self._last_request_id
