"""pytest plugin: the ``dds_emulator`` fixture (registered through the pytest11 entry point).

Imports nothing heavy at import time: ``websockets`` is imported when the fixture starts.
"""

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "dds_emulator(**kwargs): options of the dds_emulator "
                            "fixture (Emulator keyword arguments)")


@pytest.fixture
def dds_emulator(request):
    """A started ``dds_client.emulator.Emulator``, stopped after the test."""
    from dds_client.emulator import Emulator

    marker = request.node.get_closest_marker("dds_emulator")
    kwargs = dict(marker.kwargs) if marker else {}
    emulator = Emulator(**kwargs).start()
    try:
        yield emulator
    finally:
        emulator.stop()
