"""The emulator's websockets server: handshake/auth checks, one state machine per connection,
request handling, audio finalisation and fault injection (reference 5.2-5.9)."""

import asyncio
import hmac
from http import HTTPStatus
import json
import logging
import math
import re
import struct
import time
import uuid
from array import array
from urllib.parse import parse_qsl, urlsplit

from ..auth import device_signature
from .audio import AudioTurn, Transcript
from .dialogue import DialogueEngine
from ..results import compact_text

log = logging.getLogger("dds_client.emulator")

AUDIO_TYPES = {"ogg": (8000, 16000), "wav": (8000, 16000), "mp3": (16000, 22050, 44100),
               "amr": (8000,), "flv": None, "opus": None, "ogg_opus": None}
TOPICS = ("nlu.input.text", "recorder.stream.start", "dm.input.intent", "dm.input.data",
          "system.settings", "skill.settings", "dm.context.sync")
AI_TYPES = ("dm", "asr", "nlu", "tts")
_PATH_RE = re.compile(r"^/(?:dsg/v1|dds/v1|dds/v2|dds/v3)/[A-Za-z0-9_.-]+$")
_LONGTEXT_RE = re.compile(r"^/runtime/v1/longtext/([^/?]+)$")
SECRET_QUERY_KEYS = ("apikey", "apiKey", "sig")

# Fault name -> (declared parameters with their types and defaults, is a handshake fault).
_INT_OR_NONE = "int_or_none"
FAULTS = {
    "refuse": ({}, True),
    "reject_handshake": ({"status": (int, 401), "body": (str, None)}, True),
    "slow_handshake": ({"seconds": (float, 1.0)}, True),
    "never_answer": ({}, False),
    "delay": ({"seconds": (float, 1.0)}, False),
    "close_mid_stream": ({"after_frames": (int, 1), "code": (_INT_OR_NONE, None)}, False),
    "close_after_request": ({"code": (int, 1011), "reason": (str, "internal error")}, False),
    "malformed": ({"text": (str, None)}, False),
    "error": ({"errId": (str, "010400"), "errMsg": (str, "It's time to do qa.")}, False),
    "suffix_record_id": ({}, False),
    "binary_reply": ({"nbytes": (int, 3200)}, False),
}


def _convert(kind, value):
    if kind is _INT_OR_NONE:
        return None if value in (None, "None", "none", "") else int(value)
    if kind is float:
        return float(value)
    if kind is int:
        return int(value)
    return str(value)


def make_fault(name, params):
    """Validate and type a fault spec; returns a mutable dict with 'times' left."""
    if name not in FAULTS:
        raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(sorted(FAULTS))))
    declared, handshake = FAULTS[name]
    fault = {"name": name, "times": None if handshake else 1, "topic": None}
    for key, (kind, default) in declared.items():
        fault[key] = default
    for key, value in params.items():
        if key == "times":
            fault["times"] = None if value in (None, "None", "none") else int(value)
            if fault["times"] is not None and fault["times"] < 1:
                raise ValueError("fault %s: times must be an int >= 1 or None" % name)
        elif key == "topic" and not handshake:
            fault["topic"] = str(value)
        elif key in declared:
            try:
                fault[key] = _convert(declared[key][0], value)
            except (TypeError, ValueError):
                raise ValueError("fault %s: bad value for %s: %r" % (name, key, value))
        else:
            raise ValueError("fault %s has no parameter %r" % (name, key))
    return fault


def redact_query(query):
    return "&".join("%s=%s" % (k, "***" if k in SECRET_QUERY_KEYS else v)
                    for k, v in parse_qsl(query, keep_blank_values=True))


