"""Transcription and VocabularyService: wire format with `responses`, then against the emulator."""
import json
from http import HTTPStatus

import pytest
import requests
import responses

from dashscope_asr.audio.asr import Transcription, VocabularyService, VocabularyServiceException
from dashscope_asr.common.error import InvalidParameter, InvalidTask, ModelRequired

BASE = 'https://dashscope.aliyuncs.com/api/v1'
SUBMIT = BASE + '/services/audio/asr/transcription'
CUSTOM = BASE + '/services/audio/asr/customization'


@pytest.fixture
def http(configured, monkeypatch):
    configured.api_key = 'sk-test'
    configured.base_http_api_url = BASE
    monkeypatch.setattr(Transcription, '_RETRY_INTERVAL_S', 0)
    monkeypatch.setattr(Transcription, '_WAIT_FIRST_INTERVAL_S', 0.01)
    monkeypatch.setattr(VocabularyService, '_RETRY_INTERVAL_S', 0)
    monkeypatch.delenv('DASHSCOPE_DISABLE_DATA_INSPECTION', raising=False)
    with responses.RequestsMock() as mock:
        yield mock


def task_body(status, task_id='t-1', **extra):
    out = {'task_id': task_id, 'task_status': status}
    out.update(extra)
    return {'request_id': 'r-%s' % status, 'output': out}


def test_async_call_wire_format(http):
    http.post(SUBMIT, json=task_body('PENDING'))
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'], phrase_id='ph1',
                                 language_hints=['zh'], channel_id=[0], diarization_enabled=True,
                                 speaker_count=None, workspace='ws9')
    sent = http.calls[0].request
    assert sent.body == ('{"model": "paraformer-v2", "parameters": {"language_hints": ["zh"], '
                         '"channel_id": [0], "diarization_enabled": true}, "resources": '
                         '[{"resource_id": "ph1", "resource_type": "asr_phrase"}], "input": '
                         '{"file_urls": ["https://x/a.wav"]}}').encode('utf-8')
    h = sent.headers
    assert h['X-DashScope-Async'] == 'enable' and h['Authorization'] == 'Bearer sk-test'
    assert h['Content-Type'] == 'application/json; charset=utf-8'
    assert h['Accept'] == 'application/json; charset=utf-8'
    assert h['X-DashScope-WorkSpace'] == 'ws9' and 'X-DashScope-DataInspection' not in h
    assert h['x-dashscope-sdk-client'] == 'python-sdk/2.0.2/audio'
    assert r.status_code == HTTPStatus.OK and r.code == '' and r.message == ''
    assert r.output.task_id == 't-1' and r.output.task_status == 'PENDING'
    assert r.request_id == 'r-PENDING'


def test_errors_are_returned(http):
    http.post(SUBMIT, status=400, json={'request_id': 'r', 'code': 'InvalidParameter',
                                        'message': 'Model not exist.'})
    http.post(SUBMIT, status=502, body='bad gateway', content_type='text/plain')
    r = Transcription.async_call('nope', ['u'])
    assert (r.status_code, r.code, r.message, r.request_id) == (
        400, 'InvalidParameter', 'Model not exist.', 'r')
    assert r.output is None
    r = Transcription.async_call('nope', ['u'])
    assert (r.status_code, r.code, r.message) == (502, 'Unknown', 'bad gateway')
    with pytest.raises(ModelRequired, match='Model is required!'):
        Transcription.async_call('', ['u'])


def test_wait_polls_until_terminal(http):
    url = BASE + '/tasks/t-1'
    http.get(url, json=task_body('PENDING'))
    http.get(url, status=503, json={'code': 'x', 'message': 'busy'})
    http.get(url, json=task_body('RUNNING'))
    http.get(url, json=task_body('SUCCEEDED', results=[{'subtask_status': 'SUCCEEDED'}]),
             )
    r = Transcription.wait('t-1')
    assert r.output.task_status == 'SUCCEEDED' and r.output.results
    assert len(http.calls) == 4
    h = http.calls[0].request.headers
    assert h['x-dashscope-sdk-client'] == 'python-sdk/2.0.2/tasks'
    assert 'X-DashScope-Async' not in h and 'Content-Type' not in h


