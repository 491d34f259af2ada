"""Fixtures for the sis_rasr tests: a recording callback and client factories bound to the emulator."""
import pytest

from sis_rasr import RasrClient
from sis_helpers import SAMPLE_WAV, Recorder, fast_config


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def sample_audio():
    with open(SAMPLE_WAV, 'rb') as f:
        return f.read()


@pytest.fixture
def make_client(sis_emulator):
    """AK/SK client factory against the emulator; every client is closed at teardown."""
    clients = []

    def make(callback, config=None, **kwargs):
        kw = dict(ak=sis_emulator.ak, sk=sis_emulator.sk, use_aksk=True, region=sis_emulator.region,
                  project_id=sis_emulator.project_id, callback=callback, config=config or fast_config(),
                  service_endpoint=sis_emulator.ws_endpoint, retry_sleep_time=0)
        kw.update(kwargs)
        client = RasrClient(**kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
