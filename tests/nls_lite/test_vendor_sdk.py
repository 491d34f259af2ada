"""The vendor's original SDK (``import nls``, alibabacloud-nls-python-sdk) against the emulator, unchanged.

Skipped when the vendor SDK is not installed (CI); bench/nls_vendor_check.py is the by-hand version.
"""
import json
import logging
import threading
import time
import wave
import os

import pytest

nls = pytest.importorskip('nls', reason='the vendor SDK (alibabacloud-nls-python-sdk) is not installed')
if not hasattr(nls, 'NlsSpeechRecognizer') or not hasattr(nls, 'core'):
    pytest.skip('the importable `nls` is not the vendor SDK', allow_module_level=True)

SAMPLE_WAV = os.path.join(os.path.dirname(__file__), '..', '..', 'nls_lite', 'samples', 'beijing_weather.wav')


@pytest.fixture(autouse=True)
def restore_websocket_logger():
    # The original attaches a stderr handler to the 'websocket' logger on every session (its quirk 20).
    logger = logging.getLogger('websocket')
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def load_pcm():
    with wave.open(SAMPLE_WAV, 'rb') as w:
        return w.readframes(w.getnframes())


class TestSr:
    """Seed 004's sample class: only URL/TOKEN/APPKEY substituted, callbacks recorded."""

    __test__ = False  # not a pytest class

    def __init__(self, tid, data, url, token, appkey):
        self.__th = threading.Thread(target=self.__test_run)
        self.__id = tid
        self.__data = data
        self.url, self.token, self.appkey = url, token, appkey
        self.events = []
        self.closed = threading.Event()

    def start(self):
        self.__th.start()

    def join(self, timeout):
        self.__th.join(timeout)
        return not self.__th.is_alive()

    def test_on_start(self, message, *args):
        self.events.append(('start', message, args))

    def test_on_error(self, message, *args):
        self.events.append(('error', message, args))

    def test_on_close(self, *args):
        self.events.append(('close', None, args))
        self.closed.set()

    def test_on_result_chg(self, message, *args):
        self.events.append(('changed', message, args))

    def test_on_completed(self, message, *args):
        self.events.append(('completed', message, args))

    def __test_run(self):
        sr = nls.NlsSpeechRecognizer(
            url=self.url, token=self.token, appkey=self.appkey,
            on_start=self.test_on_start, on_result_changed=self.test_on_result_chg,
            on_completed=self.test_on_completed, on_error=self.test_on_error, on_close=self.test_on_close,
            callback_args=[self.__id])
        sr.start(aformat="pcm", ex={"hello": 123})
        self.__slices = zip(*(iter(self.__data),) * 640)
        for i in self.__slices:
            sr.send_audio(bytes(i))
            time.sleep(0.01)  # the sample's own pacing (2x real time)
        sr.stop()


def test_seed_004_sample_with_the_original_sdk(nls_emulator):
    data = load_pcm()[:32000 * 1]  # 1 s keeps the test short; the flow is the sample's
    t = TestSr('thread0', data, nls_emulator.url, 'test-token', 'test-appkey')
    t.start()
    assert t.join(30)
    assert t.closed.wait(10)
    kinds = [e[0] for e in t.events]
    assert kinds[:3] == ['start', 'completed', 'close'], kinds
    assert all(e[2] == ('thread0',) for e in t.events)
    completed = json.loads(t.events[1][1])
    assert completed['payload']['result'] == '北京的天气'
    record = nls_emulator.wait_for_sessions(1, 10)[0]
    # the original's duplicate handshake headers reached the emulator and were tolerated
    assert len(record.sec_websocket_keys) == 2 and record.sec_websocket_keys[1] == 'x3JJHMbDL1EzLkh9GBhXDw=='
    assert record.start_payloads[0]['hello'] == 123
    assert record.directives == ['StartRecognition', 'StopRecognition']


def test_transcriber_with_the_original_sdk(nls_emulator):
    data = load_pcm()
    events = []
    closed = threading.Event()

    def cb(kind):
        return lambda message, *args: events.append((kind, message, args))

    st = nls.NlsSpeechTranscriber(
        url=nls_emulator.url, token='test-token', appkey='test-appkey', on_sentence_begin=cb('begin'),
        on_sentence_end=cb('end'), on_start=cb('start'), on_result_changed=cb('changed'),
        on_completed=cb('completed'), on_error=cb('error'), on_close=lambda *a: closed.set(),
        callback_args=['st0'])
    st.start(aformat="pcm", enable_intermediate_result=True, enable_punctuation_prediction=True,
             enable_inverse_text_normalization=True)
    for i in range(0, len(data) - 6399, 6400):
        st.send_audio(data[i:i + 6400])
    st.ctrl(ex={"test": "tttt"})
    st.stop()
    st.shutdown()
    assert closed.wait(10)
    kinds = [e[0] for e in events]
    assert kinds[0] == 'start' and 'begin' in kinds and 'changed' in kinds and kinds[-1] == 'completed', kinds
    assert [json.loads(m)['payload']['result'] for k, m, _ in events if k == 'end'] == ['北京的天气。']
    nls_emulator.wait_for_sessions(1, 10)


def test_get_token_with_the_original_sdk(nls_emulator):
    from nls.token import getToken
    host = nls_emulator.token_url.split('//', 1)[1].rstrip('/')
    token = getToken('my_access_key_id', 'my_access_key_secret', url=host)
    assert token in nls_emulator.tokens
    request = nls_emulator.token_requests[-1]
    assert request['method'] == 'POST' and request['params']['SignatureType'] == ''
