"""RasrRequest wire JSON, SisConfig, exceptions, callbacks, enum: pure, no network."""
import json
import logging

import pytest

from sis_rasr import _protocol as protocol
from sis_rasr.bean.asr_request import SasrWebsocketRequest
from sis_rasr.bean.callback import RasrCallBack, RttsCallBack
from sis_rasr.bean.rasr_request import RasrRequest
from sis_rasr.bean.sis_config import SisConfig
from sis_rasr.bean.sis_enum import WebsocketStatus
from sis_rasr.exception.exceptions import ClientException, ServerException

DEFAULT_START = ('{"command": "START", "config": {"audio_format": "pcm16k16bit", "property": "chinese_16k_general", '
                 '"add_punc": "no", "digit_norm": "yes", "vad_head": 10000, "vad_tail": 500, "max_seconds": 30, '
                 '"interim_results": "no", "vad_threshold": 0, "need_word_info": "no"}}')


def test_default_start_frame_is_byte_identical():
    assert protocol.start_frame(RasrRequest('pcm16k16bit', 'chinese_16k_general')) == DEFAULT_START


def test_sasr_request_sends_the_same_frame():
    assert protocol.start_frame(SasrWebsocketRequest('pcm16k16bit', 'chinese_16k_general')) == DEFAULT_START
    assert isinstance(SasrWebsocketRequest('a', 'b'), RasrRequest)


def test_every_setter_key_order_and_types():
    r = RasrRequest('pcm8k16bit', 'chinese_8k_common')
    r.set_add_punc('yes')
    r.set_digit_norm('no')
    r.set_vad_head(5000)
    r.set_vad_tail(300)
    r.set_max_seconds(20)
    r.set_interim_results('yes')
    r.set_vad_threshold(0.5)
    r.set_need_word_info('yes')
    r.set_need_smooth('yes')
    r.set_user_words(['华为', '云'])
    r.set_vocabulary_id('vocab-1')
    params = r.construct_params()
    assert list(params) == ['command', 'config']
    assert list(params['config'].items()) == [
        ('audio_format', 'pcm8k16bit'), ('property', 'chinese_8k_common'), ('add_punc', 'yes'),
        ('digit_norm', 'no'), ('vad_head', 5000), ('vad_tail', 300), ('max_seconds', 20),
        ('interim_results', 'yes'), ('vad_threshold', 0.5), ('need_word_info', 'yes'), ('need_smooth', 'yes'),
        ('user_words', ['华为', '云']), ('vocabulary_id', 'vocab-1')]
    # ensure_ascii=True, default separators, like the vendor
    assert '"user_words": ["\\u534e\\u4e3a", "\\u4e91"]' in protocol.start_frame(r)


def test_optional_keys_omitted_or_sent_as_the_vendor_does():
    r = RasrRequest('pcm16k16bit', 'chinese_16k_general')
    r.set_user_words([])
    r.set_vocabulary_id('')
    config = r.construct_params()['config']
    assert 'user_words' not in config and 'need_smooth' not in config
    assert config['vocabulary_id'] == ''     # an empty id is still sent
    r.set_user_words(None)
    assert 'user_words' not in r.construct_params()['config']


def test_setters_store_values_as_given():
    r = RasrRequest('x', 'y')
    r.set_vad_head('10')
    assert r.construct_params()['config']['vad_head'] == '10'


def test_end_frames():
    assert protocol.end_frame() == '{"command": "END", "cancel": "false"}'
    assert json.loads(protocol.end_frame(True)) == {'command': 'END', 'cancel': True}


def test_sis_config_defaults_setters_getters():
    c = SisConfig()
    assert (c.get_connect_timeout(), c.get_read_timeout(), c.get_connect_lost_timeout(), c.get_proxy(),
            c.get_certificate_check(), c.get_websocket_wait_time()) == (10, 10, 4, None, True, 20)
    c.set_connect_timeout(3)
    c.set_read_timeout(4)
    c.set_connect_lost_timeout(5)
    c.set_proxy(['h', 1])
    c.set_certificate_check(False)
    c.set_websocket_wait_time(6)
    assert (c.connect_timeout, c.read_timeout, c.connect_lost_timeout, c.proxy, c.certificate_check,
            c.websocket_wait_time) == (3, 4, 5, ['h', 1], False, 6)
    assert SisConfig().get_certificate_check() is True   # no shared mutable state


