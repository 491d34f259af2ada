"""Response objects of ``dashscope.api_entities.dashscope_response``: dicts with attribute access."""
import copy
import json
from http import HTTPStatus

__all__ = ['DictMixin', 'DashScopeAPIResponse', 'RecognitionResponse', 'RecognitionOutput',
           'RecognitionUsage', 'TranscriptionResponse', 'TranscriptionOutput', 'TranscriptionUsage']


class DictMixin(dict):
    """A dict whose keys are also attributes (``obj.x`` is ``obj['x']``)."""

    def __init__(self, *args, **kwargs):
        dict.__init__(self, *args, **kwargs)

    def __getattr__(self, attr):
        try:
            return self[attr]
        except KeyError:
            raise AttributeError("'%s' object has no attribute '%s'" % (type(self).__name__, attr))

    def __setattr__(self, attr, value):
        self[attr] = value

    def __delattr__(self, attr):
        try:
            del self[attr]
        except KeyError:
            raise AttributeError(attr)

    def __reduce__(self):
        # Rebuild as a plain dict fill so subclasses with required constructor arguments pickle.
        return (_rebuild, (type(self), dict(self)))

    def update(self, **kwargs):
        for key, value in kwargs.items():
            self[key] = value

    def pop(self, key, *default):
        return dict.pop(self, key, *default)

    def copy(self):
        return _rebuild(type(self), dict(self))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return _rebuild(type(self), copy.deepcopy(dict(self), memo))

    def getattr(self, attr):
        return self.get(attr)

    def setattr(self, attr, value):
        self[attr] = value

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, dict.__repr__(self))

    def __str__(self):
        return json.dumps(self, ensure_ascii=False)


def _rebuild(cls, data):
    obj = dict.__new__(cls)
    dict.update(obj, data)
    return obj


_SIX = ('status_code', 'request_id', 'code', 'message', 'output', 'usage')


class DashScopeAPIResponse(DictMixin):
    def __init__(self, status_code, request_id='', code='', message='', output=None, usage=None,
                 headers=None, **kwargs):
        DictMixin.__init__(self, status_code=status_code, request_id=request_id, code=code,
                           message=message, output=output, usage=usage, headers=headers, **kwargs)

    def _six(self):
        return {k: self.get(k) for k in _SIX}

    def __str__(self):
        return json.dumps(self._six(), ensure_ascii=False)

    def __repr__(self):
        return '%s(%r)' % (type(self).__name__, self._six())


class RecognitionOutput(DictMixin):
    def __init__(self, sentence=None, **kwargs):
        DictMixin.__init__(self, sentence=sentence, **kwargs)


class RecognitionUsage(DictMixin):
    def __init__(self, duration=0, **kwargs):
        DictMixin.__init__(self, duration=duration, **kwargs)


class RecognitionResponse(DashScopeAPIResponse):
    @staticmethod
    def from_api_response(api_response):
        headers = api_response.get('headers')
        if api_response.get('status_code') == HTTPStatus.OK:
            output = api_response.get('output')
            usage = api_response.get('usage')
            return RecognitionResponse(
                status_code=api_response['status_code'], request_id=api_response.get('request_id'),
                code=api_response.get('code'), message=api_response.get('message'),
                output=(RecognitionOutput(**output) if output is not None and 'sentence' in output
                        else None),
                usage=RecognitionUsage(**usage) if usage is not None else None,
                headers=headers)
        return RecognitionResponse(
            status_code=api_response.get('status_code'), request_id=api_response.get('request_id'),
            code=api_response.get('code'), message=api_response.get('message'), headers=headers)

    @staticmethod
    def is_sentence_end(sentence):
        """True when ``sentence`` is final: it carries a non-null ``end_time``."""
        return sentence is not None and 'end_time' in sentence and sentence['end_time'] is not None


class TranscriptionOutput(DictMixin):
    # Defaults keep a malformed reply from raising TypeError (reference D-57).
    def __init__(self, task_id=None, task_status=None, **kwargs):
        DictMixin.__init__(self, task_id=task_id, task_status=task_status, **kwargs)


class TranscriptionUsage(DictMixin):
    def __init__(self, **kwargs):
        DictMixin.__init__(self, **kwargs)


class TranscriptionResponse(DashScopeAPIResponse):
    @staticmethod
    def from_api_response(api_response):
        common = dict(status_code=api_response.get('status_code'),
                      request_id=api_response.get('request_id'),
                      code=api_response.get('code'), message=api_response.get('message'),
                      headers=api_response.get('headers'))
        if api_response.get('status_code') == HTTPStatus.OK:
            output = api_response.get('output')
            usage = api_response.get('usage')
            return TranscriptionResponse(
                output=TranscriptionOutput(**output) if output is not None else None,
                usage=TranscriptionUsage(**usage) if usage is not None else None, **common)
        return TranscriptionResponse(**common)
