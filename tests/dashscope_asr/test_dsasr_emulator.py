"""The emulator as raw clients see it: the seed's protocol, its state machine, VAD and the CLI."""
import json
import math
import os
import signal
import subprocess
import sys
import uuid
from array import array

import pytest
import websocket

from dashscope_asr.audio.asr import Recognition
from dashscope_asr.emulator import Emulator
from dashscope_asr.emulator.speech import tokenize, tokens_text

from dsasr_helpers import SAMPLE_WAV


def tone(ms, rate=16000, amp=8000):
    n = rate * ms // 1000
    return array('h', (int(amp * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n))).tobytes()


def silence(ms, rate=16000):
    return b'\0\0' * (rate * ms // 1000)


class Raw(object):
    """A raw websocket-client speaking the seed's protocol."""

    def __init__(self, emu, auth='bearer sk-emulator', path=None):
        url = emu.ws_url + ('/' if path is None else path)
        self.ws = websocket.create_connection(url, header=['Authorization: ' + auth,
                                                           'X-DashScope-DataInspection: enable'],
                                              timeout=10)

    def send(self, obj):
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def recv(self):
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        return json.loads(data.decode('utf-8'))

    def until(self, *events):
        seen = []
        while True:
            msg = self.recv()
            if msg is None:
                return seen, None
            seen.append(msg)
            if msg['header']['event'] in events:
                return seen, msg

    def close(self):
        self.ws.close()
        self.ws.shutdown()  # close() is a no-op once the server's close frame was answered


def run_task(task_id, parameters=None, **payload_extra):
    payload = {'task_group': 'audio', 'task': 'asr', 'function': 'recognition',
               'model': 'paraformer-realtime-v2',
               'parameters': {'format': 'pcm', 'sample_rate': 16000} if parameters is None
               else parameters, 'input': {}}
    payload.update(payload_extra)
    return {'header': {'action': 'run-task', 'task_id': task_id, 'streaming': 'duplex'},
            'payload': payload}


def finish(task_id, **payload):
    return {'header': {'action': 'finish-task', 'task_id': task_id, 'streaming': 'duplex'},
            'payload': payload or {'input': {}}}


def test_seed_go_style_task_then_a_second_task_on_the_same_connection(dashscope_emulator):
    emu = dashscope_emulator
    emu.default_sentences = ['你好。']
    raw = Raw(emu)
    go_id = str(uuid.uuid4())  # dashed, with the Go sample's extra empty fields
    msg = run_task(go_id, {'format': 'pcm', 'sample_rate': 16000, 'vocabulary_id': '',
                           'disfluency_removal_enabled': False, 'language_hints': None},
                   resources=None, output={'sentence': {'begin_time': 0, 'end_time': None,
                                                        'text': '', 'words': None}, 'usage': None})
    msg['header'].update(event='', attributes=None)
    raw.send(msg)
    assert raw.recv() == {'header': {'task_id': go_id, 'event': 'task-started', 'attributes': {}},
                          'payload': {}}
    audio = tone(1000) + silence(1000)
    for i in range(0, len(audio), 1024):
        raw.ws.send_binary(audio[i:i + 1024])
    raw.send(finish(go_id, task_group='', model='', parameters={'format': '', 'sample_rate': 0}))
    seen, last = raw.until('task-finished')
    assert last['payload'] == {'output': {}, 'usage': None}
    results = [m for m in seen if m['header']['event'] == 'result-generated']
    assert all(isinstance(m['payload']['output']['sentence']['text'], str) for m in results)
    final = results[-1]['payload']
    assert final['output']['sentence']['text'] == '你好。' and final['usage'] == {'duration': 2}
    assert isinstance(final['output']['sentence']['begin_time'], int)
    partial = results[0]['payload']['output']['sentence']
    assert partial['end_time'] is None and partial['sentence_end'] is False
    assert list(partial) == ['begin_time', 'end_time', 'text', 'heartbeat', 'sentence_end', 'words']
    # a second task, new id, same connection
    raw.send(run_task('second'))
    assert raw.recv()['header']['event'] == 'task-started'
    raw.ws.send_binary(tone(500))
    raw.send(finish('second'))
    _, last = raw.until('task-finished')
    assert last['header']['task_id'] == 'second'
    raw.close()
    assert all(len(f.data.encode('utf-8')) <= 4096 for f in emu.records[0].sent)


def test_php_and_node_and_csharp_quirks(dashscope_emulator, sample_bytes):
    emu = dashscope_emulator
    # C#: bare key; Node: parameters {} (WAV sniffed); PHP: input [] and another finish-task id
    raw = Raw(emu, auth='sk-emulator')
    raw.send(run_task('a' * 32, parameters={}, input=[],
                      resources=[{'resource_id': 'xxxxxxxxxxxx', 'resource_type': 'asr_phrase'}]))
    assert raw.recv()['header']['event'] == 'task-started'
    raw.ws.send_binary(sample_bytes[:65536])
    raw.ws.send_binary(sample_bytes[65536:])
    raw.send(finish('b' * 32, input=[]))
    seen, last = raw.until('task-finished', 'task-failed')
    assert last['header'] == {'task_id': 'a' * 32, 'event': 'task-finished', 'attributes': {}}
    finals = [m['payload']['output']['sentence']['text'] for m in seen
              if m['header']['event'] == 'result-generated'
              and m['payload']['output']['sentence']['end_time'] is not None]
    assert finals == ['模拟识别结果第1句。', '模拟识别结果第2句。']
    raw.close()


@pytest.mark.parametrize('first, code, message', [
    (b'\0\0', 'CLIENT_ERROR', 'Invalid message order: audio before run-task'),
    (finish('x'), 'CLIENT_ERROR', 'Invalid message order: finish-task without a running task'),
    ('not json', 'InvalidParameter', 'Invalid payload data'),
    ({'header': {'action': 'dance', 'task_id': 'x'}, 'payload': {}}, 'InvalidParameter',
     'Unsupported action: dance'),
    (run_task('x', model=''), 'InvalidParameter',
     "Missing required parameter 'payload.model'! Please follow the protocol!"),
    (run_task('x', {'format': 'flac'}), 'InvalidParameter', 'Unsupported audio format: flac'),
    (run_task('x', task='tts'), 'InvalidParameter', "Invalid parameter 'payload.task': expected 'asr'"),
])
def test_protocol_errors_fail_the_task_and_close(dashscope_emulator, first, code, message):
    raw = Raw(dashscope_emulator)
    if isinstance(first, bytes):
        raw.ws.send_binary(first)
    else:
        raw.send(first)
    msg = raw.recv()
    assert msg['header']['event'] == 'task-failed'
    assert (msg['header']['error_code'], msg['header']['error_message']) == (code, message)
    assert list(msg['header']) == ['task_id', 'event', 'error_code', 'error_message', 'attributes']
    assert raw.recv() is None  # the server closes after task-failed
    raw.close()
    assert dashscope_emulator.wait_closed(1)
    assert dashscope_emulator.records[0].close_code == 1000


def test_run_task_while_running_and_zero_audio(dashscope_emulator):
    raw = Raw(dashscope_emulator)
    raw.send(run_task('t1'))
    raw.recv()
    raw.send(run_task('t2'))
    msg = raw.recv()
    assert msg['header']['error_code'] == 'CLIENT_ERROR'
    raw.close()
    raw = Raw(dashscope_emulator)
    raw.send(run_task('t3'))
    raw.recv()
    raw.send(finish('t3'))
    msg = raw.recv()
    assert (msg['header']['error_code'], msg['header']['error_message']) == (
        'NO_VALID_AUDIO_ERROR', 'No valid audio data received.')
    raw.close()


def test_handshake_checks(dashscope_emulator):
    emu = dashscope_emulator
    for auth in ('bearer wrong', ''):
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            Raw(emu, auth=auth)
        assert e.value.status_code == 401
        assert json.loads(e.value.resp_body)['code'] == 'InvalidApiKey'
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        Raw(emu, path='/../other')
    assert e.value.status_code == 404
    token = emu.issue_token(ttl_s=60)
    Raw(emu, auth='Bearer ' + token).close()
    Raw(emu, path='').close()  # no trailing slash
    assert 'sk-emulator' not in repr([r.headers for r in emu.records])


def test_idle_timers(dashscope_emulator):
    emu = dashscope_emulator
    emu.knobs.update(connection_idle_timeout_s=0.2, task_idle_timeout_s=0.2)
    raw = Raw(emu)
    assert raw.recv() is None  # no task: closed after the connection idle time
    raw.close()
    raw = Raw(emu)
    raw.send(run_task('t'))
    raw.recv()
    msg = raw.recv()
    assert msg['header']['error_message'] == 'request timeout after 0.2 seconds.'
    raw.close()


def segments(emu, audio, **params):
    emu.script_next(['一。', '二。', '三。'])
    raw = Raw(emu)
    p = {'format': 'pcm', 'sample_rate': 16000}
    p.update(params)
    raw.send(run_task('t', p))
    raw.recv()
    raw.ws.send_binary(audio)
    raw.send(finish('t'))
    seen, _ = raw.until('task-finished')
    raw.close()
    return [m['payload']['output']['sentence'] for m in seen
            if m['header']['event'] == 'result-generated'
            and m['payload']['output']['sentence']['end_time'] is not None]


def test_vad_honours_max_sentence_silence(dashscope_emulator):
    audio = silence(200) + tone(600) + silence(400) + tone(600) + silence(1000)
    short = segments(dashscope_emulator, audio, max_sentence_silence=300)
    # the leftover script sentence becomes a final after the last segment
    assert [s['text'] for s in short] == ['一。', '二。', '三。']
    assert (short[0]['begin_time'], short[0]['end_time']) == (200, 800)
    assert (short[1]['begin_time'], short[1]['end_time']) == (1200, 1800)
    long = segments(dashscope_emulator, audio)  # 800 ms default: both tones in one sentence
    assert (long[0]['begin_time'], long[0]['end_time']) == (200, 1800)
    assert [s['text'] for s in long] == ['一。', '二。', '三。'][:len(long)]
    semantic = segments(dashscope_emulator, audio, max_sentence_silence=300,
                        semantic_punctuation_enabled=True)
    assert semantic[0]['end_time'] == 1800  # semantic mode ignores max_sentence_silence


def test_script_sources(dashscope_emulator):
    emu = dashscope_emulator
    emu.script_file(SAMPLE_WAV, ['文件脚本。'])
    result = Recognition('m', None, 'wav', 16000, api_key='sk-emulator',
                         base_address=emu.ws_url).call(SAMPLE_WAV)
    assert [s['text'] for s in result.get_sentence()] == ['文件脚本。']
    result = Recognition('m', None, 'wav', 16000, api_key='sk-emulator', base_address=emu.ws_url,
                         emulator_script=['参数脚本。']).call(SAMPLE_WAV)
    assert [s['text'] for s in result.get_sentence()] == ['参数脚本。']


def test_compressed_audio_is_timed_by_bytes(dashscope_emulator):
    emu = dashscope_emulator
    emu.knobs['compressed_sentence_ms'] = 1000
    emu.script_next(['一。', '二。'])
    raw = Raw(emu)
    raw.send(run_task('t', {'format': 'opus', 'sample_rate': 16000}))
    raw.recv()
    raw.ws.send_binary(b'\x01' * 4000)  # 1 s at 32 kbps
    raw.send(finish('t'))
    seen, _ = raw.until('task-finished')
    raw.close()
    finals = [m['payload']['output']['sentence'] for m in seen
              if m['header']['event'] == 'result-generated'
              and m['payload']['output']['sentence']['end_time'] is not None]
    assert [(s['text'], s['begin_time'], s['end_time']) for s in finals][0] == ('一。', 0, 1000)
    assert [s['text'] for s in finals] == ['一。', '二。']  # the second one at finish-task


def test_tokenizer():
    assert tokenize('好，我 ok!') == [('好', '，'), ('我', ''), ('ok', '!')]
    assert tokens_text(tokenize('Hello world, ok!')) == 'Hello world, ok!'


def test_standalone_command(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, '-m', 'dashscope_asr.emulator', '--port', '0',
                             '--api-key', 'k-one', '--transcript', '命令行脚本。'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        ws_url = proc.stdout.readline().strip()
        http_url = proc.stdout.readline().strip()
        assert ws_url.startswith('ws://127.0.0.1:') and ws_url.endswith('/api-ws/v1/inference')
        assert http_url.startswith('http://127.0.0.1:') and http_url.endswith('/api/v1')
        result = Recognition('m', None, 'wav', 16000, api_key='k-one',
                             base_address=ws_url).call(SAMPLE_WAV)
        assert [s['text'] for s in result.get_sentence()][0] == '命令行脚本。'
        bad = Recognition('m', None, 'wav', 16000, api_key='other',
                          base_address=ws_url).call(SAMPLE_WAV)
        assert bad.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()


@pytest.mark.parametrize('heartbeat', [False, True])
def test_silence_fail_knob_spares_heartbeat_tasks(dashscope_emulator, heartbeat):
    emu = dashscope_emulator
    emu.knobs['silence_fail_after_ms'] = 500
    emu.script_next([])
    raw = Raw(emu)
    raw.send(run_task('t', {'format': 'pcm', 'sample_rate': 16000, 'heartbeat': heartbeat}))
    raw.recv()
    raw.ws.send_binary(silence(600))
    raw.send(finish('t'))
    _, last = raw.until('task-finished', 'task-failed')
    raw.close()
    if heartbeat:
        assert last['header']['event'] == 'task-finished'
    else:
        assert last['header']['error_code'] == 'NO_VALID_AUDIO_ERROR'


def test_emulator_urls(dashscope_emulator):
    emu = dashscope_emulator
    assert emu.url == emu.ws_url == 'ws://127.0.0.1:%d/api-ws/v1/inference' % emu.ws_port
    assert emu.http_url.startswith('http://127.0.0.1:') and emu.http_url.endswith('/api/v1')
    env = emu.env()
    assert env['DASHSCOPE_WEBSOCKET_BASE_URL'] == emu.url and env['NO_PROXY'].startswith('127.0.0.1')


def test_emulator_rejects_unknown_knobs():
    with pytest.raises(TypeError, match='unknown emulator knob'):
        Emulator(no_such_knob=1)


def test_realtime_factor_paces_results_of_a_burst(dashscope_emulator):
    emu = dashscope_emulator
    emu.knobs['realtime_factor'] = 2.0  # 1.6 s of audio: results over 0.8 s
    emu.script_next(['一。'])
    raw = Raw(emu)
    raw.send(run_task('t'))
    raw.recv()
    raw.ws.send_binary(tone(600) + silence(1000))
    raw.send(finish('t'))
    raw.until('task-finished')
    raw.close()
    sent = [f for f in emu.records[0].sent if f.json['header']['event'] != 'task-started']
    first_audio = [f for f in emu.records[0].received if f.kind == 'binary'][0].t
    assert sent[-1].t - first_audio >= 0.75
