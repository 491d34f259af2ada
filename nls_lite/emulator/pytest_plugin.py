"""pytest plugin (entry point ``pytest11``): the ready ``nls_emulator`` fixture.

Nothing here imports ``websockets``: pytest loads every plugin at start-up, also for users without the
``emulator`` extra. Configure the fixture per test with ``@pytest.mark.nls_emulator(**NlsEmulator kwargs)``.
"""
import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'nls_emulator(**kwargs): NlsEmulator options for the nls_emulator fixture')


@pytest.fixture
def nls_emulator(request):
    """A started NlsEmulator (token 'test-token', appkey 'test-appkey'), stopped after the test."""
    pytest.importorskip('websockets', reason='the nls_emulator fixture needs websockets (the emulator extra)')
    from nls_lite.emulator import NlsEmulator
    marker = request.node.get_closest_marker('nls_emulator')
    kwargs = dict(marker.kwargs) if marker is not None else {}
    with NlsEmulator(**kwargs) as emu:
        yield emu


@pytest.fixture
def nls_emulator_factory():
    """Call it with NlsEmulator options to get more started emulators; all stopped after the test."""
    pytest.importorskip('websockets', reason='the nls_emulator fixture needs websockets (the emulator extra)')
    from nls_lite.emulator import NlsEmulator
    started = []

    def make(**kwargs):
        emu = NlsEmulator(**kwargs).start()
        started.append(emu)
        return emu

    try:
        yield make
    finally:
        for emu in reversed(started):
            emu.stop()
