"""The multiplex server type, event-loop integration, combine(), and the connected-socket daemon."""

import selectors
import socket
import threading
import time

import gevent
import gevent.monkey
import pytest

import geopyro.api as api
from geopyro import errors, protocol
from geopyro.servers.greenlet import GreenletServer
from support import wait_until


class OverlapProbe:
    """Records how many calls were in progress at once."""

    def __init__(self):
        self.active = 0
        self.most = 0

    @api.expose
    def probe(self, seconds):
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            gevent.sleep(seconds)  # yields: a greenlet server may start other calls meanwhile
        finally:
            self.active -= 1
        return self.most


def concurrent_probes(uri, clients):
    results = []

    def call():
        with api.Proxy(uri) as proxy:
            results.append(proxy.probe(0.05))

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_multiplex_runs_one_call_at_a_time(daemons, clean_config):
    clean_config.SERVERTYPE = "multiplex"
    probe = OverlapProbe()
    uri = daemons.serve(probe)
    results = concurrent_probes(uri, 8)
    assert len(results) == 8
    assert probe.most == 1


def test_greenlet_server_overlaps_cooperative_calls(daemons, clean_config):
    clean_config.SERVERTYPE = "greenlet"
    probe = OverlapProbe()
    uri = daemons.serve(probe)
    concurrent_probes(uri, 8)
    assert probe.most > 1


def test_servertype_thread_is_the_greenlet_server_with_calls_on_threads(daemons, clean_config):
    clean_config.SERVERTYPE = "thread"
    daemon = daemons.start()
    assert isinstance(daemon.transportServer, GreenletServer)
    assert type(daemon.transportServer).__name__ == "SocketServer_Threadpool"  # Pyro5's name, which code checks
    assert str(daemon.transportServer) == "thread"

    @api.expose
    class WhereAmI:
        def thread(self):
            return gevent.monkey.get_original("_thread", "get_ident")()

    uri = daemon.register(WhereAmI)
    assert wait_until(lambda: daemon.transportServer._loop.running)
    with api.Proxy(uri) as proxy:
        assert proxy.thread() != daemon.transportServer._loop.thread  # patched or not: a real thread


@pytest.mark.parametrize("servertype", ["multiplex", "greenlet"])
def test_combine_serves_both_daemons_from_one_loop(clean_config, servertype):
    clean_config.SERVERTYPE = servertype
    clean_config.POLLTIMEOUT = 0.1

    @api.expose
    class Named:
        def __init__(self, name):
            self.name = name

        def who(self):
            return self.name

    first, second = api.Daemon(host="127.0.0.1"), api.Daemon(host="127.0.0.1")
    uri1, uri2 = first.register(Named("first")), second.register(Named("second"))
    first.combine(second)
    loop = threading.Thread(target=first.requestLoop, daemon=True)
    loop.start()
    try:
        with api.Proxy(uri1) as p1, api.Proxy(uri2) as p2:
            assert (p1.who(), p2.who()) == ("first", "second")
    finally:
        first.shutdown()
        loop.join(10)
        second.close()
    assert not loop.is_alive()


def test_multiplex_cannot_combine_with_a_greenlet_daemon(clean_config):
    clean_config.SERVERTYPE = "multiplex"
    with api.Daemon(host="127.0.0.1") as mux:
        clean_config.SERVERTYPE = "greenlet"
        with api.Daemon(host="127.0.0.1") as green:
            with pytest.raises(errors.PyroError, match="multiplex"):
                mux.combine(green)


def test_events_driven_from_an_external_selectors_loop(clean_config):
    clean_config.SERVERTYPE = "multiplex"

    @api.expose
    class Adder:
        def add(self, a, b):
            return a + b

    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Adder)
    stop = threading.Event()
    rounds = []

    def external_loop():
        selector = selectors.DefaultSelector()
        while not stop.is_set():
            registered = set()
            for sock in daemon.sockets:
                selector.register(sock, selectors.EVENT_READ)
                registered.add(sock)
            ready = [key.fileobj for key, _ in selector.select(0.05)]
            for sock in registered:
                selector.unregister(sock)
            if ready:
                rounds.append(len(ready))
                daemon.events(ready)
        selector.close()

    loop = threading.Thread(target=external_loop, daemon=True)
    loop.start()
    try:
        with api.Proxy(uri) as proxy:
            assert [proxy.add(i, i) for i in range(5)] == [0, 2, 4, 6, 8]
    finally:
        stop.set()
        loop.join(10)
        daemon.close()
    assert rounds, "the external loop never dispatched anything"


def test_daemon_and_proxy_over_a_socketpair(clean_config):
    @api.expose
    class Echo:
        def echo(self, value):
            return value

    server_end, client_end = socket.socketpair()
    daemon = api.Daemon(connected_socket=server_end)
    daemon.register(Echo, "echo")
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    proxy = api.Proxy("echo", connected_socket=client_end)
    assert proxy.echo([1, "two"]) == [1, "two"]
    assert daemon.locationStr.startswith("./u:")
    client_end.close()  # the daemon's loop ends when its one connection closes
    loop.join(10)
    assert not loop.is_alive()
    daemon.close()
    server_end.close()


