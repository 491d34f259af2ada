"""Suite-wide guards: every test must end with no extra live thread and no extra open socket.

Package-specific fixtures live in tests/<package>/conftest.py; the emulator fixtures come from each
package's pytest plugin (registered through the pytest11 entry point).
"""
import gc
import os
import sys
import threading
import time

import pytest

# With --import-mode=importlib nothing is put on sys.path for the tests; each package's folder is, so
# its helper module (named uniquely: emu_helpers, sis_helpers, ...) imports by its plain name.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _name in sorted(os.listdir(_HERE)):
    _path = os.path.join(_HERE, _name)
    if os.path.isdir(_path) and not _name.startswith(('_', '.')) and _path not in sys.path:
        sys.path.insert(0, _path)

# How long a finished test may take to let its threads and sockets go; generous for a loaded CI box.
LEAK_GRACE_S = 5.0


def _socket_fds():
    """Inodes of the sockets this process holds open (Linux /proc; empty set elsewhere)."""
    found = set()
    try:
        names = os.listdir('/proc/self/fd')
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink('/proc/self/fd/' + name)
        except OSError:
            continue
        if target.startswith('socket:'):
            found.add(target)
    return found


def _settle(check, deadline):
    """Re-check a teardown condition until it holds or the deadline passes.

    Sockets are released by other threads (an emulator's event loop, a closing client) a moment after
    the test body returns; there is no event to wait on for "the kernel dropped this fd", so this is the
    one bounded re-check in the suite.
    """
    delay = 0.002
    while True:
        result = check()
        if not result or time.monotonic() >= deadline:
            return result
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves a thread running or a socket open behind it."""
    if request.node.get_closest_marker('allow_leaks'):
        yield
        return
    threads_before = set(threading.enumerate())
    sockets_before = _socket_fds()
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(max(0.0, deadline - time.monotonic()))
    leaked_threads = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]

    def leaked_sockets():
        gc.collect()
        return _socket_fds() - sockets_before

    still_open = _settle(leaked_sockets, deadline)
    problems = []
    if leaked_threads:
        problems.append('threads still alive: %s' % ', '.join(sorted(t.name for t in leaked_threads)))
    if still_open:
        problems.append('%d socket(s) left open' % len(still_open))
    if problems:
        pytest.fail('leak check failed: ' + '; '.join(problems), pytrace=False)


def pytest_configure(config):
    config.addinivalue_line('markers', 'allow_leaks: skip the thread/socket leak check (use sparingly, say why)')
