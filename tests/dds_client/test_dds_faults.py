"""The fault matrix: every failure ends in the documented error path, on_close fires once,
every wait is bounded and no thread or socket is left behind (the suite's leak guard)."""

import base64
import contextlib
import hashlib
import json
import logging
import shutil
import socket
import subprocess
import threading
import time

import pytest

from dds_client import (AuthError, CallbackError, ConnectError, ConnectionClosedError,
                        DDSClient, DDSTimeoutError, ProtocolError, ServerError)
from dds_client.emulator import Emulator


def ws_threads():
    return [t for t in threading.enumerate() if t.name == "dds-client-ws"]


def test_refused(recorder):
    port = Emulator.unused_port()
    c = DDSClient("1", "secret-key", url="ws://127.0.0.1:%d/dsg/v1/prod" % port,
                  on_close=recorder("close"), on_error=recorder("error"))
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as info:
        c.connect(timeout=5)
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert msg.startswith("cannot connect to ws://127.0.0.1:%d/dsg/v1/prod?productId=1&apikey=***:"
                          % port)
    assert "secret-key" not in msg and recorder.calls == [] and not ws_threads()
    # A request method connects on demand with the same error.
    with pytest.raises(ConnectError):
        c.send_text("你好")


@pytest.mark.parametrize("status, cls, phrase", [(403, AuthError, "Forbidden"),
                                                 (500, ConnectError, "Internal Server Error"),
                                                 (503, ConnectError, "Service Unavailable")])
def test_rejected_handshake(dds_emulator, make_client, status, cls, phrase):
    dds_emulator.set_fault("reject_handshake", status=status, body="go away")
    c = make_client()
    with pytest.raises(cls) as info:
        c.connect(timeout=5)
    assert type(info.value) is cls and info.value.status == status
    assert str(info.value).startswith("handshake rejected with HTTP %d %s: go away"
                                      % (status, phrase))


def test_refuse_fault_aborts_handshake(dds_emulator, make_client):
    dds_emulator.set_fault("refuse")
    with pytest.raises(ConnectError, match="cannot connect to"):
        make_client().connect(timeout=5)


def test_tls_failure_is_reported(dds_emulator, make_client):
    c = make_client(url=dds_emulator.url.replace("ws://", "wss://"))
    with pytest.raises(ConnectError, match=r"TLS handshake with 127\.0\.0\.1 failed: "):
        c.connect(timeout=5)


def test_slow_handshake_times_out_and_cleans_up(dds_emulator, make_client, recorder):
    dds_emulator.set_fault("slow_handshake", seconds=2)
    c = make_client(on_open=recorder("open"), on_close=recorder("close"))
    t0 = time.monotonic()
    with pytest.raises(DDSTimeoutError, match=r"connection to ws://127\.0\.0\.1:\d+/dsg/v1/prod"
                                              r"\?productId=100200300&apikey=\*\*\* not open "
                                              r"within 0\.3 s"):
        c.connect(timeout=0.3)
    assert time.monotonic() - t0 < 2.0
    assert recorder.calls == [] and not ws_threads() and not c.connected


def test_silent_server_result_times_out_and_close_fails_pending(dds_emulator, make_client,
                                                                recorder):
    dds_emulator.set_fault("never_answer")
    c = make_client(on_close=recorder("close"), on_error=recorder("error"))
    req = c.send_text("你好")
    with pytest.raises(DDSTimeoutError):
        req.result(timeout=0.2)
    assert not req.done() and c.pending == 1
    c.close(timeout=2)
    with pytest.raises(ConnectionClosedError, match="connection closed by client"):
        req.result()
    c.close()
    assert recorder.of("close") == [(1000, "")] and recorder.of("error") == []
    assert not ws_threads()


def test_server_drops_connection_mid_turn(dds_emulator, make_client, recorder):
    dds_emulator.set_fault("close_mid_stream", after_frames=2)
    c = make_client(on_close=recorder("close"), on_error=recorder("error"),
                    on_asr_partial=recorder("partial"))
    stream = c.start_audio("mp3", real_back=True)
    for _ in range(2):
        stream.write(b"\x01" * 400)
    assert recorder.wait("close")
    with pytest.raises(ConnectionClosedError, match="connection is closed"):
        stream.write(b"\x01" * 400)
    with pytest.raises(ConnectionClosedError, match="connection lost: "):
        stream.result(timeout=5)
    assert recorder.of("partial")[0][0].var == "今"
    (code, _reason), = recorder.of("close")
    assert code == 1006
    (error,), = recorder.of("error")
    assert isinstance(error, ConnectionClosedError) and error.code == 1006
    with pytest.raises(ConnectionClosedError, match="connection is closed"):
        c.send_text("你好")


