"""Paraformer real-time speech recognition (``dashscope.audio.asr.recognition``)."""
import json
import os
import queue
import sys
import threading
import time
import uuid

from ... import _protocol
from ..._connection import Session
from ...api_entities.dashscope_response import RecognitionResponse
from ...common.api_key import get_default_api_key
from ...common.constants import DEFAULT_REQUEST_TIMEOUT_SECONDS, WEBSOCKET_ERROR_CODE
from ...common.error import (InputDataRequired, InputRequired, InvalidParameter, ModelRequired,
                             RequestFailure)
from ...common.logging import apply_env_logging_level, logger
from ...common.utils import forced_url, resolve_url, websocket_headers

__all__ = ['Recognition', 'RecognitionCallback', 'RecognitionResult']

_CALL_CHUNK_BYTES = 12800  # 400 ms of 16 kHz pcm16, the vendor's call() chunk


# Recognition parameters with their own keyword (1.27+); sent only when not None, after **kwargs.
_EXPLICIT = ('disfluency_removal_enabled', 'diarization_enabled', 'speaker_count',
             'timestamp_alignment_enabled', 'special_word_filter', 'audio_event_detection_enabled')


def _explicit(arguments):
    return {name: arguments[name] for name in _EXPLICIT}


def _now_ms():
    return time.time() * 1000


class RecognitionResult(RecognitionResponse):
    """One result of real-time recognition: a dict with attribute access."""

    def __init__(self, response, sentences=None, usages=None):
        # The vendor sets these keys directly, in this order, without the base constructor.
        self.status_code = response.status_code
        self.request_id = response.request_id
        self.code = response.code
        self.message = response.message
        self.usages = usages
        if sentences is not None and len(sentences) > 0:
            self.output = {'sentence': sentences}
        else:
            self.output = response.output
        if self.usages is not None and len(self.usages) > 0 and 'usage' in self.usages[-1]:
            self.usage = self.usages[-1]['usage']
        else:
            self.usage = None

    def __str__(self):
        # The <=1.25 form (2.0.2 raises AttributeError here; reference D-44).
        converted = RecognitionResponse.from_api_response(self)
        return json.dumps({k: converted.get(k) for k in ('status_code', 'request_id', 'code',
                                                         'message', 'output', 'usage')},
                          ensure_ascii=False)

    def get_sentence(self):
        """The sentence dict (streaming), the list of final sentences (``call()``), or None."""
        if self.output and 'sentence' in self.output:
            return self.output['sentence']
        return None

    def get_request_id(self):
        return self.request_id

    def get_usage(self, sentence):
        """Usage reported with the final ``sentence`` (matched by ``end_time``), else None."""
        if self.usages is not None and sentence is not None and sentence.get('end_time') is not None:
            for usage in self.usages:
                if usage['end_time'] == sentence['end_time']:
                    return usage['usage']
        return None

    @staticmethod
    def is_sentence_end(sentence):
        return sentence is not None and 'end_time' in sentence and sentence['end_time'] is not None


class RecognitionCallback(object):
    """Hooks of a streaming recognition; every one defaults to doing nothing."""

    def on_open(self) -> None:
        pass

    def on_complete(self) -> None:
        pass

    def on_error(self, result: RecognitionResult) -> None:
        pass

    def on_close(self) -> None:
        pass

    def on_event(self, result: RecognitionResult) -> None:
        pass


class _SessionState(object):
    """Per-session bookkeeping of the callback lifecycle."""

    def __init__(self):
        self.completed = False
        self.closed = False
        self.failed = False
        self.close_by_stop = False
        self.dispatch_dead = False
        self.thread = None
        self.session = None


