"""Pure protocol core: builds every client message, parses and classifies server messages,
correlates them to requests and decides completion. No socket, no thread, no clock."""

import json
import uuid

from .errors import ProtocolError
from .results import AsrResult, DialogResult, NluResult, SettingsAck, eof_of, server_error_of

TOPIC_TEXT = "nlu.input.text"
TOPIC_AUDIO = "recorder.stream.start"
TOPIC_INTENT = "dm.input.intent"
TOPIC_DATA = "dm.input.data"
TOPIC_SYSTEM_SETTINGS = "system.settings"
TOPIC_SKILL_SETTINGS = "skill.settings"
TOPIC_CONTEXT_SYNC = "dm.context.sync"

SETTINGS_TOPICS = (TOPIC_SYSTEM_SETTINGS, TOPIC_SKILL_SETTINGS)
AI_TYPES = (None, "dm", "asr", "nlu", "tts")

# Allowed sample rates per audio type [doc seed 001]; None = any positive int.
SAMPLE_RATES = {
    "ogg": (8000, 16000), "wav": (8000, 16000), "mp3": (16000, 22050, 44100), "amr": (8000,),
    "flv": None, "opus": None, "ogg_opus": None,
}
AUDIO_TYPES = ("ogg", "wav", "mp3", "flv", "amr", "opus", "ogg_opus")
WIDGET_TYPES = ("text", "content", "list", "media", "web", "custom")

# Typed start_audio keywords -> asrParams wire keys, in wire order.
ASR_OPTIONS = (
    ("real_back", "realBack"), ("enable_vad", "enableVAD"),
    ("enable_punctuation", "enablePunctuation"), ("enable_tone", "enableTone"),
    ("enable_confidence", "enableConfidence"), ("enable_number_convert", "enableNumberConvert"),
    ("phrase_hints", "phraseHints"), ("vad_pause_time", "vadPauseTime"),
)


def dumps(message):
    """Serialise like the vendor's Python samples: json.dumps defaults (", ", ": ", ASCII)."""
    return json.dumps(message)


def new_record_id():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- argument checks

def check_ai_type(ai_type):
    if ai_type not in AI_TYPES:
        raise ValueError("ai_type must be one of 'dm', 'asr', 'nlu', 'tts' or None")
    return ai_type


def check_non_empty(value, message):
    if not isinstance(value, str) or not value:
        raise ValueError(message)
    return value


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("%s must be a positive int" % name)
    return value


def check_optional_dict(value, name):
    if value is not None and not isinstance(value, dict):
        raise TypeError("%s must be a dict" % name)
    return value


def check_session_args(session_id, new_session):
    if session_id is not None and new_session:
        raise ValueError("give session_id or new_session, not both")
    if session_id is not None:
        check_non_empty(session_id, "session_id must be a non-empty string")


def check_record_id(record_id):
    if record_id is None:
        return new_record_id()
    return check_non_empty(record_id, "record_id must be a non-empty string")


def check_audio_format(audio_type, sample_rate, channel, sample_bytes):
    if audio_type not in SAMPLE_RATES:
        raise ValueError("audio_type must be one of ogg, wav, mp3, flv, amr, opus, ogg_opus")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
        raise ValueError("sample_rate must be a positive int")
    allowed = SAMPLE_RATES[audio_type]
    if allowed is not None and sample_rate not in allowed:
        raise ValueError("sample_rate %d is not supported for audio_type '%s' (allowed: %s)"
                         % (sample_rate, audio_type, ", ".join(str(r) for r in allowed)))
    check_positive_int(channel, "channel")
    check_positive_int(sample_bytes, "sample_bytes")


def build_asr_params(options, asr_params):
    """asrParams from the typed keywords (wire order) then the raw dict; None when empty."""
    out = {}
    for py_name, wire in ASR_OPTIONS:
        value = options.get(py_name)
        if value is None:
            continue
        if py_name == "phrase_hints":
            if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
                raise TypeError("phrase_hints must be a list of dicts")
        elif py_name == "vad_pause_time":
            check_positive_int(value, "vad_pause_time")
        elif not isinstance(value, bool):
            raise TypeError("%s must be a bool" % py_name)
        out[wire] = value
    if asr_params is not None:
        if not isinstance(asr_params, dict):
            raise TypeError("asr_params must be a dict")
        for key, value in asr_params.items():
            if key in out:
                raise ValueError("asr option '%s' given twice" % key)
            out[key] = value
    return out or None