def test_wait_timeout_gives_408(http):
    http.get(BASE + '/tasks/t-1', json=task_body('RUNNING'))
    r = Transcription.wait('t-1', wait_timeout=0.05)
    assert (r.status_code, r.code, r.request_id) == (408, 'WaitTaskTimeout', 't-1')
    assert r.message == 'Wait task: t-1 timeout after 0.05 seconds.'


def test_task_argument_checks(http):
    with pytest.raises(InvalidParameter, match='Task invalid!'):
        Transcription.fetch(42)
    with pytest.raises(InvalidParameter, match='Task id required!'):
        Transcription.wait('')
    http.post(SUBMIT, status=400, json={'code': 'InvalidParameter', 'message': 'bad'})
    with pytest.raises(InvalidTask, match=r'Invalid task, task create failed: \{"status_code": 400'):
        Transcription.call('m', ['u'])


def test_call_polls_where_it_submitted(http):
    other = 'http://127.0.0.1:9/api/v1'
    http.post(other + '/services/audio/asr/transcription', json=task_body('PENDING'))
    http.get(other + '/tasks/t-1', json=task_body('SUCCEEDED'))
    r = Transcription.call('m', ['u'], base_address=other, headers={'X-Trace': '1'})
    assert r.output.task_status == 'SUCCEEDED'
    assert http.calls[1].request.headers['X-Trace'] == '1'


def test_network_retries_then_the_network_error(http):
    http.get(BASE + '/tasks/t-1', body=requests.ConnectionError('down'))
    http.get(BASE + '/tasks/t-1', body=requests.ConnectionError('down'))
    http.get(BASE + '/tasks/t-1', json=task_body('RUNNING'))
    assert Transcription.fetch('t-1').output.task_status == 'RUNNING'
    for _ in range(4):
        http.get(BASE + '/tasks/t-2', body=requests.ConnectionError('down'))
    with pytest.raises(requests.ConnectionError):
        Transcription.fetch('t-2')


def test_cancel_and_list(http):
    http.post(BASE + '/tasks/t-1/cancel', json={'request_id': 'rc'})
    http.get(BASE + '/tasks', json={'request_id': 'rl', 'data': [], 'total': 0})
    assert Transcription.cancel('t-1').status_code == 200
    r = Transcription.list(model_name='paraformer-v2', page_size=5)
    assert r.request_id == 'rl' and r.output == {'data': [], 'total': 0} and r.code is None
    assert 'model_name=paraformer-v2' in http.calls[1].request.url
    assert 'page_no=1' in http.calls[1].request.url


