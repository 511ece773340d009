"""Scale and concurrency: thousands of connections on one daemon, hundreds of calls at once.

No timing thresholds: overlap is proven with counters the server keeps, not with stopwatches.

For comparison (not asserted here, Pyro5 is not under test): Pyro5's default "thread" server has a
worker pool of THREADPOOL_SIZE=80 threads, one per connection, so it refuses the 81st simultaneous
client; that client's handshake gets CONNECTFAIL ("no free workers, increase server threadpool size")
and Pyro5 raises CommunicationError. A geopyro greenlet daemon has no such ceiling, which is what
``test_2000_simultaneous_connections`` demonstrates.
"""

import json
import os
import resource
import subprocess
import sys
import time

import gevent
import gevent.event
import gevent.pool
import pytest

import geopyro.api as api
from support import first_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONNECTIONS = 2000
CONCURRENT_CALLS = 500
CONNECT_BURST = 250
STARTUP_DEADLINE = 30.0
JOIN_DEADLINE = 120.0  # a hang guard only; the tests take a few seconds

SERVER_SCRIPT = r'''
import json
import resource
import sys

sys.path.insert(0, sys.argv[1])
needed = int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < needed:
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard), hard))

import geopyro.api as api
from geopyro.callcontext import current_context

api.config.SERVERTYPE = sys.argv[2]


class CountingDaemon(api.Daemon):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.live = set()  # connections that made a call and are still open

    def clientDisconnect(self, conn):
        self.live.discard(conn)


@api.expose
class Service:
    def __init__(self, daemon):
        self.daemon = daemon
        self.peers = set()  # (host, port) of every client that called touch()
        self.max_live = 0

    def touch(self):
        self.daemon.live.add(current_context.client)
        self.peers.add(tuple(current_context.client_sock_addr))
        self.max_live = max(self.max_live, len(self.daemon.live))
        return len(self.daemon.live)

    def stats(self):
        return {"sockets": len(self.daemon.sockets), "live": len(self.daemon.live), "max_live": self.max_live,
                "peer_ports": sorted(port for _, port in self.peers), "servertype": str(self.daemon.transportServer)}


daemon = CountingDaemon(host="127.0.0.1")
uri = daemon.register(Service(daemon), "scale.service")
print(json.dumps({"uri": str(uri), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}), flush=True)
daemon.requestLoop()
'''


def ensure_nofile(needed):
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (up to the hard limit); skip if impossible."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs" % (hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.fixture
def scale_server(tmp_path, servertype):
    """A geopyro daemon in a subprocess (its own descriptor table) with SERVERTYPE set; yields its info."""
    needed = CONNECTIONS + 200
    ensure_nofile(needed)
    script = tmp_path / "scale_server.py"
    script.write_text(SERVER_SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}
    proc = subprocess.Popen([sys.executable, str(script), ROOT, servertype, str(needed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
    try:
        info = json.loads(first_line(proc, time.monotonic() + STARTUP_DEADLINE, "the scale server"))
        if info["nofile"] < needed:
            pytest.skip("the server process could not raise RLIMIT_NOFILE to %d" % needed)
        yield info
        assert proc.poll() is None, "the scale server died during the test"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def run_all(greenlets):
    """Wait for all greenlets; fail (and kill the stragglers) if any has not finished by the hang guard."""
    done = gevent.joinall(greenlets, timeout=JOIN_DEADLINE)
    if len(done) != len(greenlets):
        gevent.killall([g for g in greenlets if not g.dead])
        pytest.fail("%d of %d greenlets did not finish" % (len(greenlets) - len(done), len(greenlets)))
    errors = [g.exception for g in greenlets if g.exception is not None]
    assert not errors, "%d greenlets failed, first: %r" % (len(errors), errors[0])
    return [g.value for g in greenlets]


def test_2000_simultaneous_connections(scale_server, servertype):
    """2,000 proxies are connected to one daemon at the same time and each completes a call."""
    proxies = [api.Proxy(scale_server["uri"]) for _ in range(CONNECTIONS)]
    try:
        def connect(proxy):
            proxy._pyroClaimOwnership()
            proxy._pyroBind()
            return proxy._pyroLocalSocket[1]

        # at most CONNECT_BURST handshakes in flight, so a busy server's listen backlog (1024) never overflows
        # into SYN retransmits; the connections stay open, so all 2,000 are connected at the end
        burst = gevent.pool.Pool(CONNECT_BURST)
        local_ports = run_all([burst.spawn(connect, proxy) for proxy in proxies])
        assert len(set(local_ports)) == CONNECTIONS  # 2,000 distinct connections are open now

        def call(proxy):
            proxy._pyroClaimOwnership()
            return proxy.touch()

        live_counts = run_all([gevent.spawn(call, proxy) for proxy in proxies])
        assert len(live_counts) == CONNECTIONS
        assert max(live_counts) == CONNECTIONS  # the last call saw all 2,000 connections alive at once

        proxies[0]._pyroClaimOwnership()
        stats = proxies[0].stats()
        assert stats["servertype"] == servertype  # the subprocess really runs the parametrized type
        assert stats["live"] == CONNECTIONS
        assert stats["max_live"] == CONNECTIONS
        assert stats["sockets"] == CONNECTIONS + 1  # every client socket plus the listening socket
        assert stats["peer_ports"] == sorted(local_ports)  # the server saw exactly our 2,000 connections
    finally:
        for proxy in proxies:
            proxy._pyroClaimOwnership()
            proxy._pyroRelease()


@api.expose
class Overlap:
    """Every call counts itself in, sleeps cooperatively, then waits until all expected calls were in at once."""

    DEADLINE = 10.0  # generous: without overlap the calls give up waiting and report a smaller maximum

    def __init__(self, expected):
        self.expected = expected
        self.in_progress = 0
        self.max_in_progress = 0
        self.all_in = gevent.event.Event()
        self.deadline = None

    @api.cooperative  # gevent code: it runs inline, so 500 calls can be in progress on greenlets at once
    def slow(self):
        if self.deadline is None:
            self.deadline = time.monotonic() + self.DEADLINE  # one deadline shared by all calls
        self.in_progress += 1
        try:
            self.max_in_progress = max(self.max_in_progress, self.in_progress)
            if self.in_progress >= self.expected:
                self.all_in.set()
            remaining = self.deadline - time.monotonic()
            if remaining > 0:  # past the deadline (a failing run) calls return at once, so failure is quick
                gevent.sleep(0.2)
                self.all_in.wait(remaining)
            return self.max_in_progress
        finally:
            self.in_progress -= 1


@pytest.mark.parametrize("servertype", ["greenlet"], indirect=True)
def test_500_concurrent_sleeping_calls_overlap(daemons, servertype):
    """500 calls to a method doing gevent.sleep(0.2) are all in progress at the same time.

    Only for the greenlet server type: it serves each connection in its own greenlet. The multiplex
    server type handles one request at a time by design, so there these calls must NOT overlap;
    that is why this test is parametrized explicitly instead of over every server type.
    """
    ensure_nofile(2 * CONCURRENT_CALLS + 200)  # client and server sockets live in this process
    service = Overlap(CONCURRENT_CALLS)
    uri = daemons.serve(service)

    def call():
        with api.Proxy(uri) as proxy:
            return proxy.slow()

    results = run_all([gevent.spawn(call) for _ in range(CONCURRENT_CALLS)])
    assert results == [CONCURRENT_CALLS] * CONCURRENT_CALLS
    assert service.max_in_progress == CONCURRENT_CALLS
