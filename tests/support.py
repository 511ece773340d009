"""Helpers shared by the tests: waiting with deadlines, free ports, child processes."""

import io
import os
import re
import selectors
import socket
import threading
import time

import gevent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# how conformance output named its sources before they had titles ("004 Pyro5 Servers (rst) \u00a7 ..."):
# none of it may reach a user any more
SEED_NUMBERING = re.compile(r"\b00[0-4] Pyro|\(rst\)|\u00a7")


def wait_until(predicate, timeout=10.0, interval=0.01):
    """Poll ``predicate`` until it is true or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        pause.wait(interval)


def green_wait(event, timeout=10.0):
    """Server side: wait cooperatively (the daemon's hub keeps running) for a threading.Event."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        gevent.sleep(0.005)
    return event.is_set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for tools that need a number up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port, host="127.0.0.1"):
    """True if something listens on ``host:port`` now."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def child_env(**extra):
    """The environment for a child Python: geopyro importable from this checkout, PYRO_LOGLEVEL unset."""
    environment = dict(os.environ, **{k: str(v) for k, v in extra.items()})
    environment["PYTHONPATH"] = ROOT + os.pathsep + environment.get("PYTHONPATH", "")
    environment.pop("PYRO_LOGLEVEL", None)
    return environment


def read_line(proc, deadline):
    """The next line a child prints on stdout, or None (and the child killed) if none comes by ``deadline``.

    Read a byte at a time from the descriptor: nothing past the line is taken from the pipe, so a second line
    that came in the same write waits there for the next read_line (or for proc.stdout, or communicate())."""
    fd = proc.stdout.fileno()
    line = bytearray()
    with selectors.DefaultSelector() as selector:  # epoll: works with descriptor numbers above 1024
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                break
            byte = os.read(fd, 1)
            if not byte:
                break  # the child closed its stdout (it ended)
            line += byte
            if byte == b"\n":
                return line.decode("utf-8", "replace") if isinstance(proc.stdout, io.TextIOBase) else bytes(line)
    proc.kill()
    return None


def first_line(proc, deadline, what):
    """The first stdout line of a child that must print one (a URI, say); the test fails with its stderr if not."""
    import pytest
    line = read_line(proc, deadline)
    if line is None:
        _, err = proc.communicate(timeout=10)
        pytest.fail("%s did not print its first line (exit code %s); stderr:\n%s" % (what, proc.returncode, err))
    return line


def feed_in_chunks(reader, data, chunks):
    """Feed ``data`` to a message reader in the given chunk sizes (cycled); return the messages it gave.
    Checks on the way that the reader only ever holds bytes that really arrived. May raise what it raises."""
    found = []
    pos = i = 0
    while pos < len(data):
        chunk = data[pos:pos + chunks[i % len(chunks)]]
        pos += len(chunk)
        i += 1
        reader.feed(chunk)
        assert reader.buffered <= pos
        msg = reader.next_message()
        while msg is not None:
            found.append(msg)
            msg = reader.next_message()
    return found
