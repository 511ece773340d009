"""Churn, faults and load against a daemon subprocess: nothing leaks, nothing is lost, later calls are served.

Quick versions run in the default suite; ``GEOPYRO_SOAK=1`` runs the long forms (10x the cycles).
Measured per server type: the server's open descriptors (/proc/<pid>/fd), live greenlet objects (gc),
live session instances (a WeakSet) and RSS before and after.
"""

import os
import socket
import struct

import gevent
import gevent.pool
import pytest

from certs import RawClient, ServerProcess, Watchdog
from geopyro import protocol
from geopyro.api import Proxy
from geopyro.errors import CommunicationError
from support import wait_until

SOAK = os.environ.get("GEOPYRO_SOAK") == "1"
CYCLES = 20000 if SOAK else 2000
DISCONNECTS = 5000 if SOAK else 500
ONEWAY_CALLS = 200000 if SOAK else 20000
KILL_ROUNDS = 20 if SOAK else 2
CONCURRENCY = 20
WARMUP = 100
RSS_SLACK_MIB = 32  # allocator noise; a leak of one object per cycle would show far beyond this in soak form
SETTLE = 30.0  # hang guard for "back to baseline"
THREADPOOL_SIZE = 80  # the server's config.THREADPOOL_SIZE (the default)


@pytest.fixture
def server(tmp_path, servertype):
    config = {"SERVERTYPE": servertype, "ITER_STREAM_LINGER": 0.0, "POLLTIMEOUT": 0.5}
    with ServerProcess(tmp_path, config) as proc:
        yield proc
        assert proc.alive, "the server died; stderr:\n" + proc.stderr()[-4000:]


class Health:
    """Samples of the server's resources, over one long-lived probe connection (part of every baseline)."""

    def __init__(self, server):
        self.server = server
        self.probe = Proxy(server.info["service"])

    def sample(self):
        stats = self.probe.stats()
        stats["fds"] = self.server.fd_count()
        return stats

    def baseline(self, clients=2):
        """A sample once only ``clients`` connections (the probe and the watchdog) are left and no session lives."""
        last = {}

        def quiet():
            last.update(self.sample())
            return last["sockets"] == clients + 1 and last["sessions"] == 0 and last["streams"] == 0
        assert wait_until(quiet, SETTLE, 0.05), "the server did not get quiet: %s" % last
        return dict(last)

    def settled(self, baseline):
        """Wait until descriptors, greenlets, sessions and streams are back at the baseline; the last sample."""
        keys = ("fds", "greenlets", "sessions", "streams", "sockets")
        last = {}

        def back():
            last.update(self.sample())
            extra_fds = 2 * max(0, last["wake_pipes"] - baseline["wake_pipes"])  # bounded by THREADPOOL_SIZE
            return all(last[key] <= baseline[key] + (extra_fds if key == "fds" else 0) for key in keys)
        assert wait_until(back, SETTLE, 0.05), "not back to baseline: %s vs %s" % (
            {key: last[key] for key in keys}, {key: baseline[key] for key in keys})
        # pool threads may stay warm a while, but never more than the two pools (calls and oneway calls) hold
        assert last["threads"] <= baseline["threads"] + 2 * THREADPOOL_SIZE, (last["threads"], baseline["threads"])
        return last

    def close(self):
        self.probe._pyroRelease()


def report(what, servertype, baseline, peak, after, count):
    def trio(key):
        return "%s %d->%s->%d" % (key, baseline[key], peak.get(key, "?"), after[key])
    print("%s (%s, %d): %s %s %s RSS %d->%d KiB" % (what, servertype, count, trio("fds"), trio("greenlets"),
                                                     trio("sessions"), baseline["rss_kib"], after["rss_kib"]))


def run_pool(func, count):
    pool = gevent.pool.Pool(CONCURRENCY)
    jobs = [pool.spawn(func, number) for number in range(count)]
    done = gevent.joinall(jobs, timeout=600, raise_error=True)
    assert len(done) == count


def cycle(uri):
    def one(number):
        with Proxy(uri) as proxy:
            assert isinstance(proxy.hello(), int)
            if number % 10 == 0:
                assert list(proxy.numbers(5)) == [0, 1, 2, 3, 4]
            elif number % 10 == 1:
                stream = proxy.numbers(1000)
                assert next(stream) == 0  # abandoned mid-stream: the server drops it when we leave
    return one


def test_connect_call_close_cycles(server, servertype):
    health = Health(server)
    dog = Watchdog(server.info["service"]).start()
    try:
        run_pool(cycle(server.info["session"]), WARMUP)
        baseline = health.baseline()
        run_pool(cycle(server.info["session"]), CYCLES)
        dog.progressing()
        after = health.settled(baseline)
        assert after["sessions_made"] >= baseline["sessions_made"] + CYCLES
        report("connect/call/close cycles", servertype, baseline, {}, after, CYCLES)
        assert (after["rss_kib"] - baseline["rss_kib"]) / 1024 < RSS_SLACK_MIB
    finally:
        dog.stop()
        health.close()


def invoke(client, method, vargs):
    return client.invoke_bytes(client.serializer.dumpsCall("session", method, vargs, {}))


