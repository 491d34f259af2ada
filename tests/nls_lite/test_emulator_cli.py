"""python -m nls_lite.emulator as a standalone server (the binding command line of §5)."""
import signal
import subprocess
import sys
import threading

import pytest
import requests

from nls_emu_helpers import RawClient, signed_url, tone


class Server(object):
    """The CLI in a subprocess; its first two stdout lines are read with a bounded wait."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, '-m', 'nls_lite.emulator', '--port', '0'] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for _ in range(2):
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip('\n'))
        self.ready.set()

    def urls(self, timeout=20):
        assert self.ready.wait(timeout), 'the emulator printed no URL within %ss' % timeout
        assert len(self.lines) == 2, (self.lines, self.proc.stderr.read() if self.proc.poll() is not None else '')
        return self.lines

    def finish(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        self.reader.join(5)
        return self.proc.returncode, err


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_with_given_credentials_and_exits_0(sig):
    server = Server('--token', 'T1', '--token', 'tok-T2', '--appkey', 'A', '--akid', 'X', '--aksecret', 'sekrit-Y',
                    '--transcript', '你好。', '--log-level', 'DEBUG')
    try:
        url, token_url = server.urls()
        assert url.startswith('ws://127.0.0.1:') and url.endswith('/ws/v1')
        assert token_url.startswith('http://127.0.0.1:') and token_url.endswith('/')
        c = RawClient(url, token='tok-T2')
        try:
            c.start(appkey='A')
            assert c.recv()['header']['name'] == 'RecognitionStarted'
            c.send_audio(tone(400))
            c.stop()
            assert c.recv()['payload']['result'] == '你好'
        finally:
            c.close()
        r = requests.post(signed_url(token_url, akid='X', secret='sekrit-Y'), timeout=5)
        assert r.status_code == 200
        with pytest.raises(Exception) as info:
            RawClient(url, token='test-token')  # the defaults are replaced by the flags
        assert info.value.status_code == 403
    finally:
        code, err = server.finish(sig)
    assert code == 0, err
    assert 'tok-T2' not in err and 'sekrit-Y' not in err  # credentials are never logged
    assert 'serving ws://127.0.0.1:' in err  # logs go to stderr


def test_cli_help_documents_the_defaults():
    out = subprocess.run([sys.executable, '-m', 'nls_lite.emulator', '--help'], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0
    for text in ('--token', 'test-token', '--appkey', 'test-appkey', '--akid', '--aksecret', '--transcript'):
        assert text in out.stdout


def test_cli_demo_runs_both_services_and_exits_0():
    out = subprocess.run([sys.executable, '-m', 'nls_lite.emulator', '--demo', '--transcript', '你好。'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith('ws://127.0.0.1:') and lines[1].startswith('http://127.0.0.1:')
    assert '"name":"RecognitionCompleted"' in out.stdout and '"result":"你好。"' in out.stdout
    assert out.stdout.count('"name":"SentenceEnd"') == 2 and '"name":"TranscriptionCompleted"' in out.stdout


def test_cli_port_in_use_is_a_clear_error():
    import socket
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', 0))
        s.listen()
        out = subprocess.run([sys.executable, '-m', 'nls_lite.emulator', '--port', str(s.getsockname()[1])],
                             capture_output=True, text=True, timeout=30)
    finally:
        s.close()
    assert out.returncode == 1 and out.stdout == ''
    assert 'cannot serve on 127.0.0.1' in out.stderr and 'Traceback' not in out.stderr
