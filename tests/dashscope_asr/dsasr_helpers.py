"""Helpers shared by the dashscope_asr tests (a uniquely named module: test dirs have no __init__)."""
import os
import threading

import dashscope_asr
from dashscope_asr.audio.asr import RecognitionCallback

SAMPLE_WAV = os.path.join(os.path.dirname(dashscope_asr.__file__), 'samples', 'asr_example.wav')
SCRIPT = ['北京今天天气怎么样？', '明天会下雨吗？']


class Recorder(RecognitionCallback):
    """Records every callback with its thread; events to wait on instead of sleeping."""

    def __init__(self, raise_in=None):
        self.calls = []
        self.results = []
        self.errors = []
        self.threads = {}
        self.raise_in = raise_in
        self.opened = threading.Event()
        self.completed = threading.Event()
        self.errored = threading.Event()
        self.closed = threading.Event()
        self.first_event = threading.Event()
        self.final_event = threading.Event()
        self.close_count = 0

    def _note(self, name):
        self.calls.append(name)
        self.threads.setdefault(name, threading.current_thread().name)
        if self.raise_in == name:
            raise RuntimeError('boom in ' + name)

    def on_open(self):
        self._note('on_open')
        self.opened.set()

    def on_event(self, result):
        self.results.append(result)
        self.first_event.set()
        if result.is_sentence_end(result.get_sentence()):
            self.final_event.set()
        self._note('on_event')

    def on_complete(self):
        self.completed.set()
        self._note('on_complete')

    def on_error(self, result):
        self.errors.append(result)
        self.errored.set()
        self._note('on_error')

    def on_close(self):
        self.close_count += 1
        self.closed.set()
        self._note('on_close')

    def lifecycle(self):
        """Calls without the on_event repetitions."""
        return [c for c in self.calls if c != 'on_event']

    def finals(self):
        return [r.get_sentence()['text'] for r in self.results
                if r.is_sentence_end(r.get_sentence())]


def frames(data, size=3200):
    return [data[i:i + size] for i in range(0, len(data), size)]
