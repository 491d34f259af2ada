"""pytest plugin (registered through the pytest11 entry point): the ``dashscope_emulator`` fixture.

``websockets`` is imported inside the fixture only, so loading this plugin costs nothing for users
without the ``emulator`` extra.
"""
import pytest


@pytest.fixture
def dashscope_emulator():
    """A started :class:`dashscope_asr.emulator.Emulator` (fresh per test), stopped afterwards."""
    from dashscope_asr.emulator import Emulator
    emu = Emulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()
