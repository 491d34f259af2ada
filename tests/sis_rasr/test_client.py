"""RasrClient against the emulator: modes, callbacks and threads, blocking, state errors, reuse."""
import json
import threading
import time

import pytest

from sis_rasr import RasrClient, RasrRequest, SisConfig
from sis_rasr.bean.asr_request import SasrWebsocketRequest
from sis_rasr.bean.sis_enum import WebsocketStatus
from sis_rasr.client.asr_client import SasrWebsocketClient
from sis_rasr.exception.exceptions import ClientException

from sis_helpers import fast_config, pcm_silence, pcm_tone


def request(interim='no', **setters):
    r = RasrRequest('pcm16k16bit', 'chinese_16k_general')
    r.set_interim_results(interim)
    for name, value in setters.items():
        getattr(r, 'set_' + name)(value)
    return r


def run_session(client, audio, connect='continue_stream_connect', req=None, **kw):
    getattr(client, connect)(req or request())
    client.send_start()
    client.send_audio(audio, byte_len=kw.get('byte_len', 6400), sleep_time=0)
    client.send_end()


def test_continue_stream_splits_sentences_on_vad_tail(sis_emulator, make_client, recorder):
    sis_emulator.push_script(['第一句。', '第二句。'])
    audio = pcm_tone(600) + pcm_silence(700) + pcm_tone(500) + pcm_silence(700)
    client = make_client(recorder)
    run_session(client, audio, req=request(add_punc='yes'))
    assert recorder.finals() == ['第一句。', '第二句。']
    names = recorder.names()
    assert names[:2] == ['open', 'start'] and names[-1] == 'end' and 'event' not in names
    segs = [m['segments'][0] for m in recorder.args('response')]
    assert segs[0]['start_time'] == 0 and segs[0]['end_time'] == 600
    assert segs[1]['start_time'] == 1300 and segs[1]['end_time'] == 1800
    assert segs[0]['result']['score'] == pytest.approx(0.9)
    client.close()
    assert recorder.names()[-1] == 'close' and recorder.names().count('close') == 1


def test_callback_arguments_and_threads(sis_emulator, make_client, recorder, sample_audio):
    client = make_client(recorder)
    run_session(client, sample_audio)
    client.close()
    calls = recorder.calls
    trace_id = sis_emulator.connections[0].sessions[0]['trace_id']
    assert ('start', 'trace id is %s' % trace_id) == calls[1][:2]
    assert ('end', 'trace id is %s' % trace_id) == calls[-2][:2]
    response = recorder.args('response')[0]
    assert isinstance(response, dict) and list(response) == ['resp_type', 'trace_id', 'segments']
    assert calls[0][:2] == ('open', None) and calls[-1][:2] == ('close', None)
    main = threading.current_thread().name
    assert all(c[2] != main for c in calls)
    assert len({c[2] for c in calls}) == 1    # one receive thread delivers everything, in order


def test_sentence_stream_events(sis_emulator, make_client, recorder):
    sis_emulator.push_script(['你好'])
    audio = pcm_silence(200) + pcm_tone(600) + pcm_silence(800) + pcm_tone(400)
    client = make_client(recorder)
    run_session(client, audio, connect='sentence_stream_connect')
    names = recorder.names()
    assert names == ['open', 'start', 'event', 'response', 'event', 'end']
    assert recorder.args('event') == ['VOICE_START', 'VOICE_END']
    assert recorder.finals() == ['你好']
    sent = sis_emulator.connections[0].sent_messages
    assert [m.get('timestamp') for m in sent if m['resp_type'] == 'EVENT'] == [200, 800]