def test_client_exception_shape():
    e = ClientException('boom')
    assert str(e) == 'boom' and e.get_error_msg() == 'boom'
    assert e.args == (e, 'boom')
    assert repr(e) == "ClientException(ClientException(...), 'boom')"


def test_server_exception_shape():
    e = ServerException('SIS.0001', 'bad')
    assert str(e) == 'error_code: SIS.0001\terror_msg: bad'
    assert (e.get_error_code(), e.get_error_msg()) == ('SIS.0001', 'bad')
    assert e.args == (e, str({'error_code': 'SIS.0001', 'error_msg': 'bad'}))


def test_websocket_status_values_and_text():
    assert [s.value for s in WebsocketStatus] == list(range(9))
    assert '%s' % WebsocketStatus.STATE_INIT == 'WebsocketStatus.STATE_INIT'
    assert protocol.wait_timeout_message(WebsocketStatus.STATE_START_WAITING, protocol.START_WAIT_SET, 18) == (
        'status WebsocketStatus.STATE_START_WAITING is not received {<WebsocketStatus.STATE_START: 4>, '
        '<WebsocketStatus.STATE_CLOSE: 7>, <WebsocketStatus.STATE_ERROR: 8>} in 18 time')
    assert protocol.connect_failed_message('ws://h/p', WebsocketStatus.STATE_CLOSE) == (
        'websocket connect failed\uff0c url is ws://h/p, status is WebsocketStatus.STATE_CLOSE')


def test_callback_defaults(caplog):
    cb = RasrCallBack()
    with pytest.raises(ClientException, match='no response implementation'):
        cb.on_response({})
    with caplog.at_level(logging.DEBUG, logger='sis_rasr'):
        cb.on_open()
        cb.on_start('trace id is x')
        cb.on_end('trace id is x')
        cb.on_close()
        cb.on_event('VOICE_START')
        cb.on_error('oops')
    assert 'receive event VOICE_START' in caplog.text and 'oops' in caplog.text
    with pytest.raises(ClientException):
        RttsCallBack().on_response(b'')
    for name in ('on_open', 'on_close', 'on_start', 'on_end', 'on_error'):
        assert callable(getattr(RttsCallBack(), name))


@pytest.mark.parametrize('text,kind,payload', [
    ('{"resp_type":"START","trace_id":"t"}', protocol.START, 'trace id is t'),
    ('{"resp_type":"END","trace_id":"t","reason":"NORMAL"}', protocol.END, 'trace id is t'),
    ('{"resp_type":"END"}', protocol.END, 'trace id is None'),
    ('{"resp_type":"EVENT","trace_id":"t","event":"VOICE_END","timestamp":1}', protocol.EVENT, 'VOICE_END'),
    ('{"resp_type":"ERROR","error_code":"x","error_msg":"y"}', protocol.ERROR,
     '{"resp_type":"ERROR","error_code":"x","error_msg":"y"}'),
    ('{"resp_type":"FATAL_ERROR","trace_id":"t"}', protocol.ERROR, '{"resp_type":"FATAL_ERROR","trace_id":"t"}'),
    ('{"resp_type":"NEW"}', protocol.UNKNOWN, '{"resp_type":"NEW"}'),
])
def test_parse(text, kind, payload):
    event = protocol.parse(text)
    assert (event.kind, event.payload) == (kind, payload)


def test_parse_malformed_never_raises():
    assert isinstance(protocol.parse('not json').payload, ValueError)
    assert protocol.parse('[1]').kind == protocol.MALFORMED
    assert protocol.parse(b'\x00').kind == protocol.MALFORMED
    result = protocol.parse('{"resp_type":"RESULT","trace_id":"t","segments":[]}')
    assert result.payload == {'resp_type': 'RESULT', 'trace_id': 't', 'segments': []}


def test_state_guards():
    S = WebsocketStatus
    with pytest.raises(ClientException, match="status WebsocketStatus.STATE_INIT can't send start"):
        protocol.check_start(S.STATE_INIT)
    protocol.check_start(S.STATE_END)
    assert protocol.check_binary(S.STATE_END) is False
    with pytest.raises(ClientException, match="STATE_CONNECTED can't send binary data"):
        protocol.check_binary(S.STATE_CONNECTED)
    with pytest.raises(ClientException, match="STATE_ERROR can't send end"):
        protocol.check_end(S.STATE_ERROR)
    assert [protocol.connect_action(s) for s in S] == [
        'connect', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'connect', 'close_then_connect']
