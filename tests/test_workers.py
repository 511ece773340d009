"""geopyro-serve and serve(workers=N): one service in several processes on one port (geopyro.workers).

Each test starts the arbiter in a subprocess on 127.0.0.1 and talks to it over real sockets; the service
answers with its process id, so a test can tell the workers apart. Clients that open a fresh connection per
call run beside restarts and reloads and must never see an error.
"""

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

import geopyro.api as api
from geopyro import workers
from support import child_env, free_port, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need a POSIX system")

STARTUP_DEADLINE = 60.0

SERVICE = '''
import os

import geopyro.api as api

if os.path.exists("broken"):  # (a test makes new workers fail to start)
    raise RuntimeError("this deploy is broken")


@api.expose
@api.behavior(instance_mode="single")
class Service:
    def pid(self):
        return os.getpid()

    def burn(self, seconds):
        import time
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return os.getpid()


@api.expose
@api.behavior(instance_mode="session")
class Counter:
    def __init__(self):
        self.count = 0

    def next(self):
        self.count += 1
        return os.getpid(), self.count
'''

FORKED = '''
import sys

import geopyro.api as api
from service import Service

api.serve({Service: "svc"}, host="127.0.0.1", port=int(sys.argv[1]), use_ns=False, workers=2)
'''


class Served:
    """An arbiter in a subprocess; ``lines`` collects what it prints (stdout and stderr)."""

    def __init__(self, directory, argv, env=None, cpus=None):
        (directory / "service.py").write_text(SERVICE)
        (directory / "forked.py").write_text(FORKED)
        self.lines = []
        self.proc = subprocess.Popen(argv, cwd=str(directory), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=child_env(**(env or {})),
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def worker_pids(self):
        """The pids of the workers the arbiter said serve."""
        return {int(line.split("worker ")[1].split()[0]) for line in self.lines if line.endswith(") serving")}

    def wait_for(self, text, timeout=STARTUP_DEADLINE):
        assert wait_until(lambda: text in self.output() or self.proc.poll() is not None, timeout), self.output()
        if text not in self.output():
            self._reader.join(5)  # (it ended: what it printed last may still be in the pipe)
        assert text in self.output(), self.output()

    def exit_code(self, timeout=60):
        """Wait for the arbiter to end, and for the reader to have every line it printed."""
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, signum=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.exit_code(timeout)


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(*args, module="geopyro.workers", env=None, cpus=None):
        argv = [sys.executable, "-m", module] + list(args) if module else [sys.executable] + list(args)
        served = Served(tmp_path, argv, env, cpus)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.terminate()  # (the arbiter stops its workers)
            try:
                served.proc.wait(30)
            except subprocess.TimeoutExpired:
                served.proc.kill()
                served.proc.wait(10)


def two_workers(serve, *options):
    """geopyro-serve of the Service with two workers on a free port; returns (the arbiter, the service's uri)."""
    port = free_port()
    served = serve("service:Service", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--id", "svc", *options)
    served.wait_for("slot 1) serving")
    return served, "PYRO:svc@127.0.0.1:%d" % port


def pid_of(uri):
    with api.Proxy(uri) as proxy:
        return proxy.pid()


def worker_pids(uri, connections=40):
    """The worker pids that fresh connections reached."""
    return {pid_of(uri) for _ in range(connections)}


class Caller(threading.Thread):
    """Calls pid() on a fresh connection, again and again, until stopped; records pids and errors."""

    def __init__(self, uri):
        super().__init__(daemon=True)
        self.uri = uri
        self.pids = []
        self.errors = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.pids.append(pid_of(self.uri))
            except Exception as exc:  # noqa: BLE001 - every failure counts against the arbiter
                self.errors.append(repr(exc))

    def stop(self):
        self._halt.set()
        self.join(30)
        return self


def alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):  # (reaped meanwhile)
        return False


@pytest.mark.parametrize("mode", ["reuseport", "shared-socket"])
def test_workers_share_one_port_and_one_uri(serve, mode):
    port = free_port()
    args = ["service:Service", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--id", "svc"]
    served = serve(*(args + (["--shared-socket"] if mode == "shared-socket" else [])))
    served.wait_for("slot 1) serving")
    assert ("one socket each (SO_REUSEPORT)" if mode == "reuseport" else "one shared socket") in served.output()
    uri = "PYRO:svc@127.0.0.1:%d" % port
    assert "uri = " + uri in served.output()
    if mode == "reuseport":  # (the kernel spreads connections over the workers' sockets)
        assert len(worker_pids(uri)) == 2
    else:  # (one queue, which both workers take from: whichever accepts first)
        assert worker_pids(uri) <= served.worker_pids()
    assert served.stop() == 0
    assert "stopped" in served.output()


def test_nathost_and_natport_go_into_the_uri_the_workers_report(serve):
    """Behind a NAT or port forward: the URI names the outside address, the workers listen on the inside one."""
    port = free_port()
    served = serve("service:Service", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--id", "svc",
                   "--nathost", "gateway.example", "--natport", "4444")
    served.wait_for("slot 1) serving")
    assert "uri = PYRO:svc@gateway.example:4444" in served.output()
    assert pid_of("PYRO:svc@127.0.0.1:%d" % port) in served.worker_pids()  # (what the forward reaches)
    assert served.stop() == 0


def test_sessions_stay_with_their_connections_worker(serve):
    port = free_port()
    served = serve("service:Counter", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--id", "counter")
    served.wait_for("slot 1) serving")
    proxies = [api.Proxy("PYRO:counter@127.0.0.1:%d" % port) for _ in range(8)]
    try:
        for proxy in proxies:
            first = proxy.next()
            assert [proxy.next() for _ in range(3)] == [(first[0], 2), (first[0], 3), (first[0], 4)]
    finally:
        for proxy in proxies:
            proxy._pyroRelease()
    served.stop()


MODES = {"reuseport": [], "shared-socket": ["--shared-socket"]}


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_dies_is_restarted_and_no_connection_is_refused(serve, mode):
    served, uri = two_workers(serve, *MODES[mode])
    before = served.worker_pids()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    caller = Caller(uri)
    caller.start()  # (its connections meant for the dead worker wait in its socket's queue for the new one)
    try:
        assert wait_until(lambda: len(served.worker_pids()) == 3 and len(caller.pids) > 20, 30), served.output()
    finally:
        caller.stop()
    assert caller.errors == []
    assert "restarting it" in served.output()
    assert victim not in caller.pids[-10:] and victim not in worker_pids(uri)
    assert served.stop() == 0


def test_a_slot_whose_worker_cannot_start_is_tried_again_until_it_can(serve, tmp_path):
    served, uri = two_workers(serve)
    (tmp_path / "broken").write_text("")
    os.kill(min(served.worker_pids()), signal.SIGKILL)
    served.wait_for("could not start a worker for slot")
    assert "this deploy is broken" in served.output()
    (tmp_path / "broken").unlink()
    assert wait_until(lambda: len(served.worker_pids()) == 3, 30), served.output()
    assert len(worker_pids(uri)) == 2  # (both slots serve again)
    assert served.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_sighup_replaces_every_worker_without_refusing_a_connection(serve, mode):
    served, uri = two_workers(serve, *MODES[mode])
    old = served.worker_pids()
    callers = [Caller(uri) for _ in range(3)]
    for caller in callers:
        caller.start()
    try:
        served.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: not any(alive(pid) for pid in old), 60), served.output()
        new = served.worker_pids() - old
        served_after = worker_pids(uri)
    finally:
        for caller in callers:
            caller.stop()
    assert [caller.errors for caller in callers] == [[], [], []]
    assert len(new) == 2 and served_after <= new
    assert all(caller.pids for caller in callers)
    assert served.stop() == 0


def test_ctrl_c_stops_everything_quietly(serve):
    port = free_port()
    served = serve("service:Service", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--id", "svc")
    served.wait_for("slot 1) serving")
    pids = worker_pids("PYRO:svc@127.0.0.1:%d" % port)
    assert served.stop(signal.SIGINT) == 0
    assert not any(alive(pid) for pid in pids)
    assert "Traceback" not in served.output()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_workers_0_means_one_per_core(serve):
    cores = min(2, workers.cpu_count())  # (the arbiter runs on at most 2 cores: its count is theirs)
    served = serve("service:Service", "-w", "0", "-n", "127.0.0.1", "-p", str(free_port()),
                   cpus=sorted(os.sched_getaffinity(0))[:cores])
    served.wait_for("slot %d) serving" % (cores - 1))
    assert "%d workers" % cores in served.output()
    served.stop()


def test_a_service_that_cannot_load_is_refused_with_the_reason(serve):
    served = serve("service:Missing", "-n", "127.0.0.1")
    assert served.exit_code() == 1
    assert "a worker could not start: AttributeError" in served.output() and "Missing" in served.output()
    assert "Traceback" in served.output()  # (the worker's, so that the reason is plain)


def test_the_service_is_registered_in_the_name_server_under_one_uri(serve, daemons, clean_config):
    from geopyro import nameserver
    ns_uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    port = free_port()
    served = serve("service:Service", "-w", "2", "-n", "127.0.0.1", "-p", str(port), "--ns", "example.service",
                   env={"PYRO_NS_HOST": "127.0.0.1", "PYRO_NS_PORT": str(ns_uri.port)})
    served.wait_for("slot 1) serving")
    with api.Proxy(ns_uri) as ns:
        uri = ns.lookup("example.service")
        assert str(uri) == "PYRO:example.service@127.0.0.1:%d" % port
        assert len(worker_pids("PYRONAME:example.service@127.0.0.1:%d" % ns_uri.port)) == 2
        assert served.stop() == 0
        assert "example.service" not in ns.list()  # (a service that stopped is no longer found)


def test_serve_with_workers_forks_them_from_the_program(serve):
    port = free_port()
    served = serve("forked.py", str(port), module=None)
    served.wait_for("Pyro daemon running (2 workers).")
    assert "uri = PYRO:svc@127.0.0.1:%d" % port in served.output()
    assert len(worker_pids("PYRO:svc@127.0.0.1:%d" % port)) == 2
    assert served.stop() == 0