def dumps(message):
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def reply_audio(nlg):
    """16 kHz mono 16-bit WAV: a quiet 440 Hz tone, 100 ms per nlg character (max 10 s)."""
    n = min(len(nlg) * 1600, 160000)
    period = [int(1000 * math.sin(2 * math.pi * 440 * i / 16000.0)) for i in range(400)]
    samples = array("h", (period * (n // 400 + 1))[:n])
    data = samples.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


def _absent(value):
    return value is None or value == ""


class Turn:
    """One request being answered: ids, the reply recordId, the faults it carries."""

    __slots__ = ("record_id", "reply_id", "session_id", "session_given", "ai_type", "topic",
                 "request", "error", "delay", "binary", "close_mid", "audio", "frames",
                 "request_id")

    def __init__(self, request, topic, suffix):
        rid = request.get("recordId")
        self.record_id = str(rid) if not _absent(rid) else uuid.uuid4().hex
        self.reply_id = self.record_id + ":" + uuid.uuid4().hex if suffix else self.record_id
        sid = request.get("sessionId")
        self.session_given = not _absent(sid)
        self.session_id = sid if self.session_given else None
        self.ai_type = request.get("aiType")
        self.topic = topic
        self.request = request
        self.error = self.delay = self.binary = self.close_mid = None
        self.audio = None
        self.frames = 0
        self.request_id = uuid.uuid4().hex


class ConnectionHandler:
    """The per-connection state machine (IDLE / AUDIO / DRAINING)."""

    def __init__(self, server, ws, conn_id, v3):
        self.server = server
        self.ws = ws
        self.id = conn_id
        self.v3 = v3
        self.state = "IDLE"
        self.turn = None
        self.settings = {"system": {}, "skill": {}}
        self.binary_error_sent = False
        self.last_audio = None
        self.audio_opened = None    # asyncio.Event of the idle watchdog

    # ---------------------------------------------------------- sending

    async def send(self, message):
        text = dumps(message)
        self.server.record(self.id, "out", "text", text)
        await self.ws.send(text)

    async def send_burst(self, turn, messages):
        if turn is not None and turn.delay:
            await asyncio.sleep(turn.delay)
        for message in messages:
            await self.send(message)
            if turn is not None and turn.binary and "dm" in message:
                data = bytes(turn.binary)
                self.server.record(self.id, "out", "binary", data)
                await self.ws.send(data)

    def error_message(self, turn, err_id, err_msg):
        message = {}
        if turn is not None:
            message["recordId"] = turn.reply_id
            if turn.session_given:
                message["sessionId"] = turn.session_id
        message["error"] = {"errId": err_id, "errMsg": err_msg}
        return message

    def dialog_message(self, turn, reply, tts=False):
        message = {}
        if self.v3:
            message["topic"] = "dm.output"
        message["recordId"] = turn.reply_id
        message["sessionId"] = reply["sessionId"]
        message["requestId"] = turn.request_id
        if "skillId" in reply:
            message["skillId"] = reply["skillId"]
            message["skill"] = reply["skill"]
        nlg = reply["dm"].get("nlg")
        discard = reply["dm"].get("command", {}).get("api") == "discardResponse"
        if not discard and (tts or (nlg and self.server.speak_url)):
            message["speakUrl"] = self.server.speak_url_for(turn.record_id, nlg or "")
        if "nlu" in reply:
            message["nlu"] = reply["nlu"]
        message["dm"] = reply["dm"]
        return message

    def nlu_message(self, turn, session_id, skill, nlu):
        message = {}
        if self.v3:
            message["topic"] = "nlu.output"
        message.update(recordId=turn.reply_id, sessionId=session_id,
                       skillId=skill.get("skillId"), skill=skill.get("skill"), nlu=nlu)
        return message

    def final_message(self, turn, session_id, text, pinyin, extras):
        message = {"recordId": turn.reply_id, "sessionId": session_id,
                   "requestId": turn.request_id, "eof": 1, "text": text, "pinyin": pinyin}
        message.update(extras)
        return message

    # ---------------------------------------------------------- frames

    async def on_text(self, text):
        self.binary_error_sent = False
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self.send(self.error_message(None, "090008", "request is not a JSON object"))
            return
        self.server.record_request(self.id, request)
        topic = request.get("topic")
        turn = Turn(request, topic, self.server.record_id_suffix)
        if _absent(topic):
            await self.send(self.error_message(turn, "090001", "topic is required"))
            return
        if topic not in TOPICS:
            await self.send(self.error_message(turn, "090001", "unsupported topic: %s" % topic))
            return
        if _absent(turn.ai_type):
            turn.ai_type = None
        elif turn.ai_type not in AI_TYPES:
            await self.send(self.error_message(turn, "090002", "invalid parameter: unsupported "
                                               "aiType: %s" % turn.ai_type))
            return
        # Request faults, in a fixed order.
        take = self.server.take_fault
        if take("never_answer", topic):
            return
        fault = take("close_after_request", topic)
        if fault:
            await self.ws.close(fault["code"], fault["reason"])
            return
        fault = take("close_mid_stream", topic)
        if fault and topic != "recorder.stream.start":
            self.ws.transport.abort()
            return
        turn.close_mid = fault
        fault = take("malformed", topic)
        if fault:
            text = fault["text"] or '{"recordId": "%s", "dm": {' % turn.reply_id
            self.server.record(self.id, "out", "text", text)
            await self.ws.send(text)
            return
        if take("suffix_record_id", topic):
            turn.reply_id = turn.record_id + ":" + uuid.uuid4().hex
        fault = take("delay", topic)
        turn.delay = fault["seconds"] if fault else None
        fault = take("binary_reply", topic)
        turn.binary = fault["nbytes"] if fault else None
        fault = take("error", topic)
        turn.error = (fault["errId"], fault["errMsg"]) if fault else None
        if turn.error and topic != "recorder.stream.start":
            await self.send_burst(turn, [self.error_message(turn, *turn.error)])
            return
        await getattr(self, "topic_" + topic.replace(".", "_"))(turn)

    async def on_binary(self, data):
        if self.state == "IDLE":
            if data and not self.binary_error_sent:
                self.binary_error_sent = True
                await self.send(self.error_message(None, "090004",
                                                   "audio data without recorder.stream.start"))
            return
        if self.state == "DRAINING":
            if not data:
                self.state = "IDLE"
            return
        turn = self.turn
        if not data:
            events = turn.audio.finish()
            await self.send_partials(turn, events)
            await self.finalise(turn)
            self.state = "IDLE"
            return
        self.last_audio = time.monotonic()
        turn.frames += 1
        events = turn.audio.feed(data)
        if turn.close_mid and turn.frames >= turn.close_mid["after_frames"]:
            source = turn.audio.transcript or Transcript(self.server.transcript, None)
            tokens = source.tokens
            await self.send({"recordId": turn.reply_id, "sessionId": turn.session_id, "eof": 0,
                             "var": tokens[0] if tokens else ""})
            if turn.close_mid["code"] is None:
                self.ws.transport.abort()
            else:
                await self.ws.close(turn.close_mid["code"])
            return
        for event in events:
            if event[0] == "partial":
                await self.send_partials(turn, [event])
            elif event[0] == "error":
                self.state = "DRAINING"
                await self.send_burst(turn, [self.error_message(turn, event[1], event[2])])
                return
            elif event[0] == "end":
                self.state = "DRAINING"
                await self.finalise(turn)
                return

    async def send_partials(self, turn, events):
        messages = [{"recordId": turn.reply_id, "sessionId": turn.session_id, "eof": 0,
                     "var": e[1]} for e in events if e[0] == "partial"]
        if messages:
            await self.send_burst(turn, messages)

    async def audio_idle(self):
        """No audio for audio_idle_timeout while a request is open: 090007."""
        turn = self.turn
        self.state = "DRAINING"
        await self.send(self.error_message(turn, "090007", "no audio received for %d s"
                                           % self.server.audio_idle_timeout))

    # ---------------------------------------------------------- topics

    async def topic_nlu_input_text(self, turn):
        text = turn.request.get("refText")
        if _absent(text) or not isinstance(text, str):
            await self.send(self.error_message(turn, "090002",
                                               "invalid parameter: refText is required"))
            return
        await self.answer_text(turn, text)

    async def answer_text(self, turn, text, asr_flags=None):
        server = self.server
        if turn.ai_type == "asr":
            session_id = turn.session_id or uuid.uuid4().hex
            final_text, pinyin, extras = Transcript(text, asr_flags).final_fields()
            await self.send_burst(turn, [self.final_message(turn, session_id, final_text, pinyin,
                                                            extras)])
            return
        if turn.ai_type == "nlu":
            skill, nlu = server.engine.nlu_only(text)
            await self.send_burst(turn, [self.nlu_message(turn, turn.session_id
                                                          or uuid.uuid4().hex, skill, nlu)])
            return
        reply = server.engine.text_turn(turn.session_id, text, self.settings, time.monotonic())
        await self.send_burst(turn, [self.dialog_message(turn, reply, turn.ai_type == "tts")])

    async def topic_recorder_stream_start(self, turn):
        request = turn.request
        problem = self.check_audio(request)
        if problem is not None:
            if self.state == "AUDIO":
                await self.send(self.error_message(self.turn, "090005", "audio request "
                                                   "superseded by a new recorder.stream.start"))
            self.state = "DRAINING"
            await self.send(self.error_message(turn, *problem))
            return
        if self.state == "AUDIO":
            await self.send(self.error_message(self.turn, "090005", "audio request superseded "
                                               "by a new recorder.stream.start"))
        server = self.server
        turn.session_id = turn.session_id or uuid.uuid4().hex
        asr_params = request.get("asrParams") if isinstance(request.get("asrParams"), dict) \
            else {}
        turn.audio = AudioTurn(
            request["audio"], asr_params, server.next_transcript(), dict(server.fingerprints),
            server.transcript, fingerprint_bytes=server.fingerprint_bytes,
            vad_threshold=server.vad_threshold, vad_min_speech_ms=server.vad_min_speech_ms,
            ms_per_token=server.ms_per_token, max_audio_seconds=server.max_audio_seconds,
            max_audio_bytes=server.max_audio_bytes)
        self.turn = turn
        self.state = "AUDIO"
        self.last_audio = time.monotonic()
        if self.audio_opened is not None:
            self.audio_opened.set()

    @staticmethod
    def check_audio(request):
        audio = request.get("audio")
        if _absent(audio):
            return "090003", "unsupported audio format: audio is required"
        if not isinstance(audio, dict):
            return "090003", "unsupported audio format: audio must be an object"
        atype = audio.get("audioType")
        if atype not in AUDIO_TYPES:
            return "090003", "unsupported audio format: audioType %s" % (atype,)
        rate = audio.get("sampleRate")
        allowed = AUDIO_TYPES[atype]
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1 or (
                allowed is not None and rate not in allowed):
            return "090003", "unsupported audio format: sampleRate %s for %s" % (rate, atype)
        channel = audio.get("channel")
        if isinstance(channel, bool) or channel not in (1, 2):
            return "090003", "unsupported audio format: channel %s" % (channel,)
        sample_bytes = audio.get("sampleBytes")
        if isinstance(sample_bytes, bool) or not isinstance(sample_bytes, int) or (
                sample_bytes != 2 if atype == "wav" else sample_bytes < 1):
            return "090003", "unsupported audio format: sampleBytes %s" % (sample_bytes,)
        asr = request.get("asrParams")
        if not _absent(asr) and not isinstance(asr, dict):
            return "090002", "invalid parameter: asrParams must be an object"
        return None

    async def finalise(self, turn):
        """Final ASR then the result for the aiType (5.5.4)."""
        audio = turn.audio
        if turn.error:
            await self.send_burst(turn, [self.error_message(turn, *turn.error)])
            return
        text, pinyin, extras = audio.final_fields()
        declared = turn.request["audio"].get("sampleRate")
        if audio.mode == "pcm" and audio.rate != declared:
            log.info("recordId %s: the WAV header says %s Hz, the request %s Hz (header used)",
                     turn.record_id, audio.rate, declared)
        messages = [self.final_message(turn, turn.session_id, text, pinyin, extras)]
        engine = self.server.engine
        compact = compact_text(text) or ""
        if turn.ai_type == "asr":
            pass    # recognition only: never a dm
        elif turn.ai_type == "nlu":
            skill, nlu = engine.nlu_only(compact)
            messages.append(self.nlu_message(turn, turn.session_id, skill, nlu))
        elif not compact:
            reply = engine.discard(turn.session_id, time.monotonic())
            messages.append(self.dialog_message(turn, reply))
        else:
            reply = engine.text_turn(turn.session_id, compact, self.settings, time.monotonic())
            messages.append(self.dialog_message(turn, reply, turn.ai_type == "tts"))
        await self.send_burst(turn, messages)

    async def topic_dm_input_intent(self, turn):
        request = turn.request
        if _absent(request.get("intent")):
            await self.send(self.error_message(turn, "090009",
                                               "invalid parameter: intent is required"))
            return
        if _absent(request.get("skill")) and _absent(request.get("skillId")):
            await self.send(self.error_message(turn, "090009", "invalid parameter: skill or "
                                               "skillId is required"))
            return
        engine = self.server.engine
        if turn.ai_type == "nlu":
            skill, nlu = engine.intent_turn(None, request, self.settings, time.monotonic(),
                                            nlu_only=True)
            await self.send_burst(turn, [self.nlu_message(turn, turn.session_id
                                                          or uuid.uuid4().hex, skill, nlu)])
            return
        reply = engine.intent_turn(turn.session_id, request, self.settings, time.monotonic())
        await self.send_burst(turn, [self.dialog_message(turn, reply, turn.ai_type == "tts")])

    async def topic_dm_input_data(self, turn):
        reply = self.server.engine.data_turn(turn.session_id, turn.request, time.monotonic())
        await self.send_burst(turn, [self.dialog_message(turn, reply, turn.ai_type == "tts")])

    async def _settings(self, turn, store):
        request = turn.request
        settings = request.get("settings")
        if not isinstance(settings, list) or not all(
                isinstance(s, dict) and isinstance(s.get("key"), str) for s in settings):
            await self.send(self.error_message(turn, "090002", "invalid parameter: settings "
                                               "must be a list of {key, value}"))
            return
        option = request.get("option")
        option = "set" if _absent(option) else option
        if option not in ("set", "delete"):
            await self.send(self.error_message(turn, "090002", "invalid parameter: option must "
                                               "be set or delete"))
            return
        for item in settings:
            if option == "set":
                store[item["key"]] = item.get("value")
            else:
                store.pop(item["key"], None)
        await self.send_burst(turn, [{"recordId": turn.reply_id,
                                      "topic": turn.topic + ".response"}])

    async def topic_system_settings(self, turn):
        await self._settings(turn, self.settings["system"])

    async def topic_skill_settings(self, turn):
        skill_id = turn.request.get("skillId")
        if _absent(skill_id):
            await self.send(self.error_message(turn, "090002",
                                               "invalid parameter: skillId is required"))
            return
        await self._settings(turn, self.settings["skill"].setdefault(skill_id, {}))

    async def topic_dm_context_sync(self, turn):
        payload = turn.request.get("async")
        self.server.engine.context_sync(turn.session_id, payload, time.monotonic())


class DDSServer:
    """Configuration and shared state of one emulator; runs on the emulator's event loop."""

    def __init__(self, emulator):
        e = emulator
        self.emulator = e
        self.path = e.path
        self.product_id = str(e.product_id)
        self.apikey = e.apikey
        self.devices = dict(e.devices)
        self.transcript = e.transcript
        self.record_id_suffix = e.record_id_suffix
        self.idle_timeout = e.idle_timeout
        self.audio_idle_timeout = e.audio_idle_timeout
        self.max_audio_seconds = e.max_audio_seconds
        self.max_audio_bytes = e.max_audio_bytes
        self.sig_max_age = e.sig_max_age
        self.vad_threshold = e.vad_threshold
        self.vad_min_speech_ms = e.vad_min_speech_ms
        self.ms_per_token = e.ms_per_token
        self.fingerprint_bytes = e.fingerprint_bytes
        self.speak_url = e.speak_url
        self.record_audio = e.record_audio
        self.max_connections = e.max_connections
        self.engine = DialogueEngine(e.script, e.session_ttl, e.native_api_timeout)
        self.fingerprints = e._fingerprints
        self.replies = {}     # recordId -> (nlg, time) for /runtime/v1/longtext/
        self.open_connections = set()
        self.handlers = {}
        self._next_id = 0

    # ---------------------------------------------------------- shared helpers

    def record(self, conn, direction, kind, data):
        self.emulator._record(conn, direction, kind, data)

    def record_request(self, conn, request):
        self.emulator._record_request(conn, request)

    def take_fault(self, name, topic=None):
        return self.emulator._take_fault(name, topic)

    def next_transcript(self):
        return self.emulator._next_transcript()

    def speak_url_for(self, record_id, nlg):
        now = time.monotonic()
        self.replies[record_id] = (nlg, now)
        if len(self.replies) > 4096:
            ttl = self.engine.session_ttl
            for rid in [r for r, (_n, t) in self.replies.items() if now - t > ttl]:
                del self.replies[rid]
        return "http://%s:%d/runtime/v1/longtext/%s?productId=%s" % (
            self.emulator.host, self.emulator.port, record_id, self.product_id)

    # ---------------------------------------------------------- handshake (5.2)

    @staticmethod
    def _reject(connection, status, reason):
        return connection.respond(status, "%d %s: %s\n" % (status, HTTPStatus(status).phrase,
                                                            reason))

    async def process_request(self, connection, request):
        split = urlsplit(request.path)
        conn_id = self._next_id = self._next_id + 1
        connection.dds_id = conn_id
        response = await self._handshake(connection, split.path, split.query)
        self.emulator._record_handshake(conn_id, split.path, redact_query(split.query),
                                        101 if response is None else response.status_code)
        return response

    async def _handshake(self, connection, path, query):
        """None to accept, else the HTTP response (checks in the order of reference 5.2)."""
        m = _LONGTEXT_RE.match(path)
        if m:
            return self._longtext(connection, m.group(1))
        if path != self.path and not _PATH_RE.match(path):
            return connection.respond(404, "404 Not Found\n")
        if self.take_fault("refuse"):
            connection.transport.abort()   # nothing reaches the client
            return connection.respond(500, "")
        fault = self.take_fault("reject_handshake")
        if fault:
            if fault["body"] is None:
                return self._reject(connection, fault["status"], "rejected by fault injection")
            return connection.respond(fault["status"], fault["body"])
        fault = self.take_fault("slow_handshake")
        if fault:
            await asyncio.sleep(fault["seconds"])
        return self._check_auth(connection, query)

    def _longtext(self, connection, record_id):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        found = self.replies.get(record_id)
        if found is None:
            return connection.respond(404, "404 Not Found\n")
        body = reply_audio(found[0])
        return Response(200, "OK", Headers([("Content-Type", "audio/wav"),
                                            ("Content-Length", str(len(body)))]), body)

    def _check_auth(self, connection, query):
        if len(self.open_connections) >= self.max_connections:
            return connection.respond(503, "503 Service Unavailable: too many connections\n")
        params = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, value)
        params = {k: v for k, v in params.items() if v != ""}
        if params.get("productId") != self.product_id:
            return self._reject(connection, 401, "invalid productId")
        apikey = params.get("apikey", params.get("apiKey"))
        if apikey is not None:
            if not hmac.compare_digest(apikey.encode(), str(self.apikey).encode()):
                return self._reject(connection, 401, "invalid apikey")
            return None
        keys = ("deviceName", "nonce", "timestamp", "sig")
        if all(k in params for k in keys):
            name = params["deviceName"]
            secret = self.devices.get(name)
            if secret is None:
                return self._reject(connection, 401, "unknown deviceName")
            ts = params["timestamp"]
            if not ts.isdigit():
                return self._reject(connection, 401, "invalid timestamp")
            if self.sig_max_age is not None:
                seconds = int(ts) if len(ts) <= 10 else int(ts) / 1000.0
                if abs(time.time() - seconds) > self.sig_max_age:
                    return self._reject(connection, 401, "timestamp out of range")
            expected = device_signature(name, params["nonce"], self.product_id, ts, secret)
            if not hmac.compare_digest(params["sig"].lower().encode(), expected.encode()):
                return self._reject(connection, 401, "invalid signature")
            return None
        return self._reject(connection, 401, "missing credentials")

    # ---------------------------------------------------------- connections

    async def handler(self, ws):
        conn_id = getattr(ws, "dds_id", None) or id(ws)
        path = urlsplit(ws.request.path).path
        handler = ConnectionHandler(self, ws, conn_id, path.startswith("/dds/v3/"))
        self.open_connections.add(ws)
        self.handlers[conn_id] = handler
        code, reason = None, ""
        try:
            await self._serve(ws, handler)
        except Exception as exc:  # a connection ending abruptly is normal for the emulator
            log.debug("connection %s ended: %r", conn_id, exc)
        finally:
            self.open_connections.discard(ws)
            self.handlers.pop(conn_id, None)
            try:
                await asyncio.wait_for(ws.wait_closed(), 5.0)
            except Exception:
                pass
            # ServerConnection.close_code is websockets >= 15; the sans-I/O protocol has it.
            code = getattr(ws.protocol, "close_code", None)
            reason = getattr(ws.protocol, "close_reason", None) or ""
            self.emulator._record_close(conn_id, code, reason)

    async def _serve(self, ws, handler):
        from websockets.exceptions import ConnectionClosed

        watchdog = asyncio.ensure_future(self._watchdog(ws, handler))
        try:
            async for message in ws:
                text = isinstance(message, str)
                self.record(handler.id, "in", "text" if text else "binary", message)
                try:
                    if text:
                        await handler.on_text(message)
                    else:
                        await handler.on_binary(message)
                except ConnectionClosed:
                    raise
                except Exception:  # an emulator defect must not take the connection down
                    log.exception("connection %s: frame handling failed", handler.id)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()

    async def _watchdog(self, ws, handler):
        """Idle timeout (any received byte counts) and audio idle timeout, on timers."""
        idle, audio_idle = self.idle_timeout or None, self.audio_idle_timeout or None
        if not idle and not audio_idle:
            return
        handler.audio_opened = asyncio.Event()
        while True:
            now = time.monotonic()
            deadlines = []
            if idle:
                deadlines.append(ws.last_rx + idle)
            if audio_idle and handler.state == "AUDIO":
                deadlines.append(handler.last_audio + audio_idle)
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            # Woken early when an audio request opens (its timer starts then).
            handler.audio_opened.clear()
            try:
                await asyncio.wait_for(handler.audio_opened.wait(), timeout)
                continue
            except asyncio.TimeoutError:
                pass
            now = time.monotonic()
            if idle and now - ws.last_rx >= idle:
                await ws.close(1000, "idle timeout")
                return
            if audio_idle and handler.state == "AUDIO" and \
                    now - handler.last_audio >= audio_idle:
                await handler.audio_idle()


def connection_class():
    """A ServerConnection that stamps the time of every received byte (idle timeout)."""
    from websockets.asyncio.server import ServerConnection

    class DDSServerConnection(ServerConnection):
        last_rx = 0.0

        def connection_made(self, transport):
            self.last_rx = time.monotonic()
            super().connection_made(transport)

        def data_received(self, data):
            self.last_rx = time.monotonic()
            super().data_received(data)

    return DDSServerConnection