def _raw_client(location):
    host, port = location.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def test_stalled_client_does_not_stop_multiplex_and_is_closed_after_commtimeout(daemons, clean_config):
    clean_config.SERVERTYPE = "multiplex"
    clean_config.COMMTIMEOUT = 0.5
    clean_config.POLLTIMEOUT = 0.1

    @api.expose
    class Adder:
        def add(self, a, b):
            return a + b

    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Adder)
    daemons.start(daemon)
    stalled = _raw_client(daemon.locationStr)
    stalled.sendall(b"PYRO\x01\xf6\x01")  # half a header, then silence
    with api.Proxy(uri) as proxy:
        proxy._pyroTimeout = 10
        for i in range(3):
            assert proxy.add(i, 1) == i + 1
        # keep the well-behaved client busy past COMMTIMEOUT: it is served throughout
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert proxy.add(1, 1) == 2
    stalled.settimeout(10)
    assert stalled.recv(100) == b"", "the stalled connection should have been closed by the server"
    stalled.close()


@pytest.mark.parametrize("servertype", ["multiplex", "greenlet"])
def test_client_vanishing_mid_message_is_dropped_cleanly(daemons, clean_config, servertype):
    clean_config.SERVERTYPE = servertype
    disconnects = []

    class Watching(api.Daemon):
        def clientDisconnect(self, conn):
            disconnects.append(conn)

    @api.expose
    class Adder:
        def add(self, a, b):
            return a + b

    daemon = Watching(host="127.0.0.1")
    uri = daemon.register(Adder)
    daemons.start(daemon)
    with api.Proxy(uri) as proxy:
        assert proxy.add(1, 2) == 3
        baseline = len(daemon.sockets)
        # a real client: handshake, then half of an INVOKE, then gone
        rude = api.Proxy(uri)
        rude._pyroBind()
        assert wait_until(lambda: len(daemon.sockets) == baseline + 1)
        message = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"('x','y',(),{})" * 10)
        rude._pyroConnection.sock.sendall(message[:len(message) // 2])
        rude._pyroRelease()
        assert wait_until(lambda: len(daemon.sockets) == baseline)
        assert wait_until(lambda: len(disconnects) == 1)
        assert proxy.add(2, 2) == 4


def test_multiplex_keeps_its_own_message_size_limit(daemons, clean_config):
    """A connection keeps the MAX_MESSAGE_SIZE it was accepted under: raising the global later does not lift it."""
    clean_config.SERVERTYPE = "multiplex"
    clean_config.MAX_MESSAGE_SIZE = 100000

    @api.expose
    class Sink:
        def size(self, data):
            return len(data)

    uri = daemons.serve(Sink)
    with api.Proxy(uri) as proxy:
        assert proxy.size("x" * 1000) == 1000
        clean_config.MAX_MESSAGE_SIZE = 10 * 1000 * 1000  # lets the client send the big one
        with pytest.raises(errors.CommunicationError):
            proxy.size("x" * 1000 * 1000)
    with api.Proxy(uri) as proxy:
        assert proxy.size("x" * 1000) == 1000  # the server goes on


def test_oneway_runs_in_its_own_greenlet_on_multiplex(daemons, clean_config):
    clean_config.SERVERTYPE = "multiplex"
    # threading's Event: the two calls may run on different pool threads (gevent's own Event before 26.9
    # can hang when set from one worker thread while another worker thread waits on it)
    release = threading.Event()
    finished = threading.Event()

    @api.expose
    class Worker:
        @api.oneway
        def background(self):
            release.wait(10)
            finished.set()

        def release_it(self):
            release.set()
            return "released"

    uri = daemons.serve(Worker)
    with api.Proxy(uri) as proxy:
        proxy.background()
        # the loop is free while the oneway call waits, so this call is served and releases it
        assert proxy.release_it() == "released"
    assert finished.wait(10)


@pytest.mark.parametrize("servertype", ["multiplex", "greenlet"])
def test_combine_with_a_name_server_daemon(clean_config, servertype):
    from geopyro import nameserver

    clean_config.SERVERTYPE = servertype
    clean_config.POLLTIMEOUT = 0.1

    @api.expose
    class Service:
        def hello(self):
            return "hello"

    ns_uri, ns_daemon, bc_server = nameserver.start_ns(host="127.0.0.1", port=0, enableBroadcast=False)
    assert bc_server is None
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Service, "service")
    daemon.combine(ns_daemon)  # one request loop serves the application and its name server
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    try:
        with api.Proxy(ns_uri) as ns:
            ns.register("example.service", uri)
            assert ns.lookup("example.service") == uri
        with api.Proxy("PYRONAME:example.service@127.0.0.1:%d" % ns_uri.port) as service:
            assert service.hello() == "hello"
    finally:
        daemon.shutdown()
        loop.join(10)
        ns_daemon.close()
    assert not loop.is_alive()