def normalize_slots(slots):
    if slots is None:
        return None
    if isinstance(slots, dict):
        return slots
    if isinstance(slots, (list, tuple)) and all(
            isinstance(s, dict) and "name" in s and "value" in s for s in slots):
        return list(slots)
    raise TypeError("slots must be a dict or a list of {'name', 'value'} dicts")


def normalize_settings(settings):
    if isinstance(settings, dict):
        items = [{"key": k, "value": v} for k, v in settings.items()]
    elif isinstance(settings, (list, tuple)):
        items = list(settings)
    else:
        raise TypeError("settings must be a dict or a list of {'key', 'value'} dicts")
    if not items:
        raise ValueError("settings must not be empty")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValueError("each setting needs a string 'key'")
    return items


def check_option(option):
    if option not in ("set", "delete"):
        raise ValueError("option must be 'set' or 'delete'")
    return option


def check_widget(widget, require_dui_widget):
    if not isinstance(widget, dict):
        raise ValueError("widget must be a dict with a 'duiWidget' key")
    if require_dui_widget and widget.get("duiWidget") not in WIDGET_TYPES:
        raise ValueError("widget must be a dict with a 'duiWidget' key")
    for key in ("topic", "recordId", "sessionId", "nativeApi", "aiType"):
        if key in widget:
            raise ValueError("widget must not contain '%s'" % key)
    return widget


def _add_extra(message, extra, reserved=("topic", "recordId", "sessionId", "aiType")):
    if extra is None:
        return message
    if not isinstance(extra, dict):
        raise TypeError("extra must be a dict")
    for key in extra:
        if key in message or key in reserved:
            raise ValueError("extra must not override '%s'" % key)
    message.update(extra)
    return message


def _put(message, *pairs):
    """Add each (key, value) whose value is not None, in the order given: the wire's key order."""
    for key, value in pairs:
        if value is not None:
            message[key] = value
    return message


def _head(ai_type, topic, record_id, session_id):
    message = _put({}, ("aiType", ai_type))
    message["topic"] = topic
    message["recordId"] = record_id
    return _put(message, ("sessionId", session_id))


# ---------------------------------------------------------------- client messages (4.6)

def text_request(record_id, text, *, ai_type=None, session_id=None, nlu_params=None,
                 context=None, extra=None):
    message = _head(ai_type, TOPIC_TEXT, record_id, session_id)
    message["refText"] = text
    _put(message, ("nluParams", nlu_params), ("context", context))
    return _add_extra(message, extra)


def audio_request(record_id, audio_type, sample_rate, channel, sample_bytes, *, ai_type=None,
                  session_id=None, wakeup_word=None, asr_params=None, nlu_params=None,
                  context=None, extra=None):
    message = _head(ai_type, TOPIC_AUDIO, record_id, session_id)
    message["audio"] = {"audioType": audio_type, "sampleRate": sample_rate, "channel": channel,
                        "sampleBytes": sample_bytes}
    _put(message, ("wakeupWord", wakeup_word), ("asrParams", asr_params), ("nluParams", nlu_params),
         ("context", context))
    return _add_extra(message, extra)


def intent_request(record_id, *, skill=None, skill_id=None, task, intent, slots=None, input=None,
                   ai_type=None, session_id=None, extra=None):
    message = _head(ai_type, TOPIC_INTENT, record_id, session_id)
    _put(message, ("skillId", skill_id), ("skill", skill))
    message["intent"] = intent
    message["task"] = task
    _put(message, ("slots", slots), ("input", input))
    return _add_extra(message, extra)


def data_request(record_id, data, *, native_api=None, ai_type=None, session_id=None, extra=None):
    message = _put(_head(ai_type, TOPIC_DATA, record_id, session_id), ("nativeApi", native_api))
    message.update(data)
    return _add_extra(message, extra)


def settings_request(record_id, settings, option="set", skill_id=None):
    if skill_id is None:
        return {"topic": TOPIC_SYSTEM_SETTINGS, "recordId": record_id, "option": option,
                "settings": settings}
    return {"topic": TOPIC_SKILL_SETTINGS, "recordId": record_id, "skillId": skill_id,
            "option": option, "settings": settings}


def context_sync_request(skill_id, *, session_id=None, task=None, intent=None, slots=None,
                         dispatch_event=None):
    message = _put({"topic": TOPIC_CONTEXT_SYNC}, ("sessionId", session_id))
    message["skillId"] = skill_id
    message["async"] = _put({}, ("task", task), ("intent", intent), ("slots", slots),
                            ("dispatchEvent", dispatch_event))
    return message


# ---------------------------------------------------------------- server messages (4.7)

