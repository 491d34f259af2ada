"""Fixtures of the nls_lite tests (the emulator fixtures come from the nls_lite pytest plugin)."""
import pytest

from nls_emu_helpers import RawClient
from nls_helpers import Recorder, make_pcm


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def two_sentences():
    """Two tone bursts separated by 1.2 s of silence (> the 800 ms default sentence silence)."""
    return make_pcm([('silence', 0.3), ('tone', 1.0), ('silence', 1.2), ('tone', 0.8), ('silence', 1.0)])


@pytest.fixture
def clients():
    """Raw websocket-client connections to an emulator, closed after the test."""
    opened = []

    def connect(emu, **kwargs):
        client = RawClient(emu.url, **kwargs)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()
