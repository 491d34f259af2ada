"""The emulator's scripted dialogue engine (reference 5.6). Pure: the clock is passed in."""

import copy
import json
import re
import threading
import uuid

from .audio import pinyin_of

DEFAULT_SCRIPT = {
    "skills": [
        {"skillId": "2018040200000004", "skill": "天气", "task": "天气", "taskId": "",
         "intents": [
             {"intent": "查询天气", "intentId": "",
              "patterns": ["天气", "气温", "下雨", "冷不冷", "热不热"],
              "slots": [
                  {"name": "国内城市", "aliases": ["城市"],
                   "values": ["北京", "上海", "广州", "深圳", "苏州", "杭州", "南京", "成都", "武汉",
                              "西安", "天津", "重庆"],
                   "required": True, "prompt": "请问你要查询哪个城市的天气？",
                   "context": ["skill:city", "system:location.city"]}],
              "nlg": "{国内城市}今天全天多云，气温18到25度。",
              "widget": None, "command": None, "runSequence": None, "native": None,
              "shouldEndSession": True}]},
        {"skillId": "2019042500000544", "skill": "音乐", "task": "音乐", "taskId": "",
         "intents": [
             {"intent": "播放音乐", "intentId": "",
              "patterns": ["播放音乐", "放首歌", "听歌", "来点音乐"],
              "slots": [{"name": "歌手", "values": ["周杰伦", "王菲", "邓紫棋"]}],
              "nlg": "好的，为你播放{歌手|}音乐。",
              "widget": {"duiWidget": "media", "count": 2, "content": [
                  {"title": "歌曲一", "subTitle": "{歌手|未知歌手}",
                   "linkUrl": "http://127.0.0.1/media/1.mp3", "imageUrl": ""},
                  {"title": "歌曲二", "subTitle": "{歌手|未知歌手}",
                   "linkUrl": "http://127.0.0.1/media/2.mp3", "imageUrl": ""}]},
              "command": {"api": "DUI.MediaController.Play", "param": {}},
              "runSequence": "nlgFirst", "shouldEndSession": True},
             {"intent": "下一首", "intentId": "", "patterns": ["下一首", "换一首"],
              "nlg": "好的。", "command": {"api": "DUI.MediaController.Next", "param": {}},
              "runSequence": "commandFirst", "shouldEndSession": True},
             {"intent": "暂停", "intentId": "", "patterns": ["暂停", "停止播放"],
              "nlg": "好的。", "command": {"api": "DUI.MediaController.Pause", "param": {}},
              "shouldEndSession": True}]},
        {"skillId": "2019031900000003", "skill": "电话", "task": "电话", "taskId": "",
         "intents": [
             {"intent": "打电话", "intentId": "", "patterns": ["打电话", "呼叫", "拨打"],
              "slots": [{"name": "联系人", "values": ["张三", "李四", "王五"], "required": True,
                         "prompt": "你要打给谁？"}],
              "nlg": "",
              "native": {"api": "sys.query.contacts", "param": {"name": "{联系人}"}, "nlg": "",
                         "on_data": {"nlg": "正在呼叫{联系人}",
                                     "command": {"api": "DUI.Phone.Call",
                                                 "param": {"name": "{联系人}",
                                                           "phone": "{extra.contacts.0.phone}"}}},
                         "on_empty": {"nlg": "没有找到{联系人}的号码。"}},
              "shouldEndSession": True}]},
        {"skillId": "2019031800000002", "skill": "问候", "task": "问候", "taskId": "",
         "intents": [
             {"intent": "问候", "intentId": "", "patterns": ["你好", "您好", "hello"],
              "nlg": "你好，我是你的语音助手。", "shouldEndSession": True}]},
    ],
    "fallback": {"skillId": "2019031800000001", "skill": "闲聊", "task": "闲聊", "intent": "闲聊",
                 "nlg": "我还不太明白“{input}”是什么意思。", "shouldEndSession": True},
    "exit_patterns": ["退出", "取消", "不用了"],
    "exit_nlg": "好的。",
    "max_reprompts": 2,
    "giveup_nlg": "抱歉，我没有听懂，下次再见。",
}