def test_server_closes_with_code(dds_emulator, make_client, recorder):
    dds_emulator.set_fault("close_after_request", code=1011, reason="internal error")
    c = make_client(on_close=recorder("close"), on_error=recorder("error"))
    req = c.send_text("你好")
    with pytest.raises(ConnectionClosedError, match=r"connection closed by server \(1011 "
                                                    r"internal error\) before the result "
                                                    r"arrived"):
        req.result(timeout=5)
    assert recorder.wait("close")
    assert recorder.of("close") == [(1011, "internal error")]
    assert len(recorder.of("error")) == 1
    c.close()
    assert len(recorder.of("close")) == 1


def test_emulator_stop_closes_with_1001(recorder):
    emu = Emulator(faults=[("never_answer", {})]).start()
    try:
        c = DDSClient(**emu.client_kwargs(), on_close=recorder("close"))
        req = c.send_text("你好")
        emu.stop()
        assert recorder.wait("close")
        assert recorder.of("close") == [(1001, "server shutting down")]
        with pytest.raises(ConnectionClosedError, match=r"\(1001 server shutting down\)"):
            req.result(timeout=5)
        c.close()
    finally:
        emu.stop()


def test_malformed_json_fails_pending_and_keeps_connection(dds_emulator, make_client,
                                                          recorder):
    dds_emulator.set_fault("malformed")
    c = make_client(on_error=recorder("error"), on_close=recorder("close"))
    req = c.send_text("你好")
    with pytest.raises(ProtocolError, match=r'malformed message from server: invalid JSON: '
                                            r'\{"recordId": "\w+", "dm": \{'):
        req.result(timeout=5)
    (error,), = recorder.of("error")
    assert isinstance(error, ProtocolError) and error is req.exception()
    assert c.send_text("你好").result(timeout=5).nlg     # the connection stays open
    assert recorder.of("close") == []


def test_server_error_message(dds_emulator, make_client, recorder):
    dds_emulator.set_fault("error")
    c = make_client(on_error=recorder("error"))
    errors = []
    c.subscribe("sys.client.error", lambda t, e: errors.append(e))
    with pytest.raises(ServerError, match="server error 010400: It's time to do qa.") as info:
        c.send_text("你好").result(timeout=5)
    assert info.value.err_id == "010400" and info.value.raw["error"]["errId"] == "010400"
    assert recorder.of("error")[0][0] is errors[0]
    dds_emulator.set_fault("error", errId="090001", errMsg="boom", topic="recorder.stream.start")
    stream = c.start_audio("mp3", real_back=True)
    for _ in range(8):
        stream.write(b"\x01" * 400)
    with pytest.raises(ServerError, match="server error 090001: boom"):
        stream.result(timeout=5)
    assert stream.finalized and not stream.request.asr and stream.request.partials


@contextlib.contextmanager
def captured_excepthook():
    """Captures what reaches threading.excepthook inside the test body (set and restored here,
    not by a fixture: pytest 8 installs its own hook around the call phase)."""
    seen = []
    previous = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)
    try:
        yield seen
    finally:
        threading.excepthook = previous


def test_raising_callbacks_are_reported_not_fatal(dds_emulator, make_client, recorder, caplog):
    def bad_dialog(r):
        raise RuntimeError("boom in on_dialog")

    def bad_observer(topic, r):
        raise KeyError("observer")

    def bad_error(e):
        recorder("error")(e)
        raise ValueError("on_error itself fails")

    c = make_client(on_dialog=bad_dialog, on_error=bad_error, on_close=recorder("close"))
    c.subscribe("dm.output", bad_observer)
    with captured_excepthook() as excepthook:
        req = c.send_text("你好")
        req.add_done_callback(lambda r: 1 / 0)
        assert req.result(timeout=5).nlg
        assert recorder.wait("error")
        assert c.send_text("你好").result(timeout=5).nlg        # still connected
        c.close()
    errors = [e[0] for e in recorder.of("error")]
    assert all(isinstance(e, CallbackError) for e in errors)
    assert [e.callback_name for e in errors][:2] == ["on_dialog", "observer(dm.output)"]
    assert str(errors[0]) == "callback on_dialog raised RuntimeError: boom in on_dialog"
    assert isinstance(errors[0].__cause__, RuntimeError)
    assert any("callback on_dialog raised" in r.getMessage() for r in caplog.records)
    # on_error raising itself cannot be reported to on_error: it goes to threading.excepthook.
    assert excepthook and all(isinstance(e, ValueError) for e in excepthook)
    assert recorder.of("close") == [(1000, "")]


def test_raising_callbacks_without_on_error_reach_excepthook(dds_emulator, make_client, caplog):
    def boom(*args):
        raise RuntimeError("boom")
    c = make_client(on_open=boom, on_close=boom, on_dialog=boom)
    with captured_excepthook() as excepthook:
        assert c.send_text("你好").result(timeout=5).nlg
        c.close()
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert logged == ["callback on_open raised", "callback on_dialog raised",
                      "callback on_close raised"]
    assert [str(e) for e in excepthook] == ["boom"] * 3


def test_close_from_callback_does_not_deadlock(dds_emulator, make_client, recorder):
    c = make_client(on_close=recorder("close"))
    c.on_dialog = lambda r: c.close()
    c.send_text("你好").result(timeout=5)
    assert recorder.wait("close")
    assert recorder.of("close") == [(1000, "")]


