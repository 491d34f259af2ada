"""Typed results that keep the server's JSON dict as ``.raw`` (reference 3.8)."""

import re

from .errors import ServerError

__all__ = ["AsrResult", "NluResult", "DialogResult", "SettingsAck"]

_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_WS_TOUCHING_CJK = re.compile(r"(?<=[%s])\s+|\s+(?=[%s])" % (_CJK, _CJK))
_WS_RUN = re.compile(r"\s+")


def compact_text(text):
    """Drop whitespace next to CJK characters, collapse other runs to one space."""
    if not text:
        return text
    return _WS_RUN.sub(" ", _WS_TOUCHING_CJK.sub("", text)).strip()


def server_error_of(raw):
    """The ServerError a message carries (``error`` object or top-level ``errId``), else None."""
    err = raw.get("error")
    if isinstance(err, dict):
        return ServerError(err.get("errId"), err.get("errMsg"), raw.get("recordId"),
                           raw.get("sessionId"), raw)
    if "errId" in raw:
        return ServerError(raw.get("errId"), raw.get("errMsg"), raw.get("recordId"),
                           raw.get("sessionId"), raw)
    return None


def eof_of(raw):
    eof = raw.get("eof")
    if eof is True or eof == 1 or eof == "1":
        return 1
    return 0


class _Result:
    __slots__ = ("raw",)
    _repr_fields = ()

    def __setattr__(self, name, value):
        raise AttributeError("%s is immutable" % type(self).__name__)

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    def __repr__(self):
        parts = ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._repr_fields)
        return "%s(%s)" % (type(self).__name__, parts)


class AsrResult(_Result):
    """An ASR partial (``var``, ``eof`` 0) or final (``text``, ``pinyin``, ``eof`` 1)."""

    __slots__ = ("record_id", "session_id", "request_id", "topic", "eof", "is_final", "var",
                 "text", "text_compact", "pinyin", "confidence", "alignment", "error")
    _repr_fields = ("record_id", "is_final", "text")

    def __init__(self, raw, piece=False):
        self._set("raw", raw)
        self._set("record_id", raw.get("recordId"))
        self._set("session_id", raw.get("sessionId"))
        self._set("request_id", raw.get("requestId"))
        self._set("topic", raw.get("topic"))
        eof = eof_of(raw)
        self._set("eof", eof)
        self._set("is_final", eof == 1)
        self._set("var", raw.get("var"))
        text = raw.get("text") if (eof == 1 or piece) else raw.get("var")
        self._set("text", text)
        self._set("text_compact", compact_text(text) if isinstance(text, str) else text)
        self._set("pinyin", raw.get("pinyin"))
        conf = raw.get("conf")
        self._set("confidence", conf if conf is not None else raw.get("confidence"))
        self._set("alignment", raw.get("alignment"))
        self._set("error", server_error_of(raw))


class NluResult(_Result):
    """Semantics (``nlu``) of one input."""

    __slots__ = ("record_id", "session_id", "skill_id", "skill", "topic", "nlu", "input",
                 "semantics", "task", "intent", "slots", "error")
    _repr_fields = ("record_id", "task", "intent", "slots")

    def __init__(self, raw):
        self._set("raw", raw)
        self._set("record_id", raw.get("recordId"))
        self._set("session_id", raw.get("sessionId"))
        self._set("skill_id", raw.get("skillId"))
        self._set("skill", raw.get("skill"))
        self._set("topic", raw.get("topic"))
        nlu = raw.get("nlu") if isinstance(raw.get("nlu"), dict) else None
        self._set("nlu", nlu)
        nlu = nlu or {}
        self._set("input", nlu.get("input"))
        semantics = nlu.get("semantics")
        self._set("semantics", semantics)
        request = semantics.get("request") if isinstance(semantics, dict) else None
        request = request if isinstance(request, dict) else {}
        self._set("task", request.get("task"))
        intent = None
        slots = {}
        for slot in request.get("slots") or ():
            if not isinstance(slot, dict):
                continue
            name = slot.get("name")
            if name == "intent":
                if intent is None:
                    intent = slot.get("value")
            elif name is not None and name not in slots:
                slots[name] = slot.get("value")
        self._set("intent", intent)
        self._set("slots", slots)
        self._set("error", server_error_of(raw))


class DialogResult(_Result):
    """A dialogue result (``dm``): reply text, speak, widget, command, native call, end flag."""

    __slots__ = ("record_id", "session_id", "request_id", "skill_id", "skill", "topic",
                 "speak_url", "dm", "input", "intent_name", "intent_id", "task", "task_id", "nlg",
                 "status", "end_skill_dm", "run_sequence", "context", "data_from", "speak",
                 "speak_text", "widget", "widget_type", "command", "command_api",
                 "command_param", "should_end_session", "native_api", "native_param",
                 "discarded", "discard_type", "nlu", "asr", "error")
    _repr_fields = ("record_id", "session_id", "nlg", "should_end_session")

    def __init__(self, raw, asr=None):
        self._set("raw", raw)
        for attr, key in (("record_id", "recordId"), ("session_id", "sessionId"),
                          ("request_id", "requestId"), ("skill_id", "skillId"),
                          ("skill", "skill"), ("topic", "topic"), ("speak_url", "speakUrl")):
            self._set(attr, raw.get(key))
        dm = raw.get("dm") if isinstance(raw.get("dm"), dict) else {}
        self._set("dm", raw.get("dm") if isinstance(raw.get("dm"), dict) else None)
        for attr, key in (("input", "input"), ("intent_name", "intentName"),
                          ("intent_id", "intentId"), ("task", "task"), ("task_id", "taskId"),
                          ("nlg", "nlg"), ("status", "status"), ("end_skill_dm", "endSkillDm"),
                          ("run_sequence", "runSequence"), ("context", "context"),
                          ("data_from", "dataFrom"), ("speak", "speak"), ("widget", "widget"),
                          ("command", "command")):
            self._set(attr, dm.get(key))
        speak = dm.get("speak")
        speak_text = speak.get("text") if isinstance(speak, dict) else None
        self._set("speak_text", speak_text if speak_text is not None else dm.get("nlg"))
        widget = dm.get("widget")
        self._set("widget_type", widget.get("duiWidget") if isinstance(widget, dict) else None)
        command = dm.get("command")
        command = command if isinstance(command, dict) else {}
        self._set("command_api", command.get("api"))
        self._set("command_param", command.get("param"))
        end = dm.get("shouldEndSession")
        self._set("should_end_session", None if end is None else bool(end))
        native = dm.get("dataFrom") == "native"
        self._set("native_api", dm.get("api") if native else None)
        self._set("native_param", dm.get("param") if native else None)
        discarded = command.get("api") == "discardResponse"
        self._set("discarded", discarded)
        param = command.get("param")
        self._set("discard_type", param.get("type") if discarded and isinstance(param, dict)
                  else None)
        self._set("nlu", NluResult(raw) if isinstance(raw.get("nlu"), dict) else None)
        self._set("asr", asr)
        self._set("error", server_error_of(raw))


class SettingsAck(_Result):
    """Acknowledgement of a ``system.settings``/``skill.settings`` request."""

    __slots__ = ("record_id", "topic", "request_topic")
    _repr_fields = ("record_id", "topic", "request_topic")

    def __init__(self, raw, request_topic=None):
        self._set("raw", raw)
        self._set("record_id", raw.get("recordId"))
        self._set("topic", raw.get("topic"))
        self._set("request_topic", request_topic)