def test_vocabulary_service_wire_and_errors(http):
    def reply(output):
        return {'request_id': 'rv', 'output': output, 'usage': {'count': 1}}
    http.post(CUSTOM, json=reply({'vocabulary_id': 'vocab-p-1'}))
    http.post(CUSTOM, json=reply({'vocabulary_list': [{'vocabulary_id': 'vocab-p-1'}]}))
    http.post(CUSTOM, json=reply({'status': 'OK', 'vocabulary': []}))
    http.post(CUSTOM, json=reply({}))
    http.post(CUSTOM, status=404, json={'request_id': 'r404', 'code': 'ResourceNotFound',
                                        'message': 'vocabulary not found'})
    service = VocabularyService(extra_param=1)
    assert service.get_last_request_id() is None
    vocab = [{'text': '阿里云', 'weight': 4, 'lang': 'zh'}]
    assert service.create_vocabulary('paraformer-realtime-v2', 'p', vocab) == 'vocab-p-1'
    assert service.list_vocabularies(prefix='p') == [{'vocabulary_id': 'vocab-p-1'}]
    assert service.query_vocabulary('vocab-p-1')['status'] == 'OK'
    assert service.update_vocabulary('vocab-p-1', vocab) is None
    with pytest.raises(VocabularyServiceException) as e:
        service.delete_vocabulary('vocab-p-1')
    assert e.value._status_code == 404 and e.value._code == 'ResourceNotFound'
    assert service.get_last_request_id() == 'rv'
    bodies = [json.loads(c.request.body) for c in http.calls]
    assert bodies[0] == {'model': 'speech-biasing', 'parameters': {'extra_param': 1}, 'input': {
        'action': 'create_vocabulary', 'target_model': 'paraformer-realtime-v2', 'prefix': 'p',
        'vocabulary': vocab}}
    assert list(bodies[0]) == ['model', 'parameters', 'input']
    assert bodies[1]['input'] == {'action': 'list_vocabulary', 'prefix': 'p', 'page_index': 0,
                                  'page_size': 10}
    assert 'X-DashScope-Async' not in http.calls[0].request.headers


def test_vocabulary_retries_exhausted_raise_the_network_error(http):
    for _ in range(4):
        http.post(CUSTOM, body=requests.Timeout('slow'))
    with pytest.raises(requests.Timeout):
        VocabularyService().list_vocabularies()


# -- against the emulator ---------------------------------------------------------------------------

def test_transcription_against_the_emulator(emu, monkeypatch):
    monkeypatch.setattr(Transcription, '_WAIT_FIRST_INTERVAL_S', 0.05)
    emu.knobs['running_ms'] = 100
    emu.transcription_script('https://x/a.wav', ['你好。', '再见。'])
    emu.inject_http('fail_url:https://x/bad.wav')
    r = Transcription.call('paraformer-v2', ['https://x/a.wav', 'https://x/bad.wav'],
                           diarization_enabled=True)
    assert r.status_code == 200 and r.output.task_status == 'SUCCEEDED'
    ok, bad = r.output.results
    assert bad['code'] == 'InvalidFile.DownloadFailed' and bad['subtask_status'] == 'FAILED'
    assert r.output.task_metrics == {'TOTAL': 2, 'SUCCEEDED': 1, 'FAILED': 1}
    content = requests.get(ok['transcription_url'], timeout=10).json()
    sentences = content['transcripts'][0]['sentences']
    assert [s['text'] for s in sentences] == ['你好。', '再见。']
    assert [s['speaker_id'] for s in sentences] == [0, 1]
    assert Transcription.fetch(r.output.task_id).output.task_status == 'SUCCEEDED'
    assert Transcription.fetch('no-such-task').output.task_status == 'UNKNOWN'
    listed = Transcription.list()
    assert listed.output['total'] == 1


def test_transcription_cancel_and_stuck_task_against_the_emulator(emu, monkeypatch):
    monkeypatch.setattr(Transcription, '_WAIT_FIRST_INTERVAL_S', 0.05)
    emu.knobs['pending_ms'] = 60000
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'])
    assert Transcription.cancel(r).status_code == 200
    assert Transcription.fetch(r).output.task_status == 'CANCELED'
    emu.inject_http('stuck:RUNNING')
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'])
    assert Transcription.wait(r, wait_timeout=0.2).status_code == 408
    bad = Transcription.cancel(r)
    assert (bad.status_code, bad.code) == (400, 'UnsupportedOperation')


def test_http_key_check_and_faults_against_the_emulator(emu, configured):
    emu.inject_http('non_json:500:oops')
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'])
    assert (r.status_code, r.code, r.message) == (500, 'Unknown', 'oops')
    configured.api_key = 'wrong'
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'])
    assert (r.status_code, r.code, r.message) == (401, 'InvalidApiKey', 'Invalid API-key provided.')
    assert emu.http_records[-1].header('Authorization') == 'Bearer …'


