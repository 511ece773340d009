"""Whole programs in subprocesses: one monkeypatched by gevent, one plain threaded program.

Monkeypatching is process-wide and cannot be undone, so it never happens in the test process.
Each program prints one JSON line with what it observed; the test checks the exit code and that line.
``subprocess.run(timeout=...)`` kills a program that hangs.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM_TIMEOUT = 120  # a hang guard only; each program takes about a second

PATCHED_PROGRAM = r'''
from gevent import monkey
monkey.patch_all()

import json
import socket
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import geopyro.api as api

api.config.SERVERTYPE = sys.argv[2]
CALLS = 50
DEADLINE = 10.0  # generous: without overlap the calls give up waiting and report a smaller maximum


@api.expose
class Sleeper:
    """Uses only the (patched) stdlib: threading.Lock/Event, time.sleep and a socket round trip."""

    def __init__(self):
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.in_progress = 0
        self.max_in_progress = 0
        self.deadline = None

    def slow(self, number):
        with self.lock:
            if self.deadline is None:
                self.deadline = time.monotonic() + DEADLINE
            self.in_progress += 1
            self.max_in_progress = max(self.max_in_progress, self.in_progress)
            if self.in_progress >= CALLS:
                self.all_in.set()
        try:
            echoed = None
            remaining = self.deadline - time.monotonic()
            if remaining > 0:  # past the deadline (a failing run) calls return at once
                time.sleep(0.2)  # cooperative only because time is patched
                left, right = socket.socketpair()
                with left, right:
                    left.sendall(b"%d" % number)
                    echoed = int(right.recv(16))
                self.all_in.wait(remaining)
            with self.lock:
                return [self.max_in_progress, echoed]
        finally:
            with self.lock:
                self.in_progress -= 1


sleeper = Sleeper()
daemon = api.Daemon(host="127.0.0.1")
uri = daemon.register(sleeper, "sleeper")
loop = threading.Thread(target=daemon.requestLoop, name="daemon-loop")
loop.start()

results = {}
failures = []


def client(number):
    try:
        with api.Proxy(uri) as proxy:
            results[number] = proxy.slow(number)
    except Exception as exc:
        failures.append(repr(exc))


clients = [threading.Thread(target=client, args=(number,)) for number in range(CALLS)]
for thread in clients:
    thread.start()
for thread in clients:
    thread.join(60)
daemon.shutdown()
loop.join(10)
print(json.dumps({
    "patched": {name: monkey.is_module_patched(name) for name in ("socket", "time", "threading")},
    "results": {str(number): value for number, value in results.items()},
    "failures": failures,
    "server_max": sleeper.max_in_progress,
    "clients_alive": sum(thread.is_alive() for thread in clients),
    "loop_alive": loop.is_alive(),
}), flush=True)
'''

THREADED_PROGRAM = r'''
import json
import sys
import threading

sys.path.insert(0, sys.argv[1])
import geopyro.api as api

api.config.SERVERTYPE = sys.argv[2]
THREADS = 8
CALLS = 25


@api.expose
class Calculator:
    def add(self, a, b):
        return a + b

    def greet(self, name):
        return "hello " + name


daemon = api.Daemon(host="127.0.0.1")
uri = daemon.register(Calculator, "calculator")
servertype = str(daemon.transportServer)
loop = threading.Thread(target=daemon.requestLoop, name="daemon-loop")
loop.start()

all_connected = threading.Barrier(THREADS)
results = {}
failures = []


def client(number):
    try:
        with api.Proxy(uri) as proxy:
            proxy._pyroBind()
            all_connected.wait(30)  # every thread holds its own open connection before the calls start
            total = sum(proxy.add(number, k) for k in range(CALLS))
            results[number] = [total, proxy.greet("thread %d" % number)]
    except Exception as exc:
        failures.append(repr(exc))


clients = [threading.Thread(target=client, args=(number,), name="client-%d" % number) for number in range(THREADS)]
for thread in clients:
    thread.start()
for thread in clients:
    thread.join(60)
daemon.shutdown()  # from the main thread, while the loop runs in "daemon-loop"
loop.join(10)
print(json.dumps({
    "servertype": servertype,
    "closed": daemon.transportServer is None,
    "results": {str(number): value for number, value in results.items()},
    "failures": failures,
    "clients_alive": sum(thread.is_alive() for thread in clients),
    "loop_alive": loop.is_alive(),
    "threads_left": sorted(t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon),
}), flush=True)
'''


def run_program(tmp_path, source, *args):
    """Run ``source`` as a script (killed after PROGRAM_TIMEOUT); return its last stdout line parsed as JSON."""
    script = tmp_path / "program.py"
    script.write_text(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}
    try:
        done = subprocess.run([sys.executable, str(script), ROOT, *args], capture_output=True, text=True,
                              timeout=PROGRAM_TIMEOUT, stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped it
        pytest.fail("program did not finish within %d s; stderr:\n%s" % (PROGRAM_TIMEOUT, exc.stderr))
    assert done.returncode == 0, "exit code %d; stderr:\n%s" % (done.returncode, done.stderr)
    lines = done.stdout.strip().splitlines()
    assert lines, "no output; stderr:\n%s" % done.stderr
    return json.loads(lines[-1])


@pytest.mark.parametrize("servertype", ["greenlet"], indirect=True)
def test_monkeypatched_program_serves_overlapping_calls(tmp_path, servertype):
    """patch_all() first, then a daemon whose method blocks in stdlib calls: 50 calls run at the same time.

    Greenlet server type only: the multiplex type handles one request at a time, so there the calls
    must not overlap.
    """
    report = run_program(tmp_path, PATCHED_PROGRAM, servertype)
    assert report["patched"] == {"socket": True, "time": True, "threading": True}
    assert report["failures"] == []
    assert report["clients_alive"] == 0
    assert report["loop_alive"] is False
    assert report["server_max"] == 50
    assert report["results"] == {str(number): [50, number] for number in range(50)}


def test_plain_threaded_program(tmp_path, servertype):
    """No monkeypatching: daemon loop in a thread, client threads with their own proxies, shutdown from main."""
    report = run_program(tmp_path, THREADED_PROGRAM, servertype)
    assert report["failures"] == []
    expected = {str(number): [sum(number + k for k in range(25)), "hello thread %d" % number] for number in range(8)}
    assert report["results"] == expected
    assert report["clients_alive"] == 0
    assert report["loop_alive"] is False  # shutdown() from the main thread ended the request loop
    assert report["servertype"] == servertype
    assert report["closed"] is True  # shutdown() also closed the daemon, as in Pyro5
    assert report["threads_left"] == []