_TEMPLATE = re.compile(r"\{([^{}|]+)(?:\|([^{}]*))?\}")


class Script:
    """A validated dialogue script (see the reference, 5.6.1)."""

    def __init__(self, data):
        if isinstance(data, Script):
            data = data.data
        if not isinstance(data, dict):
            raise ValueError("script: must be an object")
        self.data = copy.deepcopy(data)
        self._validate()

    def _validate(self):
        d = self.data
        skills = d.get("skills")
        if not isinstance(skills, list):
            raise ValueError("skills: must be a list")
        for i, skill in enumerate(skills):
            path = "skills[%d]" % i
            if not isinstance(skill, dict):
                raise ValueError("%s: must be an object" % path)
            for key in ("skillId", "skill"):
                if not isinstance(skill.get(key), str):
                    raise ValueError("%s: '%s' is required" % (path, key))
            intents = skill.get("intents")
            if not isinstance(intents, list):
                raise ValueError("%s.intents: must be a list" % path)
            for j, intent in enumerate(intents):
                ipath = "%s.intents[%d]" % (path, j)
                if not isinstance(intent, dict) or not isinstance(intent.get("intent"), str):
                    raise ValueError("%s: 'intent' is required" % ipath)
                patterns = intent.get("patterns", [])
                if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                    raise ValueError("%s.patterns: must be a list of strings" % ipath)
                for p in patterns:
                    if p.startswith("re:"):
                        try:
                            re.compile(p[3:])
                        except re.error as exc:
                            raise ValueError("%s.patterns: bad regular expression %r: %s"
                                             % (ipath, p, exc))
                slots = intent.get("slots") or []
                if not isinstance(slots, list):
                    raise ValueError("%s.slots: must be a list" % ipath)
                for k, slot in enumerate(slots):
                    spath = "%s.slots[%d]" % (ipath, k)
                    if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
                        raise ValueError("%s: 'name' is required" % spath)
                    if slot.get("required") and not isinstance(slot.get("prompt"), str):
                        raise ValueError("%s: 'prompt' is required for a required slot" % spath)
                if "nlg" in intent and not isinstance(intent["nlg"], str):
                    raise ValueError("%s.nlg: must be a string" % ipath)
                native = intent.get("native")
                if native is not None and (not isinstance(native, dict)
                                           or not isinstance(native.get("api"), str)):
                    raise ValueError("%s.native: 'api' is required" % ipath)
        fallback = d.get("fallback")
        if not isinstance(fallback, dict) or not isinstance(fallback.get("nlg"), str):
            raise ValueError("fallback: 'nlg' is required")


def load_script(path):
    """Read and validate a JSON script file."""
    with open(path, encoding="utf-8") as f:
        return Script(json.load(f))


def render(value, variables):
    """Template strings inside ``value``: {name}, {name|default}, {extra.a.0.b}."""
    if isinstance(value, str):
        def repl(m):
            key, default = m.group(1), m.group(2)
            found = _lookup(variables, key)
            if found is None or found == "":
                return default if default is not None else ""
            return str(found)
        return _TEMPLATE.sub(repl, value)
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    return value