class Recognition(object):
    """Real-time recognition: ``call()`` for a file, ``start``/``send_audio_frame``/``stop`` to stream.

    Results of a streaming session go to ``callback`` on a dedicated thread as soon as they arrive.
    """

    SILENCE_TIMEOUT_S = 23
    START_TIMEOUT_S = 10
    FINISH_TIMEOUT_S = 30

    def __init__(self, model, callback, format, sample_rate, workspace=None,
                 disfluency_removal_enabled=None, diarization_enabled=None, speaker_count=None,
                 timestamp_alignment_enabled=None, special_word_filter=None,
                 audio_event_detection_enabled=None, **kwargs):
        # State first, so a failed validation leaves a well-formed object (reference D-02).
        self._running = False
        self._lock = threading.Lock()
        self._state = None
        self._start_stream_timestamp = -1
        self._first_package_timestamp = -1
        self._stop_stream_timestamp = -1
        self._on_complete_timestamp = -1
        if model is None:
            raise ModelRequired('Model is required!')
        if format is None:
            raise InputRequired('format is required!')
        if sample_rate is None:
            raise InputRequired('sample_rate is required!')
        apply_env_logging_level()
        self.model = model
        self.format = format
        self.sample_rate = sample_rate
        self._workspace = workspace
        self._callback = callback
        self._kwargs = kwargs
        self._merge(None, _explicit(locals()), {})
        self.last_request_id = uuid.uuid4().hex
        self.request_id_confirmed = False
        self._task_id_used = False

    # -- request building --------------------------------------------------------------------------
    def _merge(self, phrase_id, explicit, kwargs, into=None):
        """Parameters of one session: the constructor's, then this call's (never sticky)."""
        target = self._kwargs if into is None else into
        if phrase_id:
            target['resources'] = _protocol.phrase_resources(phrase_id)
        target.update(kwargs)
        for key, value in explicit.items():
            if value is not None:
                target[key] = value
        return target

    def _new_task_id(self):
        # The first session uses the id created with the instance (so get_last_request_id() before
        # start() names it); every later session gets a fresh one.
        if self._task_id_used:
            self.last_request_id = uuid.uuid4().hex
            self.request_id_confirmed = False
        self._task_id_used = True
        return self.last_request_id

    def _request(self, session_kwargs, streaming):
        """Everything a session needs, resolved now so setup errors reach the caller."""
        parameters, reserved = _protocol.split_kwargs(session_kwargs)
        if not self.model:
            raise ModelRequired('Model is required!')
        api_key = reserved.get('api_key') or get_default_api_key()
        workspace = reserved.get('workspace', self._workspace)
        import dashscope_asr
        url = resolve_url(forced_url('WEBSOCKET') or reserved.get('base_address')
                          or dashscope_asr.base_websocket_api_url, workspace)
        headers = websocket_headers(api_key, workspace, reserved.get('headers'),
                                    reserved.get('user_agent'))
        task_id = self._new_task_id()
        run_task = _protocol.build_run_task(
            task_id, self.model, self.sample_rate, self.format, parameters,
            reserved.get('resources'), reserved.get('raw_input'))
        return dict(url=url, headers=headers,
                    request_timeout=reserved.get('request_timeout') or DEFAULT_REQUEST_TIMEOUT_SECONDS,
                    task_id=task_id, run_task=run_task,
                    start_timeout=self.START_TIMEOUT_S, finish_timeout=self.FINISH_TIMEOUT_S,
                    silence_timeout=self.SILENCE_TIMEOUT_S if streaming else None,
                    streaming=streaming)

    # -- call() ------------------------------------------------------------------------------------
    def call(self, file, phrase_id=None, disfluency_removal_enabled=None, diarization_enabled=None,
             speaker_count=None, timestamp_alignment_enabled=None, special_word_filter=None,
             audio_event_detection_enabled=None, **kwargs):
        """Recognise a whole file; returns a RecognitionResult of the final sentences (no callbacks)."""
        self._start_stream_timestamp = _now_ms()
        if self._running:
            raise InvalidParameter('Speech recognition has been called.')
        if not os.path.exists(file):
            raise FileNotFoundError('No such file or directory: ' + file)
        if os.path.isdir(file):
            raise IsADirectoryError('Is a directory: ' + file)
        self._first_package_timestamp = -1
        self._stop_stream_timestamp = -1
        self._on_complete_timestamp = -1
        session_kwargs = self._merge(phrase_id, _explicit(locals()), kwargs,
                                     into=dict(self._kwargs))
        request = self._request(session_kwargs, streaming=False)
        chunks = []
        with open(file, 'rb') as f:
            while True:
                chunk = f.read(_CALL_CHUNK_BYTES)
                if not chunk:
                    break
                chunks.append(chunk)
        if not chunks:
            raise InputDataRequired('The supplied file was empty (zero bytes long)')
        self._stop_stream_timestamp = _now_ms()
        outcomes = queue.Queue()
        session = Session(sink=outcomes.put, name='call', **request)
        for chunk in chunks:
            session.send_audio(chunk)
        session.finish()
        self._running = True
        sentences, usages, last, error = [], [], None, None
        try:
            # The caller sends (reading runs on the session's reader thread, so a large file
            # cannot deadlock on full buffers); run() returns once the session has ended.
            session.run()
            while True:
                outcome = outcomes.get_nowait()
                if outcome is None:
                    break
                if outcome.kind in ('event', 'heartbeat'):
                    if outcome.has_text and self._first_package_timestamp < 0:
                        self._first_package_timestamp = outcome.at
                    self._confirm_request_id()
                    last = outcome.response
                    sentence = outcome.sentence
                    if RecognitionResult.is_sentence_end(sentence):
                        sentences.append(sentence)
                        if last.usage is not None:
                            usages.append({'end_time': sentence['end_time'], 'usage': last.usage})
                elif outcome.kind == 'complete':
                    last = outcome.response
                elif outcome.kind == 'error':
                    error = outcome.response
                    self._log_error(error)
        finally:
            self._running = False
        self._on_complete_timestamp = _now_ms()
        if error is not None:
            return RecognitionResult(RecognitionResponse.from_api_response(error))
        return RecognitionResult(RecognitionResponse.from_api_response(last), sentences, usages)

    # -- streaming ---------------------------------------------------------------------------------
    def start(self, phrase_id=None, disfluency_removal_enabled=None, diarization_enabled=None,
              speaker_count=None, timestamp_alignment_enabled=None, special_word_filter=None,
              audio_event_detection_enabled=None, **kwargs):
        """Start a streaming session; ``on_open`` runs here, before connecting; returns at once."""
        if self._callback is None:
            raise AssertionError('Please set the callback to get the speech recognition result.')
        if self._running:
            raise InvalidParameter('Speech recognition has started.')
        self._start_stream_timestamp = -1
        self._first_package_timestamp = -1
        self._stop_stream_timestamp = -1
        self._on_complete_timestamp = -1
        session_kwargs = self._merge(phrase_id, _explicit(locals()), kwargs,
                                     into=dict(self._kwargs))
        request = self._request(session_kwargs, streaming=True)
        state = _SessionState()
        outcomes = queue.Queue()
        state.session = Session(sink=outcomes.put, on_autostop=self._on_autostop, name='rt',
                                **request)
        state.thread = threading.Thread(target=self._dispatch, args=(state, outcomes),
                                        name='dashscope_asr-callback-' + self.last_request_id[:8])
        self._state = state
        self._running = True
        try:
            self._callback.on_open()
        except BaseException:
            self._running = False  # nothing started yet: no thread, no socket to clean up
            self._state = None
            raise
        state.session.last_activity = time.monotonic()
        try:
            state.thread.start()
            try:
                state.session.start()
            except BaseException:
                state.closed = True  # nothing ran: no callbacks; let the callback thread go
                outcomes.put(None)
                state.thread.join()
                raise
        except BaseException:  # e.g. "can't start new thread"
            self._running = False
            self._state = None
            raise

    def send_audio_frame(self, buffer: bytes):
        """Queue one audio frame (one binary WebSocket frame); never blocks."""
        data = memoryview(buffer).tobytes()  # TypeError now for non-buffers (reference D-91)
        if not self._running:
            raise InvalidParameter('Speech recognition has stopped.')
        if self._start_stream_timestamp < 0:
            self._start_stream_timestamp = _now_ms()
        if data:
            self._state.session.send_audio(data)

    def update_context(self, payload_input):
        """Send a ``continue-task`` with ``payload_input`` (Fun-ASR context), in order with audio."""
        if not self._running:
            raise InvalidParameter('Speech recognition has stopped.')
        if payload_input is None:
            raise InvalidParameter('Context is required.')
        self._state.session.send_text(
            _protocol.build_continue_task(self.last_request_id, payload_input))

    def stop(self, timeout=None):
        """Finish the task and wait for its end (bounded); ``on_close`` follows on this thread."""
        state = self._state
        with self._lock:
            if not self._running:
                raise InvalidParameter('Speech recognition has stopped.')
            self._running = False
            in_callback = state.thread is threading.current_thread()
            if not in_callback:
                state.close_by_stop = True
        self._stop_stream_timestamp = _now_ms()
        state.session.finish()
        if in_callback:
            return  # on_complete and on_close follow on this (the callback) thread
        if timeout is not None:
            state.thread.join(timeout)
            if state.thread.is_alive():
                state.session.abort(_protocol.timeout_error(
                    'stop() did not complete within %s s' % timeout))
        state.thread.join()
        state.session.join()
        self._close_once(state)

    # -- callback thread ---------------------------------------------------------------------------
    def _on_autostop(self):
        with self._lock:
            self._running = False

    def _confirm_request_id(self):
        if not self.request_id_confirmed:
            self.request_id_confirmed = True

    def _log_error(self, response):
        if response.status_code == WEBSOCKET_ERROR_CODE:
            logger.error('%s', RequestFailure(request_id=response.request_id, http_code=44,
                                              name=response.code, message=response.message))
        else:
            logger.error('Recognition failed: status_code=%s, code=%s, message=%s',
                         response.status_code, response.code, response.message)

    def _invoke(self, state, name, *args):
        if state.dispatch_dead:
            return
        try:
            getattr(self._callback, name)(*args)
        except (SystemExit, KeyboardInterrupt):
            # The vendor's samples exit from on_error; end dispatch quietly, tear the session down.
            state.dispatch_dead = True
            state.session.abort(_protocol.unknown_error(SystemExit, 'callback exited'))
        except Exception:
            logger.error('RecognitionCallback.%s raised; dispatch continues', name)
            exc_type, exc, tb = sys.exc_info()
            threading.excepthook(threading.ExceptHookArgs(
                (exc_type, exc, tb, threading.current_thread())))

    def _close_once(self, state):
        with self._lock:
            if state.closed:
                return
            state.closed = True
        self._invoke(state, 'on_close')

    def _dispatch(self, state, outcomes):
        while True:
            outcome = outcomes.get()  # None arrives once the session has closed its socket
            if outcome is None:
                break
            kind = outcome.kind
            if kind == 'event':
                if outcome.has_text and self._first_package_timestamp < 0:
                    self._first_package_timestamp = outcome.at
                self._confirm_request_id()
                self._invoke(state, 'on_event', RecognitionResult(
                    RecognitionResponse.from_api_response(outcome.response), usages=outcome.usages))
            elif kind == 'complete':
                if not state.completed:
                    state.completed = True
                    self._on_complete_timestamp = outcome.at
                    self._invoke(state, 'on_complete')
            elif kind == 'error':
                with self._lock:
                    self._running = False
                    state.failed = True
                self._log_error(outcome.response)
                self._invoke(state, 'on_error', RecognitionResult(
                    RecognitionResponse.from_api_response(outcome.response)))
                self._close_once(state)
        with self._lock:
            # Normal end: stop() closes on its own thread; auto-stop or stop() from a callback: here.
            close_here = not self._running and not state.close_by_stop
        if close_here:
            self._close_once(state)

    # -- getters -----------------------------------------------------------------------------------
    def get_last_request_id(self):
        return self.last_request_id

    def get_first_package_delay(self):
        """Milliseconds from the first audio frame to the first result with text; -1 if unknown."""
        if self._first_package_timestamp < 0 or self._start_stream_timestamp < 0:
            return -1
        return self._first_package_timestamp - self._start_stream_timestamp

    def get_last_package_delay(self):
        """Milliseconds from ``stop()`` to the completion message; -1 if unknown."""
        if self._on_complete_timestamp < 0 or self._stop_stream_timestamp < 0:
            return -1
        return self._on_complete_timestamp - self._stop_stream_timestamp