def disconnect(location, number):
    """One client that leaves at a bad moment; which moment depends on ``number``."""
    client = RawClient(location)
    try:
        kind = number % 5
        if kind == 4:  # halfway through the handshake
            message = protocol.encode(protocol.MSG_CONNECT, 0, 0, 1, b"{'handshake':'x','object':'session'}")
            client.send(message[:len(message) // 2])
            return kind
        client.connect("session")
        if kind in (0, 1):  # while the server runs the call
            client.send(invoke(client, "slow", [0.005]))
            if kind == 1:  # abortive close: RST instead of FIN
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif kind == 2:  # halfway through a request
            message = invoke(client, "hello", [])
            client.send(message[:len(message) - 3])
        elif kind == 3:  # in the middle of a streamed result
            client.send(invoke(client, "numbers", [1000]))
            client.receive()
        return kind
    finally:
        client.close()


def test_mid_call_disconnects(server, servertype):
    health = Health(server)
    dog = Watchdog(server.info["service"]).start()
    try:
        for number in range(20):
            disconnect(server.location, number)
        baseline = health.baseline()
        peak = {}
        for number in range(DISCONNECTS):
            disconnect(server.location, number)
            if number % 100 == 99:
                sample = health.sample()
                for key in ("fds", "greenlets", "sessions"):
                    peak[key] = max(peak.get(key, 0), sample[key])
                dog.progressing()
        after = health.settled(baseline)
        report("mid-call disconnects", servertype, baseline, peak, after, DISCONNECTS)
        assert (after["rss_kib"] - baseline["rss_kib"]) / 1024 < RSS_SLACK_MIB
        assert health.probe.stats()["streams"] == 0
    finally:
        dog.stop()
        health.close()


def test_killed_and_restarted_server(tmp_path, servertype, clean_config):
    config = {"SERVERTYPE": servertype}
    server = ServerProcess(tmp_path, config)
    try:
        port = int(server.location.rsplit(":", 1)[1])
        uri = server.info["service"]
        clean_config.MAX_RETRIES = 1
        retrying = Proxy(uri)
        clean_config.MAX_RETRIES = 0
        plain = Proxy(uri)
        assert retrying.echo(0) == 0 and plain.echo(0) == 0
        recovered = 0
        for round_number in range(1, KILL_ROUNDS + 1):
            server.kill()
            with Proxy(uri) as down:  # nobody home
                with pytest.raises(CommunicationError):
                    down.ping()

            def reconnect_while_down():
                proxy = Proxy(uri)
                proxy._pyroReconnect(tries=30)  # tries every 2 s; the first try finds the server down
                result = proxy.echo("back")
                proxy._pyroRelease()
                return result
            waiter = None
            if round_number == 1:  # (costs the 2 s pause between tries, so only once)
                waiter = gevent.spawn(reconnect_while_down)
                gevent.sleep(0)  # let it make its first (failing) attempt now, while the server is down
            server = ServerProcess(tmp_path, config, port=port)
            assert server.info["service"] == uri  # same address, same object id
            assert retrying.echo(round_number) == round_number  # MAX_RETRIES: reconnected transparently
            with pytest.raises(CommunicationError):
                plain.echo(round_number)  # no retries: the lost connection is reported ...
            plain._pyroReconnect()  # ... and _pyroReconnect brings it back
            assert plain.echo(round_number) == round_number
            if waiter is not None:
                assert waiter.get(timeout=60) == "back"
            recovered += 2 if waiter is None else 3
        print("kill/restart (%s): %d rounds, %d proxies recovered, calls lost: none"
              % (servertype, KILL_ROUNDS, recovered))
        retrying._pyroRelease()
        plain._pyroRelease()
    finally:
        server.kill()


def test_oneway_storm_is_bounded(server, servertype):
    health = Health(server)
    dog = Watchdog(server.info["service"]).start()
    baseline = health.baseline()
    peak_rss = baseline["rss_kib"]
    try:
        with Proxy(server.info["service"]) as storm:
            for number in range(ONEWAY_CALLS):
                storm.oneway_slow(0.05)
                if number % 2000 == 1999:
                    peak_rss = max(peak_rss, server.rss_kib())
                    gevent.sleep(0)
        dog.progressing()
        # stats() runs gc.collect(): polled gently, so it does not starve the server it measures
        assert wait_until(lambda: health.probe.stats()["oneway_done"] == ONEWAY_CALLS or not server.alive, 120, 0.25)
        stats = health.probe.stats()
        assert stats["oneway_done"] == ONEWAY_CALLS  # none lost
        assert stats["oneway_max_running"] <= 1024  # the daemon's oneway pool size
        dog.progressing()
        after = health.settled(baseline)
        peak_rss = max(peak_rss, after["rss_kib"])
        print("oneway storm (%s): %d oneway calls of 0.05 s, at most %d running at once, all %d done; RSS %d -> "
              "peak %d -> %d KiB; greenlets %d -> %d; well-behaved client %d calls"
              % (servertype, ONEWAY_CALLS, stats["oneway_max_running"], stats["oneway_done"], baseline["rss_kib"],
                 peak_rss, after["rss_kib"], baseline["greenlets"], after["greenlets"], dog.calls))
        assert (peak_rss - baseline["rss_kib"]) / 1024 < 64
    finally:
        dog.stop()
        health.close()


def test_long_calls_do_not_count_as_idleness(tmp_path, servertype):
    """A call longer than COMMTIMEOUT (blocking a multiplex loop) gets its reply, and clients that sent a
    request meanwhile are served, not dropped as idle."""
    config = {"SERVERTYPE": servertype, "COMMTIMEOUT": 0.5, "POLLTIMEOUT": 0.1}
    with ServerProcess(tmp_path, config) as server:
        dog = Watchdog(server.info["service"]).start()
        try:
            with Proxy(server.info["service"]) as proxy:
                proxy._pyroTimeout = 30
                for _ in range(2):
                    assert proxy.burn(1.0) == 1.0
                    dog.progressing()
        finally:
            dog.stop()
        assert server.alive
