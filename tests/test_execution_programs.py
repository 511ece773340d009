"""Where calls run, seen from outside: a whole server program in a subprocess, unpatched or monkey-patched,
called by geopyro and by Pyro5 clients from this process.

Unpatched (a Pyro5 program as it is), methods that block in time.sleep must not stall the server: calls
overlap on pool threads, oneway calls run in the background, new connections are answered, and a method
that waits for callbacks into the same server completes. Patched, the same holds with every call inline in
its connection's greenlet. Overlap is measured as the peak number of calls in progress, never as wall time.
"""

import json
import subprocess
import sys
import threading
import time

import Pyro5.api
import pytest

import geopyro.api
from support import ROOT, child_env, first_line

SERVER_PROGRAM = r'''
import sys
if sys.argv[1] == "patched":
    from gevent import monkey
    monkey.patch_all()

import concurrent.futures
import json
import threading
import time

import gevent.monkey
import greenlet
import geopyro.api as api

real_thread_id = gevent.monkey.get_original("_thread", "get_ident")
lock = threading.Lock()
state = {"in_progress": 0, "peak": 0, "holding": 0, "oneway_running": 0, "oneway_done": 0}
released = threading.Event()
everyone_in = threading.Event()
DEADLINE = 15.0  # a failing run ends by itself: calls stop waiting for the others


@api.expose
class Probe:
    def sleepy(self, expected):
        """time.sleep in steps until ``expected`` calls are in progress together (or the deadline passes)."""
        with lock:
            state["in_progress"] += 1
            state["peak"] = max(state["peak"], state["in_progress"])
            if state["in_progress"] >= expected:
                everyone_in.set()
        try:
            deadline = time.monotonic() + DEADLINE
            while not everyone_in.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.05)
            return state["peak"]
        finally:
            with lock:
                state["in_progress"] -= 1

    def reset(self):
        with lock:
            state.update(in_progress=0, peak=0)
        everyone_in.clear()
        released.clear()

    def hold(self):
        """Block (time.sleep, not yielding unless patched) until release() or the deadline."""
        with lock:
            state["holding"] += 1
        try:
            deadline = time.monotonic() + DEADLINE
            while not released.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            return "released" if released.is_set() else "deadline"
        finally:
            with lock:
                state["holding"] -= 1

    def release(self):
        released.set()

    def holding(self):
        return state["holding"]

    @api.oneway
    def background(self, seconds):
        with lock:
            state["oneway_running"] += 1
        time.sleep(seconds)
        with lock:
            state["oneway_running"] -= 1
            state["oneway_done"] += 1

    def oneway_state(self):
        return {"running": state["oneway_running"], "done": state["oneway_done"]}

    def where(self):
        return {"loop_thread": real_thread_id() == LOOP_THREAD, "greenlet": type(greenlet.getcurrent()).__name__}

    @api.blocking
    def where_blocking(self):
        return {"loop_thread": real_thread_id() == LOOP_THREAD}


@api.expose
class Worker:
    def square(self, number):
        time.sleep(0.05)
        return number * number


@api.expose
class Dispatcher:
    def fan_out(self, count):
        """Waits on futures whose work calls back into this same server."""
        def one(number):
            with api.Proxy(WORKER_URI) as worker:
                return worker.square(number)
        with concurrent.futures.ThreadPoolExecutor(count) as executor:
            return list(executor.map(one, range(count)))


daemon = api.Daemon(host="127.0.0.1")
probe_uri = daemon.register(Probe(), "probe")
WORKER_URI = daemon.register(Worker, "worker")
dispatcher_uri = daemon.register(Dispatcher, "dispatcher")
LOOP_THREAD = real_thread_id()
print(json.dumps({"probe": str(probe_uri), "dispatcher": str(dispatcher_uri),
                  "patched": gevent.monkey.is_module_patched("socket")}), flush=True)
daemon.requestLoop()
'''

CLIENTS = {"geopyro": geopyro.api.Proxy, "pyro5": Pyro5.api.Proxy}


@pytest.fixture(scope="module", params=["unpatched", "patched"])
def program(request, tmp_path_factory):
    """The server program running in a subprocess; yields (mode, info)."""
    script = tmp_path_factory.mktemp("program") / "server.py"
    script.write_text(SERVER_PROGRAM)
    env = {key: value for key, value in child_env().items() if not key.startswith("PYRO_")}
    env["PYTHONPATH"] = ROOT
    proc = subprocess.Popen([sys.executable, str(script), request.param], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(first_line(proc, time.monotonic() + 30, "the server program"))
        assert info["patched"] is (request.param == "patched")
        yield request.param, info
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def call_in_threads(make_proxy, uri, method, args, count, timeout=20):
    """``count`` threads each call ``method(*args)`` on a proxy of their own; returns the results."""
    results, failures = [], []

    def one():
        try:
            with make_proxy(uri) as proxy:
                proxy._pyroTimeout = timeout
                results.append(getattr(proxy, method)(*args))
        except Exception as exc:  # reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    assert failures == []
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_blocking_calls_overlap(program, client):
    mode, info = program
    with CLIENTS[client](info["probe"]) as probe:
        probe.reset()
    peaks = call_in_threads(CLIENTS[client], info["probe"], "sleepy", (4,), 4)
    assert peaks == [4, 4, 4, 4]  # inline, four time.sleep calls one after another would peak at 1


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_oneway_calls_run_in_the_background(program, client):
    mode, info = program
    with CLIENTS[client](info["probe"]) as probe:
        before = probe.oneway_state()["done"]
        probe.background(1.0)  # returns at once on the client, as every oneway call does
        # the next call on the same connection is answered while the oneway call still sleeps
        assert probe.oneway_state() == {"running": 1, "done": before}
        with CLIENTS[client](info["probe"]) as other:  # and so is a call on another connection
            assert other.oneway_state()["running"] == 1
        deadline = time.monotonic() + 20
        while probe.oneway_state()["done"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.oneway_state() == {"running": 0, "done": before + 1}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_new_connection_answered_while_calls_block(program, client):
    mode, info = program
    make_proxy = CLIENTS[client]
    with make_proxy(info["probe"]) as probe:
        probe.reset()
    holders = threading.Thread(target=call_in_threads, args=(make_proxy, info["probe"], "hold", (), 3))
    holders.start()
    try:
        with make_proxy(info["probe"]) as watcher:
            deadline = time.monotonic() + 20
            while watcher.holding() < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert watcher.holding() == 3
        with make_proxy(info["probe"]) as newcomer:
            newcomer._pyroTimeout = 0.5  # handshake and call must both be answered within this
            assert newcomer.holding() == 3  # three calls still block, and still we are served
    finally:
        with make_proxy(info["probe"]) as releaser:
            releaser.release()
        holders.join(30)
    assert not holders.is_alive()


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_method_waiting_for_callbacks_into_the_same_server(program, client):
    mode, info = program
    with CLIENTS[client](info["dispatcher"]) as dispatcher:
        dispatcher._pyroTimeout = 20
        assert dispatcher.fan_out(4) == [0, 1, 4, 9]


def test_where_calls_run(program):
    """Unpatched: on a pool thread. Patched: inline, in the connection's greenlet on the loop's thread."""
    mode, info = program
    for make_proxy in CLIENTS.values():
        with make_proxy(info["probe"]) as probe:
            where = probe.where()
            assert probe.where_blocking() == {"loop_thread": False}  # @blocking: a pool thread, patched or not
        if mode == "patched":
            assert where == {"loop_thread": True, "greenlet": "Greenlet"}
        else:
            assert where["loop_thread"] is False
