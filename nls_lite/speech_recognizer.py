"""NlsSpeechRecognizer: one-sentence recognition (一句话识别), namespace SpeechRecognizer."""
import logging

from . import _protocol as protocol
from ._session import DEFAULT, SpeechClient
from .exception import InvalidParameter, NotStartException

__all__ = ['NlsSpeechRecognizer']

_log = logging.getLogger('nls')


class NlsSpeechRecognizer(SpeechClient):
    """Recognize one sentence of up to 60 s.

    Callbacks run on the session's own thread: on_start, on_result_changed, on_completed and on_error
    get (message_json_str, *callback_args); on_close gets (*callback_args) and fires once per session.
    """

    _service = protocol.RECOGNIZER

    def __init__(self, url=DEFAULT, token=None, appkey=None,
                 on_start=None, on_result_changed=None, on_completed=None,
                 on_error=None, on_close=None, callback_args=[]):
        super().__init__(url, token, appkey,
                         {'on_start': on_start, 'on_result_changed': on_result_changed,
                          'on_completed': on_completed, 'on_error': on_error, 'on_close': on_close},
                         callback_args)

    def start(self, aformat='pcm', sample_rate=16000, ch=1,
              enable_intermediate_result=False,
              enable_punctuation_prediction=False,
              enable_inverse_text_normalization=False,
              timeout=10, ping_interval=8, ping_timeout=None, ex: dict = None):
        """Connect and send StartRecognition; block until on_start has run.

        Returns True when started, False when the session failed (on_error and on_close have run, or a
        session of this object is already active). Raises ConnectionTimeout or StartTimeoutException
        after `timeout` seconds, with the connection closed.
        """
        if ch != 1:
            raise InvalidParameter(f'Not support channel {ch}')
        if aformat not in protocol.RECOGNIZER_FORMATS:
            raise InvalidParameter(f'Format {aformat} not support')
        payload = protocol.start_payload(aformat, sample_rate, enable_intermediate_result,
                                         enable_punctuation_prediction,
                                         enable_inverse_text_normalization, ex)
        return self._start(payload, timeout, ping_interval, ping_timeout)

    def stop(self, timeout=10):
        """Send StopRecognition and block until on_completed and on_close have run.

        Returns True on RecognitionCompleted, False if the session was not started or failed. Raises
        StopTimeoutException after `timeout` seconds, with the connection closed. From inside a
        callback it sends the command and returns True at once.
        """
        return self._stop(timeout)

    def send_audio(self, pcm_data):
        """Send one binary frame of audio (never re-chunked). Returns True."""
        if not pcm_data:
            raise InvalidParameter('data empty!')
        session = self._running_session()
        if session is None:
            raise NotStartException('Need start before send!')
        _log.debug('send audio: %d bytes', len(pcm_data))
        return session.send(pcm_data, binary=True)
