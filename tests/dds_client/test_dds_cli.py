"""``python -m dds_client``: text chat, audio turns, JSON output and exit statuses."""

import io
import json
import subprocess
import sys

from dds_client.__main__ import builtin_audio, main


def run(argv, stdin=""):
    out = io.StringIO()
    rc = main(argv, stdin=io.StringIO(stdin), stdout=out)
    return rc, out.getvalue()


def test_text_turns_multi_turn():
    rc, out = run(["--emulator", "--text", "今天天气怎么样", "--text", "苏州", "--text", "放首歌"])
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("[session ") and lines[0].endswith("] 请问你要查询哪个城市的天气？")
    sid = lines[0][9:17]
    assert "[session %s] 苏州今天全天多云，气温18到25度。" % sid in lines
    assert "(dialogue ended)" in lines
    assert "  command: DUI.MediaController.Play {}" in lines
    assert any(line.startswith("  widget: media ") for line in lines)


def test_interactive_chat_new_session_and_quit():
    rc, out = run(["--emulator"], stdin="今天天气怎么样\n/new\n北京天气\n/quit\n你好\n")
    assert rc == 0
    assert "(new session)" in out and "北京今天全天多云" in out and "你好，我是" not in out
    rc, out = run(["--emulator"], stdin="打电话给张三\n")       # EOF ends the chat
    assert rc == 0 and '  native: sys.query.contacts {"name": "张三"}' in out


def test_audio_builtin_and_transcript():
    rc, out = run(["--emulator", "--transcript", "苏州的天气", "--audio", "builtin"])
    assert rc == 0
    assert "asr: 苏州的天气" in out.splitlines()
    assert "苏州今天全天多云" in out and "... 苏州的天" in out


def test_json_output_and_ai_type():
    rc, out = run(["--emulator", "--json", "--ai-type", "asr", "--audio", "builtin"])
    messages = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and messages[-1]["eof"] == 1 and not any("dm" in m for m in messages)


def test_builtin_audio_is_a_wav():
    data = builtin_audio()
    assert data[:4] == b"RIFF" and 80000 < len(data) < 200000


def test_exit_statuses():
    proc = subprocess.run([sys.executable, "-m", "dds_client", "--text", "x"],
                          capture_output=True, text=True, timeout=20,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "--product-id" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dds_client", "--product-id", "1", "--apikey",
                           "topsecret", "--url", "ws://127.0.0.1:1/dsg/v1/prod", "--text", "x",
                           "--timeout", "3"], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot connect to ws://127.0.0.1:1/dsg/v1/prod?"
                                  "productId=1&apikey=***")
    assert "topsecret" not in proc.stderr + proc.stdout
