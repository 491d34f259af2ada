"""pytest plugin (pytest11 entry point): the ``sis_emulator`` fixture, a started SIS emulator.

``websockets`` is imported inside the fixture, so loading the plugin costs nothing for users without it.
"""
import pytest


@pytest.fixture
def sis_emulator():
    """A running ``sis_rasr.emulator.SisEmulator`` on 127.0.0.1 (free ports), stopped after the test."""
    from sis_rasr.emulator import SisEmulator
    emu = SisEmulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()