def test_vocabulary_lifecycle_against_the_emulator(emu):
    service = VocabularyService()
    vocab = [{'text': '阿里云', 'weight': 4, 'lang': 'zh'}, {'text': 'DashScope', 'weight': 4}]
    vid = service.create_vocabulary('paraformer-realtime-v2', 'demo1', vocab)
    assert vid.startswith('vocab-demo1-') and len(vid) == len('vocab-demo1-') + 32
    assert service.query_vocabulary(vid)['status'] == 'OK'
    assert [v['vocabulary_id'] for v in service.list_vocabularies(prefix='demo1')] == [vid]
    service.update_vocabulary(vid, vocab[:1])
    assert service.query_vocabulary(vid)['vocabulary'] == vocab[:1]
    with pytest.raises(VocabularyServiceException) as e:
        service.create_vocabulary('paraformer-realtime-v2', 'BAD PREFIX', vocab)
    assert e.value._status_code == 400
    emu.knobs['strict_vocabulary'] = True
    from dashscope_asr.audio.asr import Recognition
    from dsasr_helpers import SAMPLE_WAV
    ok = Recognition('paraformer-realtime-v2', None, 'wav', 16000, vocabulary_id=vid).call(SAMPLE_WAV)
    assert ok.status_code == 200
    service.delete_vocabulary(vid)
    with pytest.raises(VocabularyServiceException) as e:
        service.query_vocabulary(vid)
    assert e.value._status_code == 404
    bad = Recognition('paraformer-realtime-v2', None, 'wav', 16000, vocabulary_id=vid).call(SAMPLE_WAV)
    assert (bad.status_code, bad.code) == (44, 'InvalidParameter')


def test_http_retry_faults_against_the_emulator(emu, monkeypatch):
    monkeypatch.setattr(Transcription, '_RETRY_INTERVAL_S', 0)
    monkeypatch.setattr(Transcription, '_WAIT_FIRST_INTERVAL_S', 0.01)
    emu.knobs['running_ms'] = 0
    r = Transcription.async_call('paraformer-v2', ['https://x/a.wav'])
    emu.inject_http('drop', path='/api/v1/tasks/')       # connection reset: fetch retries
    assert Transcription.fetch(r).output.task_status == 'SUCCEEDED'
    emu.inject_http('503_then_ok:2')                      # wait() retries 503 responses
    assert Transcription.wait(r).output.task_status == 'SUCCEEDED'
    paths = [rec.path for rec in emu.http_records if rec.path.startswith('/api/v1/tasks/')]
    assert len(paths) == 2 + 3
    emu.inject_http('status:500', path='/api/v1/tasks/')
    bad = Transcription.wait(r)
    assert (bad.status_code, bad.code) == (500, 'Emulated')


def test_local_files_are_segmented_by_the_vad(configured, monkeypatch, tmp_path):
    import shutil
    from dashscope_asr.emulator import Emulator
    from dsasr_helpers import SAMPLE_WAV
    shutil.copy(SAMPLE_WAV, str(tmp_path / 'sample.wav'))
    monkeypatch.setattr(Transcription, '_WAIT_FIRST_INTERVAL_S', 0.01)
    with Emulator(files_dir=str(tmp_path), running_ms=0) as emu:
        emu.apply_to(configured)
        url = emu.http_root + '/files/sample.wav'
        assert requests.get(url, timeout=10).content[:4] == b'RIFF'
        r = Transcription.call('paraformer-v2', [url])
        content = requests.get(r.output.results[0]['transcription_url'], timeout=10).json()
    sentences = content['transcripts'][0]['sentences']
    assert [s['text'] for s in sentences] == ['模拟识别结果第1句。', '模拟识别结果第2句。']
    assert (sentences[0]['begin_time'], sentences[1]['end_time']) == (200, 4660)
    assert content['properties']['original_duration_in_milliseconds'] == 5550
