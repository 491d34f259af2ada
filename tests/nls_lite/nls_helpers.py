"""Helpers of the nls_lite client tests: generated audio with known sentence boundaries and a recorder
of callbacks (name, thread, arguments) that tests wait on with events, never sleeps."""
import threading

from nls_emu_helpers import RATE, silence, tone


def make_pcm(pattern, rate=RATE):
    """16-bit mono PCM from [('tone'|'silence', seconds), ...]; tones are well above the VAD threshold."""
    return b''.join(tone(int(seconds * 1000), rate) if kind == 'tone' else silence(int(seconds * 1000), rate)
                    for kind, seconds in pattern)


class Recorder(object):
    """Callback sink: each callback name gets a list of (thread name, args) and an Event."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()
        self._events = {}

    def event(self, name):
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def __call__(self, name):
        def callback(*args):
            with self._lock:
                self.calls.append((name, threading.current_thread().name, args))
            self.event(name).set()
        return callback

    def names(self):
        return [c[0] for c in self.calls]

    def args(self, name):
        return [c[2] for c in self.calls if c[0] == name]

    def threads(self):
        return {c[1] for c in self.calls}

    def wait(self, name, timeout=10):
        assert self.event(name).wait(timeout), '%s was not called within %ss' % (name, timeout)

    def kwargs(self, *names):
        return {name: self(name) for name in names}


RECOGNIZER_CALLBACKS = ('on_start', 'on_result_changed', 'on_completed', 'on_error', 'on_close')
TRANSCRIBER_CALLBACKS = ('on_start', 'on_sentence_begin', 'on_sentence_end', 'on_result_changed',
                         'on_completed', 'on_error', 'on_close')