def test_sentence_stream_exceeded_silence_after_vad_head(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    run_session(client, pcm_silence(1500), connect='sentence_stream_connect', req=request(vad_head=1000))
    assert recorder.args('event') == ['EXCEEDED_SILENCE']
    assert recorder.args('response') == []
    assert sis_emulator.connections[0].sent_messages[1]['timestamp'] == 1000


def test_short_stream_no_events_interim_then_final(sis_emulator, make_client, recorder):
    sis_emulator.push_script(['短句一', '短句二'])
    audio = pcm_tone(800) + pcm_silence(800) + pcm_tone(400)
    client = make_client(recorder)
    run_session(client, audio, connect='short_stream_connect', req=request(interim='yes'), byte_len=3200)
    assert 'event' not in recorder.names()
    responses = recorder.args('response')
    interims = [m['segments'][0] for m in responses if not m['segments'][0]['is_final']]
    assert interims and all(s['result']['score'] == 0.0 for s in interims)
    assert recorder.finals() == ['短句一短句二']
    final = responses[-1]['segments'][0]
    assert (final['start_time'], final['end_time']) == (0, 2000)


def test_word_info(sis_emulator, make_client, recorder):
    sis_emulator.push_script([{'text': '你好 world', 'score': 0.75}])
    client = make_client(recorder)
    run_session(client, pcm_tone(400) + pcm_silence(600), req=request(need_word_info='yes'))
    result = recorder.args('response')[-1]['segments'][0]['result']
    assert result['score'] == 0.75
    assert [w['word'] for w in result['word_info']] == ['你', '好', '\u2581world']
    assert list(result['word_info'][0]) == ['start_time', 'end_time', 'word']


def test_sasr_stream(sis_emulator, make_client, recorder):
    sis_emulator.push_script(['一句话'])
    client = make_client(recorder)
    client.sasr_stream_connect(SasrWebsocketRequest('pcm16k16bit', 'chinese_16k_general'))
    client.send_start()
    client.send_audio(pcm_tone(500), byte_len=8000, sleep_time=0)
    client.send_end()
    assert recorder.finals() == ['一句话']
    assert sis_emulator.connections[0].path.endswith('/asr/short-audio')


def test_sasr_websocket_client_positional_forwarding(sis_emulator, recorder):
    client = SasrWebsocketClient(None, None, None, sis_emulator.region, sis_emulator.project_id, recorder,
                                 fast_config(), sis_emulator.ws_endpoint, None, 0, sis_emulator.ak, sis_emulator.sk,
                                 True)
    try:
        with pytest.raises(ClientException, match='The parameter of request  should be SasrWebsocketRequest class'):
            client.sasr_stream_connect(RasrRequest('pcm16k16bit', 'chinese_16k_general'))
        client.sasr_stream_connect(SasrWebsocketRequest('pcm16k16bit', 'chinese_16k_general'))
        assert client._status == WebsocketStatus.STATE_CONNECTED
    finally:
        client.close()


def test_start_frame_on_the_wire_and_mutation_after_connect(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    req = request()
    client.continue_stream_connect(req)
    req.set_add_punc('yes')          # serialized at send_start, like the vendor
    client.send_start()
    client.send_end()
    texts = sis_emulator.connections[0].texts_received
    assert json.loads(texts[0])['config']['add_punc'] == 'yes'
    assert texts[0].startswith('{"command": "START", "config": {"audio_format": "pcm16k16bit"')
    assert texts[1] == '{"command": "END", "cancel": "false"}'


def test_send_audio_slices_and_sleeps(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.continue_stream_connect(request())
    client.send_start()
    t0 = time.monotonic()
    client.send_audio(b'\x00' * 10000, byte_len=4000, sleep_time=0.02)
    assert time.monotonic() - t0 >= 0.06     # a sleep after every chunk, the last included
    client.send_end()
    assert sis_emulator.connections[0].binary_sizes == [4000, 4000, 2000]


def test_session_reuse_on_one_connection(sis_emulator, make_client, recorder):
    sis_emulator.push_script(['一'])
    sis_emulator.push_script(['二'])
    client = make_client(recorder)
    run_session(client, pcm_tone(300) + pcm_silence(600))
    client.send_start()                      # START after END on the same socket
    client.send_audio(pcm_tone(300) + pcm_silence(600), 6400, 0)
    client.send_end()
    assert recorder.finals() == ['一', '二']
    assert len(sis_emulator.connections) == 1 and len(sis_emulator.connections[0].sessions) == 2
    client.continue_stream_connect(request())   # silent no-op in END, as the vendor does
    assert len(sis_emulator.connections) == 1


def test_close_then_reconnect(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.short_stream_connect(request())
    client.close()
    assert recorder.names() == ['open', 'close']
    client.short_stream_connect(request())
    client.send_start()
    client.send_end()
    client.close()
    assert recorder.names() == ['open', 'close', 'open', 'start', 'end', 'close']
    assert len(sis_emulator.connections) == 2


def test_close_is_prompt_and_idempotent(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.close()                      # before connecting: no-op
    assert client._status == WebsocketStatus.STATE_CLOSE and recorder.names() == []
    client.continue_stream_connect(request())
    client.send_start()
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 < 1.0
    assert recorder.names()[-1] == 'close'          # on_close ran before close() returned
    client.close()
    assert recorder.names().count('close') == 1
    record = sis_emulator.connections[0]
    sis_emulator.wait_closed(record)
    assert record.client_close_code == 1000


def test_close_from_inside_a_callback(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    recorder_close = recorder.on_start

    def on_start(message):
        recorder_close(message)
        client.close()
    recorder.on_start = on_start
    client.continue_stream_connect(request())
    client.send_start()
    assert recorder.closed.wait(5)
    assert recorder.names() == ['open', 'start', 'close']


def test_state_errors_before_network(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    with pytest.raises(ClientException, match="status WebsocketStatus.STATE_INIT can't send start"):
        client.send_start()
    with pytest.raises(ClientException, match="status WebsocketStatus.STATE_INIT can't send binary data"):
        client.send_audio(b'x')
    with pytest.raises(ClientException, match="status WebsocketStatus.STATE_INIT can't send end"):
        client.send_end()
    with pytest.raises(ClientException, match='should be RasrRequest class'):
        client.continue_stream_connect('nope')
    with pytest.raises(ClientException, match='must be dict'):
        client.continue_stream_connect(request(), headers=['x'])
    with pytest.raises(ClientException, match='byte_len'):
        client.send_audio(b'x', byte_len=0)
    assert sis_emulator.connections == []
    client.continue_stream_connect(request())
    with pytest.raises(ClientException, match="STATE_CONNECTED can't send binary data"):
        client.send_audio(b'x')
    client.send_start()
    with pytest.raises(ClientException, match="STATE_START can't send start"):
        client.send_start()
    client.send_end()
    client.send_audio(b'\x00' * 640)     # END: warn and return
    client.send_end()                    # END: warn and return
    assert sis_emulator.connections[0].binary_sizes == []


def test_constructor_checks():
    from sis_rasr import RasrCallBack
    with pytest.raises(ClientException, match='The parameter callback must be RasrCallBack class'):
        RasrClient(ak='a', sk='b', use_aksk=True, region='r', project_id='p', callback=object())
    with pytest.raises(ClientException, match='The parameter config must by SisConfig class'):
        RasrClient(ak='a', sk='b', use_aksk=True, region='r', project_id='p', callback=RasrCallBack(), config={})
    with pytest.raises(ClientException, match='ak or sk is empty, please fill in it'):
        RasrClient(ak='a', use_aksk=True, region='r', project_id='p', callback=RasrCallBack())
    with pytest.raises(ClientException, match='username or password or domain name is empty'):
        RasrClient(user_name='u', region='r', project_id='p', callback=RasrCallBack())
    with pytest.raises(TypeError):
        RasrClient(ak='a', sk='b', use_aksk=True, project_id='p', callback=RasrCallBack())
    c = RasrClient(ak='a', sk='b', use_aksk=True, region='cn-north-4', project_id='p', callback=RasrCallBack())
    assert c._service_endpoint == 'wss://sis-ext.cn-north-4.myhuaweicloud.com'
    assert c._config is not RasrClient(ak='a', sk='b', use_aksk=True, region='r', project_id='p',
                                       callback=RasrCallBack())._config


def test_extra_headers_are_sent_and_host_ignored(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client.continue_stream_connect(request(), {'Enterprise-Project-Id': 'ep-1', 'Host': 'evil'})
    record = sis_emulator.connections[0]
    assert record.header('Enterprise-Project-Id') == 'ep-1'
    assert record.header_values('Host') == ['127.0.0.1:%d' % sis_emulator.port]
    names = [k for k, _ in record.headers]
    assert names[-4:] == ['X-Sdk-Date', 'Authorization', 'content-length', 'Enterprise-Project-Id']


def test_show_host_header_gives_a_duplicate_host_and_401(sis_emulator, make_client, recorder):
    client = make_client(recorder)
    client._set_host_header(True)
    with pytest.raises(ClientException, match='websocket connect failed'):
        client.continue_stream_connect(request())
    assert len(sis_emulator.connections[0].header_values('Host')) == 2
    assert recorder.names() == ['error', 'close']


def test_token_mode_and_cache(sis_emulator, recorder):
    from sis_rasr.client import rasr_client
    kwargs = dict(region=sis_emulator.region, project_id=sis_emulator.project_id, callback=recorder,
                  config=fast_config(), service_endpoint=sis_emulator.ws_endpoint, token_url=sis_emulator.iam_url)
    rasr_client.user_dict.clear()
    rasr_client.time_dict.clear()
    client = RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name, **kwargs)
    second = RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name, **kwargs)
    assert len(sis_emulator.iam_requests) == 1
    assert sis_emulator.iam_requests[0]['password'] == '***'
    try:
        client.short_stream_connect(request())
        client.send_start()
        client.send_end()
        record = sis_emulator.connections[0]
        assert record.auth_mode == 'token' and record.header('X-Auth-Token') == client._token
        assert record.header('Authorization') is None
    finally:
        client.close()
        second.close()
    # expired cache entries are refreshed
    for key in rasr_client.time_dict:
        rasr_client.time_dict[key] -= rasr_client.TOKEN_CACHE_SECONDS + 1
    RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name, **kwargs)
    assert len(sis_emulator.iam_requests) == 2


def test_token_mode_wrong_password(sis_emulator, recorder):
    with pytest.raises(ClientException, match='Error occurs in getting token, .*The username or password is wrong'):
        RasrClient('nobody', 'bad', 'd', sis_emulator.region, sis_emulator.project_id, recorder,
                   token_url=sis_emulator.iam_url, service_endpoint=sis_emulator.ws_endpoint)


def test_token_body_on_the_wire(sis_emulator):
    import responses
    from sis_rasr.auth import token_service
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, 'https://iam.cn-north-4.myhuaweicloud.com/v3/auth/tokens', status=201,
                 headers={'X-Subject-Token': 'tok'}, body='{}')
        assert token_service.get_token('u', 'p', 'd', 'cn-north-4') == 'tok'
        body = rsps.calls[0].request.body
        assert body == ('{"auth": {"identity": {"password": {"user": {"name": "u", "password": "p", "domain": '
                        '{"name": "d"}}}, "methods": ["password"]}, "scope": {"project": {"name": "cn-north-4"}}}}')
        assert rsps.calls[0].request.headers['Content-Type'] == 'application/json'


def test_environment_endpoint_override(sis_emulator, recorder, monkeypatch):
    monkeypatch.setenv('SIS_RASR_SERVICE_ENDPOINT', sis_emulator.ws_endpoint)
    client = RasrClient(ak=sis_emulator.ak, sk=sis_emulator.sk, use_aksk=True, region=None,
                        project_id=sis_emulator.project_id, callback=recorder, config=fast_config())
    try:
        client.continue_stream_connect(request())
        assert recorder.names() == ['open']
    finally:
        client.close()


def test_concurrent_token_clients_make_one_iam_request(sis_emulator, recorder):
    from sis_rasr.client import rasr_client
    rasr_client.user_dict.clear()
    rasr_client.time_dict.clear()
    barrier = threading.Barrier(6)
    tokens = []

    def make():
        barrier.wait(5)
        c = RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name,
                       sis_emulator.region, sis_emulator.project_id, recorder, token_url=sis_emulator.iam_url)
        tokens.append(c._token)
    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(tokens) == 6 and len(set(tokens)) == 1
    assert len(sis_emulator.iam_requests) == 1


def test_send_start_returns_after_on_start_returned(sis_emulator, make_client, recorder):
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()
    record_start = recorder.on_start

    def slow_on_start(message):
        entered.set()
        release.wait(5)
        record_start(message)
    recorder.on_start = slow_on_start
    client = make_client(recorder)
    client.continue_stream_connect(request())
    worker = threading.Thread(target=lambda: (client.send_start(), returned.set()))
    worker.start()
    try:
        assert entered.wait(5)
        assert not returned.is_set()     # blocked while the awaited callback runs
    finally:
        release.set()
        worker.join(5)
    assert returned.is_set() and recorder.names() == ['open', 'start']


@pytest.fixture
def tls_emulator(tmp_path):
    import shutil
    import ssl
    import subprocess
    from sis_rasr.emulator import SisEmulator
    if shutil.which('openssl') is None:
        pytest.skip('openssl not available')
    cert, key = str(tmp_path / 'cert.pem'), str(tmp_path / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
                    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    emu = SisEmulator(ssl_context=context, iam=False)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def test_tls_is_verified_by_default(tls_emulator, recorder):
    kw = dict(ak=tls_emulator.ak, sk=tls_emulator.sk, use_aksk=True, region=tls_emulator.region,
              project_id=tls_emulator.project_id, callback=recorder, service_endpoint=tls_emulator.ws_endpoint)
    assert tls_emulator.ws_endpoint.startswith('wss://')
    client = RasrClient(config=fast_config(), **kw)
    with pytest.raises(ClientException, match='websocket connect failed'):
        client.short_stream_connect(request())
    error = recorder.args('error')[0]
    assert 'CERTIFICATE_VERIFY_FAILED' in str(error) or 'certificate verify failed' in str(error)
    assert recorder.names() == ['error', 'close']
    config = fast_config()
    config.set_certificate_check(False)
    insecure = RasrClient(config=config, **kw)
    try:
        insecure.short_stream_connect(request())
        insecure.send_start()
        insecure.send_end()
    finally:
        insecure.close()
    assert recorder.names()[2:] == ['open', 'start', 'end', 'close']


def test_token_mode_from_environment_positional(sis_emulator, recorder, monkeypatch):
    """Reference 7.5: RasrClient(user, password, domain, region, project_id, callback) unchanged, pointed at
    the emulator through the environment."""
    from sis_rasr.client import rasr_client
    rasr_client.user_dict.clear()
    rasr_client.time_dict.clear()
    monkeypatch.setenv('SIS_RASR_SERVICE_ENDPOINT', sis_emulator.ws_endpoint)
    monkeypatch.setenv('SIS_RASR_TOKEN_URL', sis_emulator.iam_url)
    sis_emulator.push_script(['环境变量'])
    client = RasrClient(sis_emulator.user_name, sis_emulator.password, sis_emulator.domain_name,
                        sis_emulator.region, sis_emulator.project_id, recorder)
    try:
        client.sentence_stream_connect(request())
        client.send_start()
        client.send_audio(pcm_tone(300) + pcm_silence(700), 3200, 0)
        client.send_end()
    finally:
        client.close()
    assert recorder.finals() == ['环境变量']
    assert sis_emulator.connections[0].auth_mode == 'token'
    assert len(sis_emulator.iam_requests) == 1


def test_send_end_from_inside_a_callback_does_not_block(sis_emulator, make_client, recorder):
    """Barge-in: end the session from on_event('VOICE_END') on the receive thread."""
    sis_emulator.push_script(['打断'])
    client = make_client(recorder)
    record_event = recorder.on_event
    returned = []

    def on_event(event):
        record_event(event)
        if event == 'VOICE_END':
            t0 = time.monotonic()
            client.send_end()
            returned.append(time.monotonic() - t0)
    recorder.on_event = on_event
    client.sentence_stream_connect(request())
    client.send_start()
    client.send_audio(pcm_tone(300) + pcm_silence(700) + pcm_silence(2000), 3200, 0)
    assert recorder.ended.wait(5)
    assert returned and returned[0] < 1.0
    assert recorder.names()[-3:] == ['response', 'event', 'end']
