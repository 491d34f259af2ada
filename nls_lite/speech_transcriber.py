"""NlsSpeechTranscriber: real-time transcription (实时语音识别), namespace SpeechTranscriber."""
import logging

from . import _protocol as protocol
from ._session import DEFAULT, SpeechClient
from .exception import InvalidParameter

__all__ = ['NlsSpeechTranscriber']

_log = logging.getLogger('nls')


class NlsSpeechTranscriber(SpeechClient):
    """Transcribe a stream of any length, sentence by sentence.

    Callbacks run on the session's own thread: on_start, on_sentence_begin, on_sentence_end,
    on_result_changed, on_completed and on_error get (message_json_str, *callback_args); on_close gets
    (*callback_args) and fires once per session.
    """

    _service = protocol.TRANSCRIBER

    def __init__(self, url=DEFAULT, token=None, appkey=None,
                 on_start=None, on_sentence_begin=None, on_sentence_end=None,
                 on_result_changed=None, on_completed=None, on_error=None,
                 on_close=None, callback_args=[]):
        super().__init__(url, token, appkey,
                         {'on_start': on_start, 'on_sentence_begin': on_sentence_begin,
                          'on_sentence_end': on_sentence_end, 'on_result_changed': on_result_changed,
                          'on_completed': on_completed, 'on_error': on_error, 'on_close': on_close},
                         callback_args)

    def start(self, aformat='pcm', sample_rate=16000, ch=1,
              enable_intermediate_result=False,
              enable_punctuation_prediction=False,
              enable_inverse_text_normalization=False,
              timeout=10, ping_interval=8, ping_timeout=None, ex: dict = None):
        """Connect and send StartTranscription; block until on_start has run.

        Returns True when started, False when the session failed (on_error and on_close have run, or a
        session of this object is already active). Raises ConnectionTimeout or StartTimeoutException
        after `timeout` seconds, with the connection closed.
        """
        if ch != 1:
            raise ValueError('not support channel: {}'.format(ch))
        if aformat not in protocol.TRANSCRIBER_FORMATS:
            raise ValueError('format {} not support'.format(aformat))
        payload = protocol.start_payload(aformat, sample_rate, enable_intermediate_result,
                                         enable_punctuation_prediction,
                                         enable_inverse_text_normalization, ex)
        return self._start(payload, timeout, ping_interval, ping_timeout)

    def stop(self, timeout=10):
        """Send StopTranscription and block until on_completed and on_close have run.

        Returns True on TranscriptionCompleted, False if the session was not started or failed. Raises
        StopTimeoutException after `timeout` seconds, with the connection closed. From inside a
        callback it sends the command and returns True at once.
        """
        return self._stop(timeout)

    def ctrl(self, **kwargs):
        """Send ControlTranscriber with `kwargs` as the payload, verbatim; no reply is awaited."""
        if not kwargs:
            raise InvalidParameter('Empty kwargs not allowed!')
        with self._lock:
            session = self._session
        if session is None:
            return None
        if session.state.phase != protocol.RUNNING:
            _log.debug('not start yet...')
            return None
        text = protocol.control_command(self._service, session.task_id, self._appkey, kwargs)
        _log.debug('send: %s', text)
        session.send(text, binary=False)
        return None

    def send_audio(self, pcm_data):
        """Send one binary frame of audio. Returns False (data dropped) when not started, or when the
        connection broke (on_error and on_close then report it); True otherwise."""
        session = self._running_session()
        if session is None:
            return False
        return session.send(pcm_data, binary=True, report_loss=True)
