"""Fixtures for the dds_client tests (the emulator fixture comes from the package's plugin)."""

import threading

import pytest

from dds_client import DDSClient



class Recorder:
    """Collects callback calls; ``wait(name)`` blocks on an Event, never sleeps."""

    def __init__(self):
        self.calls = []
        self._events = {}
        self._lock = threading.Lock()

    def _event(self, name):
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def __call__(self, name):
        def callback(*args):
            self.calls.append((name,) + args)
            self._event(name).set()
        callback.__name__ = name
        return callback

    def wait(self, name, timeout=5.0):
        return self._event(name).wait(timeout)

    def names(self):
        return [c[0] for c in self.calls]

    def of(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def make_client(dds_emulator):
    """DDSClient factory bound to the emulator; every client is closed at teardown."""
    clients = []

    def make(**kwargs):
        params = dds_emulator.client_kwargs()
        params.update(kwargs)
        client = DDSClient(**params)
        clients.append(client)
        return client
    yield make
    for client in clients:
        client.close()