def test_secrets_never_logged(dds_emulator, make_client, caplog):
    caplog.set_level(logging.DEBUG, logger="dds_client")
    c = make_client(apikey=None, device_name="emulator-device",
                    device_secret="emulator-device-secret")
    c.send_text("你好").result(timeout=5)
    c.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "connecting to ws://127.0.0.1" in text and "sig=***" in text
    assert "emulator-device-secret" not in text
    sig = dds_emulator.connections[0]["query"]
    assert "sig=***" in sig


class DeadPeer:
    """Completes the WebSocket handshake, then never reads or answers again."""

    def __init__(self, answer=True):
        self.answer = answer
        self.request_read = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.conn = None
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        self.conn = conn
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        self.request_read.set()
        if not self.answer:
            return
        key = [line.split(b":", 1)[1].strip() for line in data.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key")][0]
        accept = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.accepted.set()

    def close(self):
        self.thread.join(5)
        if self.conn is not None:
            self.conn.close()
        self.sock.close()


def test_ping_timeout_ends_as_connection_lost(recorder):
    peer = DeadPeer()
    try:
        c = DDSClient("1", "k", url="ws://127.0.0.1:%d/dsg/v1/prod" % peer.port,
                      ping_interval=0.2, ping_timeout=0.1, on_close=recorder("close"),
                      on_error=recorder("error"))
        req = c.send_text("你好")
        with pytest.raises(ConnectionClosedError, match="connection lost: ping timeout"):
            req.result(timeout=5)
        assert recorder.wait("close")
        assert recorder.of("close") == [(1006, "ping timeout")]
        c.close()
    finally:
        peer.close()


def test_reconnect_after_server_close_keeps_connections_apart(dds_emulator, recorder):
    """A connect() made from another thread while the old connection reports its close must not
    see the old connection fail its requests or receive its audio."""
    c = DDSClient(**dds_emulator.client_kwargs(), on_close=recorder("close"))
    try:
        stream = c.start_audio("mp3")
        dds_emulator.set_fault("close_after_request", code=1011, reason="bye")
        c.send_text("你好")
        assert recorder.wait("close")
        c.connect()
        req = c.send_text("你好")
        with pytest.raises(ConnectionClosedError, match="connection is closed"):
            stream.write(b"\x01" * 400)
        stream.end()
        assert req.result(timeout=5).nlg
        assert [f[3] for f in dds_emulator.frames if f[1] == "in" and f[2] == "binary"] == []
    finally:
        c.close()


def test_close_is_bounded_when_the_peer_never_answers(recorder):
    peer = DeadPeer()
    try:
        c = DDSClient("1", "k", url="ws://127.0.0.1:%d/dsg/v1/prod" % peer.port,
                      on_close=recorder("close"), on_error=recorder("error"))
        c.connect(timeout=5)
        req = c.send_text("你好")
        t0 = time.monotonic()
        c.close(timeout=0.3)
        assert time.monotonic() - t0 < 2.5
        assert recorder.of("close") == [(1000, "")] and recorder.of("error") == []
        with pytest.raises(ConnectionClosedError, match="connection closed by client"):
            req.result(timeout=1)
        assert not ws_threads()
    finally:
        peer.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_certificates_verified_by_default(tmp_path):
    import ssl
    from websockets.sync.server import serve

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))

    def handler(ws):
        for message in ws:
            rid = json.loads(message)["recordId"]
            ws.send(json.dumps({"recordId": rid, "sessionId": "s", "dm": {"nlg": "tls ok"}}))

    with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = "wss://127.0.0.1:%d/dsg/v1/prod" % server.socket.getsockname()[1]
            with pytest.raises(ConnectError, match=r"TLS handshake with 127\.0\.0\.1 failed: "
                                                   r".*certificate verify failed"):
                DDSClient("1", "k", url=url).connect(timeout=5)
            with DDSClient("1", "k", url=url, sslopt={"cert_reqs": ssl.CERT_NONE}) as c:
                assert c.send_text("你好").result(timeout=5).nlg == "tls ok"
        finally:
            server.shutdown()
            thread.join(5)


def test_close_during_connect_aborts_it(recorder):
    peer = DeadPeer(answer=False)       # reads the handshake request, never answers it
    try:
        c = DDSClient("1", "k", url="ws://127.0.0.1:%d/dsg/v1/prod" % peer.port,
                      on_open=recorder("open"), on_close=recorder("close"))
        failed = []

        def opener():
            with pytest.raises(ConnectionClosedError, match="connection closed by client"):
                c.connect(timeout=10)
            failed.append(True)
        thread = threading.Thread(target=opener)
        thread.start()
        assert peer.request_read.wait(5)
        t0 = time.monotonic()
        c.close(timeout=1)
        thread.join(5)
        assert failed and time.monotonic() - t0 < 2.5
        assert recorder.calls == [] and not c.connected and not ws_threads()
    finally:
        peer.close()
