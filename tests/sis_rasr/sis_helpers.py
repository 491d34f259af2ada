"""Helpers shared by the sis_rasr tests (a module name unique in the suite: tests have no packages)."""
import os
import threading

from sis_rasr import RasrCallBack, SisConfig

SAMPLE_WAV = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'sis_rasr', 'samples',
                          'sis_rasr_zh16k.wav')


class Recorder(RasrCallBack):
    """Records every callback as (name, argument, thread name); events to wait on."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.errored = threading.Event()
        self.ended = threading.Event()
        self.raise_in = {}

    def _add(self, name, arg=None):
        with self.lock:
            self.calls.append((name, arg, threading.current_thread().name))
        exc = self.raise_in.get(name)
        if exc is not None:
            raise exc

    def on_open(self):
        self._add('open')

    def on_start(self, message):
        self._add('start', message)

    def on_response(self, message):
        self._add('response', message)

    def on_end(self, message):
        self._add('end', message)
        self.ended.set()

    def on_close(self):
        self._add('close')
        self.closed.set()

    def on_error(self, error):
        self._add('error', error)
        self.errored.set()

    def on_event(self, event):
        self._add('event', event)

    def names(self):
        with self.lock:
            return [c[0] for c in self.calls]

    def args(self, name):
        with self.lock:
            return [c[1] for c in self.calls if c[0] == name]

    def finals(self):
        texts = []
        for message in self.args('response'):
            for seg in message['segments']:
                if seg['is_final']:
                    texts.append(seg['result']['text'])
        return texts


def fast_config():
    config = SisConfig()
    config.set_connect_timeout(5)
    config.set_websocket_wait_time(5)
    return config


def pcm_silence(ms, rate=16000):
    return b'\x00\x00' * (rate * ms // 1000)


def pcm_tone(ms, rate=16000, amplitude=8000):
    import math
    import struct
    n = rate * ms // 1000
    return struct.pack('<%dh' % n, *(int(amplitude * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)))