def parse_message(data):
    """One server text frame (str or bytes) -> dict, or ProtocolError."""
    text = data
    try:
        if isinstance(data, (bytes, bytearray)):
            text = bytes(data).decode("utf-8")
        message = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        shown = text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")
        raise ProtocolError("malformed message from server: %s: %s"
                            % (type(exc).__name__ if isinstance(exc, UnicodeDecodeError)
                               else "invalid JSON", shown[:200]), shown)
    if not isinstance(message, dict):
        raise ProtocolError("malformed message from server: not a JSON object: %s"
                            % text[:200], text)
    return message


class Classified:
    """What one server message carries (3.6.1)."""

    __slots__ = ("partial", "final", "piece", "nlu", "dialog", "error", "settings_topic")

    def __init__(self, message):
        topic = message.get("topic")
        has_eof = "eof" in message
        eof = eof_of(message)
        self.final = has_eof and eof == 1
        self.piece = (not self.final and "text" in message and has_eof and not eof)
        self.partial = ("var" in message and not self.final) or self.piece
        self.nlu = isinstance(message.get("nlu"), dict) or topic == "nlu.output"
        self.dialog = isinstance(message.get("dm"), dict) or topic == "dm.output"
        self.error = server_error_of(message)
        self.settings_topic = (topic if isinstance(topic, str)
                               and topic.endswith(".settings.response") else None)


def completion(request_topic, ai_type, cls):
    """'value' when this belonging message completes the request, 'error' when it fails it."""
    if request_topic in SETTINGS_TOPICS:
        error_only = cls.error is not None and not (cls.dialog or cls.nlu or cls.final
                                                    or cls.settings_topic)
        return "error" if error_only else "value"
    if cls.dialog:
        return "value"
    if ai_type == "nlu" and cls.nlu:
        return "value"
    if ai_type == "asr" and cls.final:
        return "value"
    if cls.error is not None:
        return "error"
    return None


def completion_value(request_topic, ai_type, message, results):
    """The value a completed request returns, from the results built for the message."""
    if request_topic in SETTINGS_TOPICS:
        return results.get("ack") or SettingsAck(message, request_topic)
    if results.get("dialog") is not None:
        return results["dialog"]
    if ai_type == "nlu":
        return results.get("nlu")
    return results.get("final")


def session_update(message):
    """Session rule 3: ('end', None), ('set', id) or None for a dialogue message."""
    dm = message.get("dm")
    if isinstance(dm, dict) and dm.get("shouldEndSession") is True:
        return ("end", None)
    session_id = message.get("sessionId")
    if isinstance(session_id, str) and session_id:
        return ("set", session_id)
    return None


def build_results(message, cls, request_topic=None, asr=None):
    """Typed results of one message: keys partial, final, nlu, dialog, ack."""
    out = {}
    if cls.partial:
        out["partial"] = AsrResult(message, piece=cls.piece)
    if cls.final:
        out["final"] = AsrResult(message)
        asr = out["final"]
    if cls.nlu:
        out["nlu"] = NluResult(message)
    if cls.dialog:
        out["dialog"] = DialogResult(message, asr=asr)
    if request_topic in SETTINGS_TOPICS or (request_topic is None and cls.settings_topic):
        out["ack"] = SettingsAck(message, request_topic or cls.settings_topic[:-len(".response")])
    return out


class Correlator:
    """Pending requests by recordId; exact or prefix match, the longest id wins (3.6)."""

    def __init__(self, keep_cancelled=256):
        self.pending = {}
        self._cancelled = {}
        self._keep = keep_cancelled

    def add(self, record_id, item):
        if record_id in self.pending:
            raise ValueError("record_id %s is already in use by a pending request" % record_id)
        self.pending[record_id] = item

    def remove(self, record_id):
        return self.pending.pop(record_id, None)

    def cancel(self, record_id):
        self.pending.pop(record_id, None)
        self._cancelled[record_id] = True
        while len(self._cancelled) > self._keep:
            self._cancelled.pop(next(iter(self._cancelled)))

    @staticmethod
    def _longest(record_id, ids):
        best = None
        for rid in ids:
            if record_id.startswith(rid) and (best is None or len(rid) > len(best)):
                best = rid
        return best

    def match(self, record_id):
        """(item, cancelled): the pending item the id belongs to, or whether it was cancelled."""
        if isinstance(record_id, str) and record_id:
            item = self.pending.get(record_id)
            if item is not None:
                return item, False
            rid = self._longest(record_id, self.pending)
            if rid is not None:
                return self.pending[rid], False
            return None, record_id in self._cancelled or self._longest(
                record_id, self._cancelled) is not None
        if len(self.pending) == 1:
            return next(iter(self.pending.values())), False
        return None, False
