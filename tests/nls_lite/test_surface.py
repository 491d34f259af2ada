"""The import surface and signatures of `import nls`, and argument checks made before any I/O."""
import inspect

import pytest

import nls_lite as nls
from nls_lite import _session, exception
from nls_lite.speech_recognizer import NlsSpeechRecognizer
from nls_lite.speech_transcriber import NlsSpeechTranscriber

DEFAULT_URL = 'wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1'


def test_top_level_names_of_the_original():
    expected = {'NlsSpeechRecognizer', 'NlsSpeechTranscriber', 'enableTrace', 'dump', 'error', 'warning',
                'debug', 'trace', 'isEnabledForError', 'isEnabledForDebug', 'isEnabledForTrace', 'wav2pcm',
                'GetDefaultContext', '__version__', 'core', 'exception', 'logging', 'token', 'util', 'version',
                'speech_recognizer', 'speech_transcriber'}
    assert expected <= set(dir(nls))
    assert nls.__version__ == '1.0.0'
    assert nls.token.getToken and nls.exception.InvalidParameter and nls.core.NlsCore
    assert not hasattr(nls, 'InvalidParameter')   # exceptions stay in the submodule


def test_star_import_exports():
    namespace = {}
    exec('from nls_lite import *', namespace)
    assert {'NlsSpeechRecognizer', 'NlsSpeechTranscriber', 'enableTrace', 'wav2pcm'} <= set(namespace)


def test_exceptions_derive_from_exception_directly():
    for name in ('InvalidParameter', 'GetTokenFailed', 'ConnectionTimeout', 'ConnectionUnavailable',
                 'StartTimeoutException', 'StopTimeoutException', 'NotStartException',
                 'CompleteTimeoutException', 'WrongStateException'):
        assert getattr(exception, name).__bases__ == (Exception,)
    assert issubclass(exception.TokenServerError, exception.GetTokenFailed)
    assert issubclass(exception.TokenClientError, exception.GetTokenFailed)


def _params(func):
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


def test_recognizer_signatures():
    assert _params(NlsSpeechRecognizer.__init__) == [
        ('self', inspect._empty), ('url', DEFAULT_URL), ('token', None), ('appkey', None), ('on_start', None),
        ('on_result_changed', None), ('on_completed', None), ('on_error', None), ('on_close', None),
        ('callback_args', [])]
    start = [('self', inspect._empty), ('aformat', 'pcm'), ('sample_rate', 16000), ('ch', 1),
             ('enable_intermediate_result', False), ('enable_punctuation_prediction', False),
             ('enable_inverse_text_normalization', False), ('timeout', 10), ('ping_interval', 8),
             ('ping_timeout', None), ('ex', None)]
    assert _params(NlsSpeechRecognizer.start) == start
    assert _params(NlsSpeechTranscriber.start) == start
    assert _params(NlsSpeechRecognizer.stop) == [('self', inspect._empty), ('timeout', 10)]
    assert [n for n, _ in _params(NlsSpeechRecognizer.send_audio)] == ['self', 'pcm_data']


def test_transcriber_signature():
    assert [n for n, _ in _params(NlsSpeechTranscriber.__init__)] == [
        'self', 'url', 'token', 'appkey', 'on_start', 'on_sentence_begin', 'on_sentence_end',
        'on_result_changed', 'on_completed', 'on_error', 'on_close', 'callback_args']


@pytest.mark.parametrize('cls', [NlsSpeechRecognizer, NlsSpeechTranscriber])
@pytest.mark.parametrize('kwargs', [{}, {'token': 't'}, {'appkey': 'a'}, {'token': '', 'appkey': 'a'}])
def test_token_and_appkey_are_required(cls, kwargs):
    with pytest.raises(exception.InvalidParameter, match='^Must provide token and appkey$'):
        cls(**kwargs)


def test_old_akid_arguments_are_gone():
    with pytest.raises(TypeError):
        NlsSpeechRecognizer(akid='x', aksecret='y', token='t', appkey='a')


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('network I/O before the arguments were checked')
    monkeypatch.setattr(_session.Connection, 'start', refuse)


@pytest.mark.parametrize('kwargs, message', [
    ({'ch': 2}, 'Not support channel 2'),
    ({'ch': 2, 'aformat': 'xyz'}, 'Not support channel 2'),
    ({'aformat': 'PCM'}, 'Format PCM not support'),
    ({'ping_interval': 8, 'ping_timeout': 10}, 'Ensure ping_interval > ping_timeout'),
    ({'ping_interval': -1}, 'Ensure ping_interval > ping_timeout'),
])
def test_recognizer_start_checks(no_network, kwargs, message):
    sr = NlsSpeechRecognizer(token='t', appkey='a')
    with pytest.raises(exception.InvalidParameter) as info:
        sr.start(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize('kwargs, error, message', [
    ({'ch': 2}, ValueError, 'not support channel: 2'),
    ({'aformat': 'flac'}, ValueError, 'format flac not support'),
    ({'ping_interval': 5, 'ping_timeout': 5}, exception.InvalidParameter, 'Ensure ping_interval > ping_timeout'),
])
def test_transcriber_start_checks(no_network, kwargs, error, message):
    st = NlsSpeechTranscriber(token='t', appkey='a')
    with pytest.raises(error) as info:
        st.start(**kwargs)
    assert str(info.value) == message
    assert type(info.value) is error


def test_calls_before_any_start_do_not_raise(no_network):
    sr = NlsSpeechRecognizer(token='t', appkey='a')
    assert sr.stop() is False
    assert sr.shutdown() is None
    sr.shutdown()
    with pytest.raises(exception.InvalidParameter, match='^data empty!$'):
        sr.send_audio(b'')
    with pytest.raises(exception.NotStartException, match='^Need start before send!$'):
        sr.send_audio(b'\0\0')
    st = NlsSpeechTranscriber(token='t', appkey='a')
    assert st.send_audio(b'\0\0') is False
    assert st.stop() is False
    assert st.ctrl(ex={'a': 1}) is None
    with pytest.raises(exception.InvalidParameter, match='^Empty kwargs not allowed!$'):
        st.ctrl()
    with st:
        pass


def test_nls_lite_url_is_used_only_when_no_url_is_passed(monkeypatch):
    monkeypatch.setenv('NLS_LITE_URL', 'ws://127.0.0.1:9/ws/v1')
    assert NlsSpeechRecognizer(token='t', appkey='a')._url == 'ws://127.0.0.1:9/ws/v1'
    assert NlsSpeechRecognizer(url=DEFAULT_URL, token='t', appkey='a')._url == DEFAULT_URL
    monkeypatch.delenv('NLS_LITE_URL')
    assert NlsSpeechRecognizer(token='t', appkey='a')._url == DEFAULT_URL


def test_nls_core_checks():
    from nls_lite.core import NlsCore
    with pytest.raises(exception.InvalidParameter, match='Must provide a valid token!'):
        NlsCore(token='')
    with pytest.raises(exception.InvalidParameter, match='Must provide at least one callback'):
        NlsCore(token='t', on_data=lambda *a: None)
    with pytest.raises(exception.ConnectionUnavailable, match='Must call start before send!'):
        NlsCore(token='t', on_close=lambda *a: None).send('x', False)
