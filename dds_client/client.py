"""``DDSClient``, ``Session`` and ``AudioStream``: the public face (reference 3.1-3.3, 3.9)."""

import functools
import logging
import os
import struct
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from . import protocol as P
from .auth import ApiKeyAuth, DeviceAuth
from .errors import (CallbackError, ConnectionClosedError, DDSError, InvalidStateError,
                     ProtocolError)
from .request import Request
from .transport import Transport
from .urls import AND_HOME_URL, base_query_keys, build_url, check_base, dui_url, redact_url

log = logging.getLogger("dds_client")

class _ClientDefault:
    """Marks an ``ai_type`` left to the client's default (``None`` means "omit aiType")."""

    def __repr__(self):
        return "<client default>"


_MISSING = _ClientDefault()
_EXTENSIONS = {".wav": "wav", ".pcm": "wav", ".mp3": "mp3", ".ogg": "ogg", ".opus": "opus",
               ".amr": "amr", ".flv": "flv"}


def _positive_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("%s must be a positive number" % name)
    return value


def wav_format(data):
    """(sample_rate, channel, sample_bytes) from a RIFF/WAVE header, or None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt " and pos + 24 <= len(data):
            _tag, channels, rate = struct.unpack("<HHI", data[pos + 8:pos + 16])
            bits = struct.unpack("<H", data[pos + 22:pos + 24])[0]
            return rate, channels, max(1, bits // 8)
        pos += 8 + size + (size & 1)
    return None


class Session:
    """A dialogue session: carries ``sessionId`` forward and drops it when the dialogue ends."""

    def __init__(self, client, session_id=None):
        if session_id is not None:
            P.check_non_empty(session_id, "session_id must be a non-empty string")
        self._client = client
        self.session_id = session_id

    def __repr__(self):
        return "<Session %s>" % (self.session_id,)

    def reset(self):
        self.session_id = None

    def _sid(self, session_id, new_session):
        P.check_session_args(session_id, new_session)
        if session_id is not None:
            return session_id
        return None if new_session else _MISSING

    def _adopt(self, message):
        update = P.session_update(message)
        if update is not None:
            self.session_id = update[1]

    # ------------------------------------------------------------ requests (3.3)

    def _prepare(self, ai_type, session_id, new_session, record_id):
        """Client, aiType, sessionId and recordId of one request, each checked."""
        c = self._client
        return c, c._ai(ai_type), self._sid(session_id, new_session), P.check_record_id(record_id)

    def send_text(self, text, *, nlu_params=None, context=None, ai_type=_MISSING,
                  session_id=None, new_session=False, record_id=None, extra=None):
        """Publish ``nlu.input.text`` with ``refText``; returns a Request (value: DialogResult)."""
        P.check_non_empty(text, "text must be a non-empty string")
        P.check_optional_dict(nlu_params, "nlu_params")
        P.check_optional_dict(context, "context")
        c, ai, sid, rid = self._prepare(ai_type, session_id, new_session, record_id)

        def build(sent_sid):
            return P.text_request(rid, text, ai_type=ai, session_id=sent_sid,
                                  nlu_params=nlu_params, context=context, extra=extra)
        return c._request(P.TOPIC_TEXT, rid, ai, self, sid, build)

    sendText = send_text

    def start_audio(self, audio_type="wav", sample_rate=16000, channel=1, sample_bytes=2, *,
                    wakeup_word=None, real_back=None, enable_vad=None, enable_punctuation=None,
                    enable_tone=None, enable_confidence=None, enable_number_convert=None,
                    phrase_hints=None, vad_pause_time=None, asr_params=None, nlu_params=None,
                    context=None, ai_type=_MISSING, session_id=None, new_session=False,
                    record_id=None, extra=None):
        """Publish ``recorder.stream.start`` and return an open AudioStream."""
        P.check_audio_format(audio_type, sample_rate, channel, sample_bytes)
        asr = P.build_asr_params(dict(
            real_back=real_back, enable_vad=enable_vad, enable_punctuation=enable_punctuation,
            enable_tone=enable_tone, enable_confidence=enable_confidence,
            enable_number_convert=enable_number_convert, phrase_hints=phrase_hints,
            vad_pause_time=vad_pause_time), asr_params)
        if wakeup_word is not None:
            P.check_non_empty(wakeup_word, "wakeup_word must be a non-empty string")
        P.check_optional_dict(nlu_params, "nlu_params")
        P.check_optional_dict(context, "context")
        c, ai, sid, rid = self._prepare(ai_type, session_id, new_session, record_id)

        def build(sent_sid):
            return P.audio_request(rid, audio_type, sample_rate, channel, sample_bytes,
                                   ai_type=ai, session_id=sent_sid, wakeup_word=wakeup_word,
                                   asr_params=asr, nlu_params=nlu_params, context=context,
                                   extra=extra)
        return c._request(P.TOPIC_AUDIO, rid, ai, self, sid, build, audio=True)

    def send_audio_file(self, source, audio_type=None, sample_rate=None, channel=None,
                        sample_bytes=None, *, chunk_size=None, realtime=False,
                        frame_interval=None, **kwargs):
        """Send a whole file (verbatim, header included) as one audio turn; returns its Request."""
        c = self._client
        if frame_interval is not None:
            if not realtime:
                raise ValueError("frame_interval needs realtime=True")
            _positive_number(frame_interval, "frame_interval")
        if chunk_size is not None:
            P.check_positive_int(chunk_size, "chunk_size")
        data, name = _read_source(source)
        if audio_type is None:
            audio_type = _infer_type(data, name)
        header = wav_format(data[:65536]) if audio_type == "wav" else None
        values = {"sample_rate": sample_rate, "channel": channel, "sample_bytes": sample_bytes}
        if header is not None:
            for (key, given), found in zip(list(values.items()), header):
                if given is None:
                    values[key] = found
                elif given != found:
                    raise ValueError("%s=%s does not match the WAV header (%s)"
                                     % (key, given, found))
        defaults = {"sample_rate": 16000, "channel": 1, "sample_bytes": 2}
        for key in values:
            if values[key] is None:
                values[key] = defaults[key]
        if chunk_size is None:
            chunk_size = 3200 if audio_type == "wav" else 400
        interval = None
        if realtime:
            if audio_type == "wav":
                interval = chunk_size / float(values["sample_rate"] * values["channel"]
                                              * values["sample_bytes"])
            else:
                interval = frame_interval or 0.1
        if c._in_ws_thread():
            raise InvalidStateError("send_audio_file() cannot block on the websocket thread")
        stream = self.start_audio(audio_type, values["sample_rate"], values["channel"],
                                  values["sample_bytes"], **kwargs)
        request = stream.request
        finalized = request._finalized
        view = memoryview(data)
        start = time.monotonic()
        try:
            for n, pos in enumerate(range(0, len(data), chunk_size)):
                if finalized.is_set():
                    break
                if interval is not None and n:
                    delay = start + n * interval - time.monotonic()
                    # Waiting on the finalized event: a cloud-VAD final stops the pacing at once.
                    if delay > 0 and finalized.wait(delay):
                        break
                stream.write(view[pos:pos + chunk_size])
        except ConnectionClosedError:
            pass  # the request has failed with the same error; result() reports it
        finally:
            stream.end()
        return request

    def trigger_intent(self, skill=None, task=None, intent=None, slots=None, *, skill_id=None,
                       input=None, ai_type=_MISSING, session_id=None, new_session=False,
                       record_id=None, extra=None):
        """Publish ``dm.input.intent`` (skill or skillId, task, intent, slots)."""
        if not intent:
            raise ValueError("intent is required")
        if not task:
            raise ValueError("task is required")
        if not skill and not skill_id:
            raise ValueError("skill or skill_id is required")
        slots = P.normalize_slots(slots)
        if input is not None and not isinstance(input, str):
            raise TypeError("input must be a str")
        c, ai, sid, rid = self._prepare(ai_type, session_id, new_session, record_id)

        def build(sent_sid):
            return P.intent_request(rid, skill=skill, skill_id=skill_id, task=task,
                                    intent=intent, slots=slots, input=input, ai_type=ai,
                                    session_id=sent_sid, extra=extra)
        return c._request(P.TOPIC_INTENT, rid, ai, self, sid, build)

    triggerIntent = trigger_intent

    def send_data(self, data, *, native_api=None, ai_type=_MISSING, session_id=None,
                  new_session=False, record_id=None, extra=None):
        """Publish ``dm.input.data`` (custom data or a native API reply)."""
        return self._data(data, native_api, False, ai_type, session_id, new_session, record_id,
                          extra)

    def feedback_native_api_result(self, native_api, widget, *, ai_type=_MISSING,
                                   session_id=None, new_session=False, record_id=None,
                                   extra=None):
        """Answer a native API call (``dm.api``) with a DUI widget."""
        return self._data(widget, native_api, True, ai_type, session_id, new_session, record_id,
                          extra)

    feedbackNativeApiResult = feedback_native_api_result

    def _data(self, data, native_api, require_widget, ai_type, session_id, new_session,
              record_id, extra):
        if native_api is not None or require_widget:
            P.check_non_empty(native_api, "native_api must be a non-empty string")
        P.check_widget(data, require_widget)
        c, ai, sid, rid = self._prepare(ai_type, session_id, new_session, record_id)

        def build(sent_sid):
            return P.data_request(rid, data, native_api=native_api, ai_type=ai,
                                  session_id=sent_sid, extra=extra)
        return c._request(P.TOPIC_DATA, rid, ai, self, sid, build)

    def sync_context(self, skill_id, *, task=None, intent=None, slots=None, player_state=None,
                     dispatch_event=None, session_id=None):
        """Publish ``dm.context.sync`` (no reply); uses the session's id, never changes it."""
        P.check_non_empty(skill_id, "skill_id is required")
        if player_state is not None and dispatch_event is not None:
            raise ValueError("give player_state or dispatch_event, not both")
        if player_state is not None:
            dispatch_event = {"playerState": player_state}
        P.check_optional_dict(dispatch_event, "dispatch_event")
        if session_id is not None:
            P.check_non_empty(session_id, "session_id must be a non-empty string")
        c = self._client
        c._ensure_connected()
        message = P.context_sync_request(
            skill_id, session_id=session_id if session_id is not None else self.session_id,
            task=task, intent=intent, slots=slots, dispatch_event=dispatch_event)
        c._transport.send_text(P.dumps(message))