def _lookup(variables, key):
    if key in variables:
        return variables[key]
    parts = key.split(".")
    node = variables.get(parts[0])
    for part in parts[1:]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _has_value(node):
    if isinstance(node, dict):
        return any(_has_value(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_value(v) for v in node)
    return node not in (None, "")


class DialogueEngine:
    """Deterministic rule engine with a global session store (shared by all connections)."""

    def __init__(self, script=None, session_ttl=300.0, native_api_timeout=10.0):
        self.script = Script(script if script is not None else DEFAULT_SCRIPT).data
        self.session_ttl = session_ttl
        self.native_api_timeout = native_api_timeout
        self.sessions = {}
        self._lock = threading.Lock()
        self._last_purge = 0.0

    # ------------------------------------------------------------ sessions

    def _state(self, session_id, now):
        """(session_id, state dict) — a new id when none, fresh state for unknown ids."""
        with self._lock:
            if now - self._last_purge >= 1.0:
                self._last_purge = now
                for sid in [s for s, st in self.sessions.items()
                            if now - st["used"] > self.session_ttl]:
                    del self.sessions[sid]
            if not session_id:
                session_id = uuid.uuid4().hex
            state = self.sessions.get(session_id)
            if state is None:
                state = self.sessions[session_id] = {"pending": None, "reprompts": 0,
                                                     "native": None, "context": None}
            state["used"] = now
            return session_id, state

    def _end(self, session_id):
        with self._lock:
            self.sessions.pop(session_id, None)

    def peek(self, session_id):
        with self._lock:
            return self.sessions.get(session_id)

    def context_sync(self, session_id, payload, now):
        if session_id:
            _sid, state = self._state(session_id, now)
            state["context"] = payload

    # ------------------------------------------------------------ matching

    def _intents(self):
        for skill in self.script["skills"]:
            for intent in skill["intents"]:
                yield skill, intent

    @staticmethod
    def _matches(intent, text):
        for p in intent.get("patterns", []):
            if p.startswith("re:"):
                if re.search(p[3:], text):
                    return True
            elif p and p in text:
                return True
        return False

    @staticmethod
    def _extract(intent, text):
        slots = {}
        for slot in intent.get("slots") or []:
            best = None
            for value in slot.get("values", []):
                if value in text and (best is None or len(value) > len(best)):
                    best = value
            if best is not None:
                slots[slot["name"]] = best
        return slots

    def _find_intent(self, skill_key, intent_name):
        for skill, intent in self._intents():
            if skill_key in (skill["skillId"], skill["skill"]) and intent["intent"] == intent_name:
                return skill, intent
        return None, None

    def _locate(self, ref):
        skill_i, intent_i = ref
        skill = self.script["skills"][skill_i]
        return skill, skill["intents"][intent_i]

    def _ref(self, skill, intent):
        for i, s in enumerate(self.script["skills"]):
            if s is skill:
                return (i, s["intents"].index(intent))

    # ------------------------------------------------------------ replies

    @staticmethod
    def _nlu(skill, intent_name, text, slots):
        items = [{"name": "intent", "value": intent_name}]
        for name, value in slots.items():
            items.append({"name": name, "value": value, "rawvalue": value,
                          "rawpinyin": pinyin_of(str(value))})
        return {"input": text, "pinyin": pinyin_of(text),
                "semantics": {"request": {"task": skill.get("task", skill.get("skill")),
                                          "slots": items}}}

    @staticmethod
    def _dm(text, skill, intent_name, intent_id, nlg, end, widget=None, command=None,
            run_sequence=None, native=None):
        dm = {"input": text, "intentName": intent_name, "intentId": intent_id,
              "task": skill.get("task", skill.get("skill")), "taskId": skill.get("taskId", ""),
              "nlg": nlg, "speak": {"text": nlg, "type": "text"},
              "widget": widget if widget is not None else
              {"duiWidget": "text", "widgetName": "default", "text": nlg}}
        if command is not None:
            dm["command"] = command
        if run_sequence is not None:
            dm["runSequence"] = run_sequence
        if native is not None:
            dm["dataFrom"] = "native"
            dm["api"] = native[0]
            dm["param"] = native[1]
        dm["shouldEndSession"] = end
        return dm

    def _reply(self, session_id, skill, dm, nlu=None):
        reply = {"sessionId": session_id, "skillId": skill.get("skillId"),
                 "skill": skill.get("skill")}
        if nlu is not None:
            reply["nlu"] = nlu
        reply["dm"] = dm
        if dm["shouldEndSession"]:
            self._end(session_id)
        return reply

    def _fallback(self, session_id, text, state):
        fb = self.script["fallback"]
        nlg = render(fb["nlg"], {"input": text})
        end = fb.get("shouldEndSession", True)
        state.update(pending=None, reprompts=0)
        dm = self._dm(text, fb, fb.get("intent", fb.get("skill")), fb.get("intentId", ""), nlg,
                      end)
        return self._reply(session_id, fb, dm, self._nlu(fb, fb.get("intent", ""), text, {}))

    def _simple(self, session_id, text, skill, intent_name, nlg, end, state=None):
        if state is not None:
            state.update(pending=None, reprompts=0)
        return self._reply(session_id, skill, self._dm(text, skill, intent_name, "", nlg, end))

    def discard(self, session_id, now):
        """Reply to an empty ASR result: a discardResponse, session state unchanged."""
        state = self.peek(session_id) if session_id else None
        pending = bool(state and state.get("pending"))
        dm = {"input": "", "nlg": "", "speak": {"text": "", "type": "text"},
              "widget": {"duiWidget": "text", "text": ""},
              "command": {"api": "discardResponse", "param": {"type": "asrDiscard"}},
              "shouldEndSession": not pending}
        return {"sessionId": session_id or uuid.uuid4().hex, "dm": dm}

    def _settings_value(self, source, skill, settings):
        kind, _, key = source.partition(":")
        if kind == "skill":
            return (settings.get("skill", {}).get(skill["skillId"]) or {}).get(key)
        if kind == "system":
            name, _, field = key.partition(".")
            value = settings.get("system", {}).get(name)
            if field:
                return value.get(field) if isinstance(value, dict) else None
            return value
        return None

    def _fulfil(self, session_id, state, skill, intent, slots, text, settings, now):
        """Step 4: fill from context, prompt for a missing required slot, or answer."""
        for slot in intent.get("slots") or []:
            name = slot["name"]
            if name not in slots:
                for source in slot.get("context") or []:
                    value = self._settings_value(source, skill, settings)
                    if value not in (None, ""):
                        slots[name] = value
                        break
        nlu = self._nlu(skill, intent["intent"], text, slots)
        for slot in intent.get("slots") or []:
            if slot.get("required") and slot["name"] not in slots:
                state["pending"] = {"ref": self._ref(skill, intent), "slot": slot["name"],
                                    "slots": dict(slots)}
                dm = self._dm(text, skill, intent["intent"], intent.get("intentId", ""),
                              slot["prompt"], False)
                return self._reply(session_id, skill, dm, nlu)
        state.update(pending=None, reprompts=0)
        variables = dict(slots)
        variables["input"] = text
        native = intent.get("native")
        if native:
            param = render(native.get("param", {}), variables)
            state["native"] = {"api": native["api"], "ref": self._ref(skill, intent),
                               "slots": dict(slots), "deadline": now + self.native_api_timeout}
            nlg = render(native.get("nlg", ""), variables)
            dm = self._dm(text, skill, intent["intent"], intent.get("intentId", ""), nlg, False,
                          native=(native["api"], param))
            return self._reply(session_id, skill, dm, nlu)
        nlg = render(intent.get("nlg", ""), variables)
        variables["nlg"] = nlg
        widget = render(intent["widget"], variables) if intent.get("widget") else None
        command = render(intent["command"], variables) if intent.get("command") else None
        end = intent.get("shouldEndSession", True)
        dm = self._dm(text, skill, intent["intent"], intent.get("intentId", ""), nlg, end,
                      widget, command, intent.get("runSequence"))
        return self._reply(session_id, skill, dm, nlu)

    # ------------------------------------------------------------ entries

    def text_turn(self, session_id, text, settings, now):
        """One dialogue turn on input text; returns the reply (sessionId, skillId, skill, nlu, dm)."""
        if not text:
            return self.discard(session_id, now)
        session_id, state = self._state(session_id, now)
        pending = state.get("pending")
        if pending:
            skill, intent = self._locate(pending["ref"])
            if any(p and p in text for p in self.script.get("exit_patterns", [])):
                return self._simple(session_id, text, skill, intent["intent"],
                                    self.script.get("exit_nlg", "好的。"), True, state)
            found = self._extract(intent, text)
            if found:
                slots = dict(pending["slots"])
                slots.update(found)
                return self._fulfil(session_id, state, skill, intent, slots, text, settings, now)
            other = any(self._matches(i, text) for s, i in self._intents() if i is not intent)
            if not other:
                state["reprompts"] += 1
                if state["reprompts"] > self.script.get("max_reprompts", 2):
                    return self._simple(session_id, text, skill, intent["intent"],
                                        self.script.get("giveup_nlg", ""), True, state)
                slot = next(s for s in intent["slots"] if s["name"] == pending["slot"])
                dm = self._dm(text, skill, intent["intent"], intent.get("intentId", ""),
                              slot["prompt"], False)
                return self._reply(session_id, skill, dm,
                                   self._nlu(skill, intent["intent"], text, pending["slots"]))
            state.update(pending=None, reprompts=0)
        for skill, intent in self._intents():
            if self._matches(intent, text):
                return self._fulfil(session_id, state, skill, intent,
                                    self._extract(intent, text), text, settings, now)
        return self._fallback(session_id, text, state)

    def nlu_only(self, text):
        """Semantics of a text without touching any session: (skill dict, nlu)."""
        for skill, intent in self._intents():
            if self._matches(intent, text):
                slots = self._extract(intent, text)
                return skill, self._nlu(skill, intent["intent"], text, slots)
        fb = self.script["fallback"]
        return fb, self._nlu(fb, fb.get("intent", ""), text, {})

    def _intent_slots(self, intent, given):
        slots = {}
        if isinstance(given, dict):
            items = list(given.items())
        elif isinstance(given, list):
            items = [(s.get("name"), s.get("value")) for s in given if isinstance(s, dict)]
        else:
            items = []
        for name, value in items:
            for slot in intent.get("slots") or []:
                if name == slot["name"] or name in (slot.get("aliases") or []):
                    slots[slot["name"]] = value
        return slots

    def intent_turn(self, session_id, request, settings, now, nlu_only=False):
        skill_key = request.get("skillId") or request.get("skill")
        name = request.get("intent")
        text = request.get("input") or ""
        skill, intent = self._find_intent(skill_key, name)
        if intent is None:
            fake = {"skillId": request.get("skillId"), "skill": request.get("skill"),
                    "task": request.get("task") or request.get("skill") or "", "taskId": ""}
            if nlu_only:
                return fake, self._nlu(fake, name, text, {})
            session_id, state = self._state(session_id, now)
            return self._simple(session_id, text, fake, name, "暂不支持该意图：%s" % name, True,
                                state)
        slots = self._intent_slots(intent, request.get("slots"))
        if nlu_only:
            return skill, self._nlu(skill, intent["intent"], text, slots)
        session_id, state = self._state(session_id, now)
        return self._fulfil(session_id, state, skill, intent, slots, text, settings, now)

    def data_turn(self, session_id, request, now):
        session_id, state = self._state(session_id, now)
        native = state.get("native")
        api = request.get("nativeApi")
        if native and api and native["api"] == api:
            state["native"] = None
            skill, intent = self._locate(native["ref"])
            if now > native["deadline"]:
                return self._simple(session_id, "", skill, intent["intent"], "抱歉，操作超时了。",
                                    True, state)
            spec = intent["native"]
            variables = dict(native["slots"])
            extra = request.get("extra")
            variables["extra"] = extra
            branch = spec.get("on_data") if _has_value(extra) else spec.get("on_empty")
            branch = branch or {}
            nlg = render(branch.get("nlg", ""), variables)
            variables["nlg"] = nlg
            command = render(branch["command"], variables) if branch.get("command") else None
            widget = render(branch["widget"], variables) if branch.get("widget") else None
            end = branch.get("shouldEndSession", True)
            dm = self._dm("", skill, intent["intent"], intent.get("intentId", ""), nlg, end,
                          widget, command, branch.get("runSequence"))
            return self._reply(session_id, skill, dm)
        return self._simple(session_id, "", self.script["fallback"],
                            self.script["fallback"].get("intent", ""), "已收到数据。", True, state)