def _read_source(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read(), os.fspath(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("source must be opened in binary mode")
        name = getattr(source, "name", None)
        return bytes(data), name if isinstance(name, str) else None
    raise TypeError("source must be a path, a binary file object or bytes")


def _infer_type(data, name):
    if name:
        ext = os.path.splitext(name)[1].lower()
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
    if wav_format(data[:65536]) is not None:
        return "wav"
    raise ValueError("cannot infer audio_type from '%s'; pass audio_type=" % (name or "<bytes>"))


class AudioStream:
    """An open audio turn: ``write()`` one binary frame per call, ``end()`` sends the empty frame."""

    def __init__(self, client, request):
        self._client = client
        self.request = request
        self.record_id = request.record_id
        self._ended = False
        self._lock = threading.Lock()

    def __repr__(self):
        return "<AudioStream recordId=%s%s>" % (self.record_id, " ended" if self._ended else "")

    @property
    def finalized(self):
        return self.request._finalized.is_set()

    def write(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("audio data must be bytes, bytearray or memoryview")
        if self._ended:
            raise InvalidStateError("audio stream already ended")
        transport = self.request._transport    # its own connection, never a later one
        if transport is None or not transport.connected:
            raise ConnectionClosedError("connection is closed")
        if not len(data) or self.request._finalized.is_set():
            return None  # b"" would end the audio; after the final the service ignores audio
        transport.send_binary(data)
        return None

    def end(self):
        with self._lock:
            first = not self._ended
            self._ended = True
        if first:
            self._client._end_audio(self)
        return self.request

    def result(self, timeout=None):
        self.end()
        return self.request.result(timeout)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # Cancelled before the end frame leaves, so the turn's results cannot race it.
            self.request.cancel()
        self.end()
        return False


def _on_default_session(name):
    """A client method that runs the Session method of that name on ``default_session``."""
    method = getattr(Session, name)

    @functools.wraps(method)
    def delegate(self, *args, **kwargs):
        return method(self.default_session, *args, **kwargs)
    return delegate


class DDSClient:
    """Threaded, callback-based client of the DDS dialogue gateway (one WebSocket).

    Auth: ``product_id`` plus ``apikey``, or ``device_name`` + ``device_secret`` (a fresh
    nonce/timestamp/sig per connect), or ``auth=ApiKeyAuth(...)/DeviceAuth(...)``. ``url`` is the
    and-home gateway by default (``for_dui()`` for the DUI cloud); ``service_type``,
    ``full_duplex``, ``product_version``, ``user_id`` and ``extra_query`` add query keys.
    ``sslopt=None`` verifies certificates. ``timeout`` bounds ``result()`` (10 s),
    ``connect_timeout`` the handshake (10 s); pings every ``ping_interval`` s (``None``: off).
    ``ai_type`` is the default ``aiType`` (``None``: omitted, dialogue result).

    Callbacks (all on the ``dds-client-ws`` thread, also assignable as attributes):
    ``on_open()``, ``on_asr_partial(AsrResult)``, ``on_asr_final(AsrResult)``,
    ``on_nlu(NluResult)``, ``on_dialog(DialogResult)``, ``on_settings(SettingsAck)``,
    ``on_audio(bytes)``, ``on_message(dict)``, ``on_error(DDSError)``, ``on_close(code, reason)``
    (exactly once per connection, last).
    """

    def __init__(self, product_id=None, apikey=None, *, device_name=None, device_secret=None,
                 auth=None, url=AND_HOME_URL, service_type=None, full_duplex=False,
                 product_version=None, user_id=None, extra_query=None, header=None, sslopt=None,
                 http_proxy_host=None, http_proxy_port=None, proxy_type=None,
                 timeout=10.0, connect_timeout=10.0, ping_interval=20.0, ping_timeout=10.0,
                 ai_type=None, on_open=None, on_asr_partial=None, on_asr_final=None,
                 on_nlu=None, on_dialog=None, on_settings=None, on_audio=None, on_message=None,
                 on_error=None, on_close=None):
        check_base(url)
        in_url = set(base_query_keys(url))
        if product_id is None and "productId" not in in_url:
            raise ValueError("product_id is required")
        device = device_name is not None or device_secret is not None
        if apikey is not None and device:
            raise ValueError("give either apikey or device_name/device_secret, not both")
        if auth is not None and (apikey is not None or device):
            raise ValueError("give either apikey or device_name/device_secret, not both")
        if device and (device_name is None or device_secret is None):
            raise ValueError("device_name and device_secret must be given together")
        if apikey is not None:
            auth = ApiKeyAuth(apikey)
        elif device:
            auth = DeviceAuth(device_name, device_secret)
        elif auth is None and not ({"apikey", "apiKey", "sig"} & in_url):
            raise ValueError("apikey or device_name/device_secret is required")
        if auth is not None and not hasattr(auth, "query"):
            raise TypeError("auth must be an ApiKeyAuth or DeviceAuth")
        self.timeout = _positive_number(timeout, "timeout")
        self.connect_timeout = _positive_number(connect_timeout, "connect_timeout")
        if ping_interval is not None:
            _positive_number(ping_interval, "ping_interval")
            if ping_timeout is not None:
                _positive_number(ping_timeout, "ping_timeout")
                if ping_timeout >= ping_interval:
                    raise ValueError("ping_timeout must be smaller than ping_interval")
        self._ping = (ping_interval, ping_timeout or ping_interval)
        self.ai_type = P.check_ai_type(ai_type)
        if header is not None and not isinstance(header, (list, dict)):
            raise TypeError("header must be a list of 'Name: value' strings or a dict")
        self._product_id = str(product_id) if product_id is not None else dict(
            parse_qsl(urlsplit(url).query, keep_blank_values=True)).get("productId")
        self._url_args = dict(base=url, product_id=None if product_id is None else str(product_id),
                              auth=auth, service_type=service_type, full_duplex=full_duplex,
                              product_version=product_version, user_id=user_id,
                              extra_query=extra_query)
        self._redacted_url = redact_url(build_url(**self._url_args))  # checks duplicate keys
        self._header = header
        self._sslopt = sslopt
        proxy = {}
        for key, value in (("http_proxy_host", http_proxy_host),
                           ("http_proxy_port", http_proxy_port), ("proxy_type", proxy_type)):
            if value is not None:
                proxy[key] = value
        self._proxy = proxy
        self.on_open = on_open
        self.on_asr_partial = on_asr_partial
        self.on_asr_final = on_asr_final
        self.on_nlu = on_nlu
        self.on_dialog = on_dialog
        self.on_settings = on_settings
        self.on_audio = on_audio
        self.on_message = on_message
        self.on_error = on_error
        self.on_close = on_close
        self._lock = threading.RLock()
        self._connect_lock = threading.Lock()
        self._order_lock = threading.Lock()
        self._correlator = P.Correlator()
        self._transport = None
        self._audio = None            # the AudioStream currently streaming
        self._observers = []          # (pattern, observer) in subscription order
        self.default_session = Session(self)

    @classmethod
    def for_dui(cls, product_id, apikey=None, *, branch="prod", version="v2", host="dds.dui.ai",
                secure=True, **kwargs):
        """A client for the DUI cloud (``wss://dds.dui.ai/dds/v2/<branch>?serviceType=websocket``)."""
        kwargs.setdefault("service_type", "websocket")
        return cls(product_id, apikey, url=dui_url(branch, version, host, secure), **kwargs)

    def __repr__(self):
        return "<DDSClient %s%s>" % (self._redacted_url, " connected" if self.connected else "")

    # ------------------------------------------------------------ properties

    @property
    def url(self):
        return self._redacted_url

    @property
    def product_id(self):
        return self._product_id

    @property
    def connected(self):
        t = self._transport
        return t is not None and t.connected

    @property
    def session_id(self):
        return self.default_session.session_id

    @session_id.setter
    def session_id(self, value):
        if value is not None:
            P.check_non_empty(value, "session_id must be a non-empty string")
        self.default_session.session_id = value

    @property
    def pending(self):
        return len(self._correlator.pending)

    # ------------------------------------------------------------ connection

    def _in_ws_thread(self):
        t = self._transport
        return t is not None and t.in_reader_thread()

    def connect(self, timeout=None):
        """Open the connection; blocks until the handshake completes (bounded)."""
        timeout = self.connect_timeout if timeout is None else _positive_number(timeout,
                                                                                  "timeout")
        if self.connected:
            return self
        if self._in_ws_thread():
            raise InvalidStateError("connect() cannot block on the websocket thread")
        with self._connect_lock:
            if self.connected:
                return self
            url = build_url(**self._url_args)
            self._redacted_url = redact_url(url)
            ping_interval, ping_timeout = self._ping
            transport = Transport(url, self._redacted_url, header=self._header,
                                  sslopt=self._sslopt, proxy=self._proxy,
                                  ping_interval=ping_interval, ping_timeout=ping_timeout,
                                  on_open=self._handle_open, on_text=self._handle_text,
                                  on_binary=self._handle_binary, on_closed=None)
            transport._on_closed = lambda code, reason, lost: self._handle_closed(
                transport, code, reason, lost)
            self._transport = transport
            try:
                transport.open(timeout)
            except DDSError:
                with self._lock:
                    if self._transport is transport:
                        self._transport = None   # a failed connect leaves nothing behind
                raise
        return self

    def close(self, timeout=5.0):
        """Close the connection (1000), bounded; idempotent; on_close fires once."""
        _positive_number(timeout, "timeout")
        t = self._transport
        if t is not None:
            t.close(timeout)

    def __enter__(self):
        return self.connect()

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def _ensure_connected(self):
        t = self._transport
        if t is None or t.opening:
            self.connect()   # another thread's connect in progress: wait for it (bounded)
            t = self._transport
        if t is None or not t.connected:
            raise ConnectionClosedError("connection is closed")
        return t

    # ------------------------------------------------------------ sessions

    def session(self, session_id=None):
        return Session(self, session_id)

    def reset_session(self):
        self.default_session.reset()

    send_text = _on_default_session("send_text")
    start_audio = _on_default_session("start_audio")
    send_audio_file = _on_default_session("send_audio_file")
    trigger_intent = _on_default_session("trigger_intent")
    feedback_native_api_result = _on_default_session("feedback_native_api_result")
    send_data = _on_default_session("send_data")
    sync_context = _on_default_session("sync_context")

    sendText = send_text
    triggerIntent = trigger_intent
    feedbackNativeApiResult = feedback_native_api_result

    def update_system_settings(self, settings, option="set", *, record_id=None):
        """Publish ``system.settings``; completes on the acknowledgement (SettingsAck)."""
        items = P.normalize_settings(settings)
        P.check_option(option)
        rid = P.check_record_id(record_id)
        return self._request(P.TOPIC_SYSTEM_SETTINGS, rid, None, None, None,
                             lambda _sid: P.settings_request(rid, items, option))

    def update_skill_settings(self, skill_id, settings, option="set", *, record_id=None):
        """Publish ``skill.settings`` for one skill; completes on the acknowledgement."""
        P.check_non_empty(skill_id, "skill_id is required")
        items = P.normalize_settings(settings)
        P.check_option(option)
        rid = P.check_record_id(record_id)
        return self._request(P.TOPIC_SKILL_SETTINGS, rid, None, None, None,
                             lambda _sid: P.settings_request(rid, items, option, skill_id))

    # ------------------------------------------------------------ observers (3.9.2)

    def subscribe(self, topics, observer):
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise ValueError("topics must be a non-empty str or an iterable of non-empty str")
        if not callable(observer):
            raise TypeError("observer must be callable")
        with self._lock:
            self._observers = self._observers + [(t, observer) for t in topics]

    def unsubscribe(self, observer):
        with self._lock:
            self._observers = [(t, o) for t, o in self._observers if o is not observer]

    unSubscribe = unsubscribe

    def _observers_for(self, topic):
        found = []
        for pattern, observer in self._observers:
            if (pattern == topic or pattern == "*"
                    or (pattern.endswith("*") and topic.startswith(pattern[:-1]))):
                if observer not in found:
                    found.append(observer)
        return found

    def _notify(self, topic, data):
        for observer in self._observers_for(topic):
            try:
                observer(topic, data)
            except Exception as exc:
                self._callback_failed("observer(%s)" % topic, exc)

    # ------------------------------------------------------------ sending

    def _ai(self, ai_type):
        return self.ai_type if ai_type is _MISSING else P.check_ai_type(ai_type)

    def _request(self, topic, record_id, ai_type, session, sid, build, audio=False):
        if record_id in self._correlator.pending:
            raise ValueError("record_id %s is already in use by a pending request" % record_id)
        build(None)  # argument errors (e.g. extra) before any network I/O
        transport = self._ensure_connected()
        # The order lock keeps frames in registration order; the dispatch lock is held only
        # briefly so that a send blocked on a full socket can never stall the reader.
        with self._order_lock:
            with self._lock:
                if audio and self._audio is not None:
                    raise InvalidStateError("an audio request is already streaming on this "
                                            "connection (recordId %s)" % self._audio.record_id)
                sent_sid = (session.session_id if sid is _MISSING else sid) if session else None
                request = Request(self, record_id, topic, ai_type, session, sent_sid)
                request._transport = transport
                self._correlator.add(record_id, request)
                stream = None
                if audio:
                    stream = self._audio = AudioStream(self, request)
            try:
                transport.send_text(P.dumps(build(sent_sid)))
            except Exception:
                with self._lock:
                    self._correlator.remove(record_id)
                    if audio and self._audio is stream:
                        self._audio = None
                raise
        return stream if audio else request

    def _end_audio(self, stream):
        with self._lock:
            if self._audio is stream:
                self._audio = None
        t = stream.request._transport
        if t is not None and t.connected:
            try:
                t.send_binary(b"")
            except ConnectionClosedError:
                pass  # the request fails with the connection's error

    def _take_pending(self, transport, closed=True):
        """Remove and return the pending requests sent on ``transport`` (only that connection:
        connect() may already have opened the next one); a closed one also frees its audio."""
        with self._lock:
            pending = [r for r in self._correlator.pending.values() if r._transport is transport]
            for request in pending:
                self._correlator.remove(request.record_id)
            if closed and self._audio is not None and \
                    self._audio.request._transport is transport:
                self._audio = None
        return pending

    def _forget(self, request, cancelled=False):
        with self._lock:
            if self._correlator.pending.get(request.record_id) is request:
                if cancelled:
                    self._correlator.cancel(request.record_id)
                else:
                    self._correlator.remove(request.record_id)

    # ------------------------------------------------------------ dispatch (3.7)

    def _call(self, name, fn, *args):
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            self._callback_failed(name, exc)

    def _callback_failed(self, name, exc):
        """Log a raising user callback and report it: to on_error / sys.client.error as a
        CallbackError, or to threading.excepthook when nobody listens (never silent)."""
        log.exception("callback %s raised", name)
        listening = self.on_error is not None or self._observers_for("sys.client.error")
        if name == "on_error" or name == "observer(sys.client.error)" or not listening:
            threading.excepthook(threading.ExceptHookArgs(
                (type(exc), exc, exc.__traceback__, threading.current_thread())))
        else:
            self._report_error(CallbackError(name, exc))

    def _report_error(self, error):
        self._call("on_error", self.on_error, error)
        self._notify("sys.client.error", error)

    def _handle_open(self):
        self._call("on_open", self.on_open)

    def _handle_binary(self, data):
        self._call("on_audio", self.on_audio, data)

    def _handle_text(self, data):
        try:
            message = P.parse_message(data)
        except ProtocolError as error:
            self._report_error(error)
            for request in self._take_pending(self._transport, closed=False):
                request._settle("done", exc=error)   # the stream is out of step
            return
        cls = P.Classified(message)
        with self._lock:
            request, cancelled = self._correlator.match(message.get("recordId"))
        if cancelled:
            self._call("on_message", self.on_message, message)
            return
        topic = request.topic if request is not None else None
        results = P.build_results(message, cls, topic, request.asr if request else None)
        outcome = None
        if request is not None:
            request.messages.append(message)
            if "partial" in results:
                request.partials.append(results["partial"])
            if "final" in results:
                request.asr = results["final"]
            if "nlu" in results:
                request.nlu = results["nlu"]
            if "dialog" in results:
                request.dialog = results["dialog"]
                if request.session is not None:
                    request.session._adopt(message)   # before any callback (rule 3)
            if "ack" in results:
                request.ack = results["ack"]
            outcome = P.completion(topic, request.ai_type, cls)
            if cls.final or cls.error is not None:
                request._finalized.set()
        self._call("on_message", self.on_message, message)
        partial, final = results.get("partial"), results.get("final")
        nlu, dialog, ack = results.get("nlu"), results.get("dialog"), results.get("ack")
        if partial is not None:
            self._call("on_asr_partial", self.on_asr_partial, partial)
        if final is not None:
            self._call("on_asr_final", self.on_asr_final, final)
        if nlu is not None:
            self._call("on_nlu", self.on_nlu, nlu)
        if dialog is not None:
            self._call("on_dialog", self.on_dialog, dialog)
        if ack is not None:
            self._call("on_settings", self.on_settings, ack)
        if cls.error is not None:
            self._call("on_error", self.on_error, cls.error)
        if self._observers:
            self._observe(partial, final, nlu, dialog, ack, cls.error)
        if outcome is not None:
            self._forget(request)
            if outcome == "value":
                request._settle("done", value=P.completion_value(topic, request.ai_type,
                                                                  message, results))
            else:
                request._settle("done", exc=cls.error)

    def _observe(self, partial, final, nlu, dialog, ack, error):
        if partial is not None:
            self._notify("asr.speech.text", partial)
        if final is not None:
            self._notify("asr.speech.result", final)
        for asr in (partial, final):
            if asr is not None:
                self._notify("context.input.text", asr)
        if nlu is not None:
            self._notify("nlu.output", nlu)
        if dialog is not None:
            self._notify("dm.output", dialog)
            if dialog.nlg:
                self._notify("context.output.text", dialog)
            if dialog.widget_type:
                self._notify("context.widget.%s" % dialog.widget_type, dialog)
            if dialog.command_api:
                self._notify("command://%s" % dialog.command_api, dialog)
            if dialog.data_from == "native":
                api = dialog.native_api or ""
                self._notify(api if api.startswith("native://") else "native://" + api, dialog)
            if dialog.should_end_session is True:
                self._notify("sys.dm.end", dialog)
        if ack is not None:
            self._notify("%s.response" % ack.request_topic, ack)
        if error is not None:
            self._notify("sys.client.error", error)

    def _handle_closed(self, transport, code, reason, lost):
        by_client = transport._closing
        pending = self._take_pending(transport)
        if by_client:
            error = ConnectionClosedError("connection closed by client", 1000, "")
            code, reason = 1000, ""
        elif lost:
            error = ConnectionClosedError("connection lost: %s" % lost, 1006, lost)
        else:
            error = ConnectionClosedError("connection closed by server (%s %s) before the "
                                          "result arrived" % (code, reason), code, reason)
        for request in pending:
            request._settle("done", exc=error)
        if not by_client and (pending or lost):
            self._report_error(error)
        self._call("on_close", self.on_close, code, reason)
