"""The Daemon: registry, URIs, NAT, request loop, hooks, connection handling, over real sockets."""

import gc
import socket
import threading
import time
import weakref

import pytest

from geopyro import core, errors, protocol, serializers
from geopyro.callcontext import current_context
from geopyro.client import Proxy
from geopyro.server import Daemon, DaemonObject, expose
from support import wait_until


@expose
class Thing:
    created = []

    def __init__(self):
        Thing.created.append(weakref.ref(self))

    def echo(self, value):
        return value

    def fail(self, a, b):
        raise ValueError("failed with %s %s" % (a, b))

    def whoami(self):
        return id(self)

    def client_id(self):
        return id(current_context.client)

    def stop_daemon(self):
        self._pyroDaemon.shutdown()
        return "stopping"


@pytest.fixture(autouse=True)
def reset_thing():
    Thing.created = []
    yield
    Thing.created = []


def test_register_object_and_class(servertype):
    with Daemon(host="127.0.0.1") as daemon:
        obj = Thing()
        uri = daemon.register(obj)
        assert isinstance(uri, core.URI)
        assert uri.protocol == "PYRO"
        assert uri.object.startswith("obj_") and len(uri.object) > 10
        assert uri.location == daemon.locationStr
        assert daemon.objectsById[uri.object] is obj
        uri2 = daemon.register(Thing, "my.thing")
        assert str(uri2) == "PYRO:my.thing@" + daemon.locationStr
        assert daemon.objectsById["my.thing"] is Thing
        assert Thing._pyroId == "my.thing"
        assert set(daemon.objectsById) == {core.DAEMON_NAME, uri.object, "my.thing"}


def test_register_duplicate_and_force(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    first, second = Thing(), Thing()
    uri = daemon.register(first, "dup")
    with pytest.raises(errors.DaemonError):
        daemon.register(second, "dup")
    with pytest.raises(errors.DaemonError):
        daemon.register(first)  # same object again, other id
    assert daemon.objectsById["dup"] is first
    uri2 = daemon.register(second, "dup", force=True)
    assert uri2 == uri
    assert daemon.objectsById["dup"] is second
    daemons.start(daemon)
    with Proxy(uri) as p:
        assert p.whoami() == id(second)


def test_register_weak(servertype):
    with Daemon(host="127.0.0.1") as daemon:
        obj = Thing()
        daemon.register(obj, "weakling", weak=True)
        assert "weakling" in daemon.objectsById
        assert obj._pyroId == "weakling"
        strong = Thing()
        daemon.register(strong, "strong")
        del obj
        gc.collect()
        assert "weakling" not in daemon.objectsById
        assert "strong" in daemon.objectsById


def test_register_weak_reachable_while_alive(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    obj = Thing()
    uri = daemon.register(obj, weak=True)
    daemons.start(daemon)
    with Proxy(uri) as p:
        assert p.whoami() == id(obj)


def test_register_class_weak_refused(servertype):
    with Daemon(host="127.0.0.1") as daemon:
        with pytest.raises(TypeError):
            daemon.register(Thing, weak=True)
        assert list(daemon.objectsById) == [core.DAEMON_NAME]


def test_register_invalid_id_type(servertype):
    with Daemon(host="127.0.0.1") as daemon:
        with pytest.raises(TypeError):
            daemon.register(Thing(), 42)


def test_unregister_by_object_and_by_id(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    a, b = Thing(), Thing()
    uri_a = daemon.register(a, "a")
    uri_b = daemon.register(b, "b")
    assert a._pyroId == "a" and a._pyroDaemon == daemon  # a weak proxy of it, as in Pyro5
    assert vars(a)["_pyroId"] == "a" and vars(b)["_pyroDaemon"] == daemon
    daemons.start(daemon)
    with Proxy(uri_a) as pa, Proxy(uri_b) as pb:
        assert pa.echo(1) == 1
        assert pb.echo(2) == 2
        daemon.unregister(a)
        daemon.unregister("b")
        assert "a" not in daemon.objectsById and "b" not in daemon.objectsById
        # (the class may carry these from registrations of the class itself elsewhere)
        assert "_pyroId" not in vars(a) and "_pyroDaemon" not in vars(a)
        assert vars(b)["_pyroId"] == "b"  # unregistered by its id: as in Pyro5, the object keeps its attributes
        with pytest.raises(errors.DaemonError, match="unknown object"):
            pa.echo(1)
        with pytest.raises(errors.DaemonError, match="unknown object"):
            pb.echo(2)
    class Unrelated:
        pass
    with pytest.raises(errors.DaemonError):
        daemon.unregister(Unrelated())  # never registered
    daemon.unregister(core.DAEMON_NAME)  # the daemon's own object stays
    assert core.DAEMON_NAME in daemon.objectsById
    # an unregistered object can be registered again under the same id
    assert daemon.register(a, "a") == uri_a


def test_uri_for_and_proxy_for(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    obj = Thing()
    daemon.register(obj, "thing")
    assert daemon.uriFor(obj) == core.URI("PYRO:thing@" + daemon.locationStr)
    assert daemon.uriFor("thing") == daemon.uriFor(obj)
    assert str(daemon.uriFor("not.registered")) == "PYRO:not.registered@" + daemon.locationStr  # just a string
    with pytest.raises(errors.DaemonError):
        daemon.uriFor(Thing())  # an unregistered object has no uri
    with pytest.raises(errors.DaemonError):
        daemon.proxyFor("not.registered")
    proxy = daemon.proxyFor(obj)
    assert proxy._pyroUri == daemon.uriFor(obj)
    assert "echo" in proxy._pyroMethods  # fully initialized: metadata already there
    assert proxy._pyroConnection is None
    daemons.start(daemon)
    with proxy:
        assert proxy.echo("x") == "x"


def test_nat(servertype):
    with Daemon(host="127.0.0.1", nathost="nat.example.com", natport=5555) as daemon:
        assert daemon.natLocationStr == "nat.example.com:5555"
        obj = Thing()
        uri = daemon.register(obj, "thing")
        assert str(uri) == "PYRO:thing@nat.example.com:5555"
        assert str(daemon.uriFor("thing")) == "PYRO:thing@nat.example.com:5555"
        assert str(daemon.uriFor("thing", nat=False)) == "PYRO:thing@" + daemon.locationStr
        assert str(daemon.proxyFor("thing")._pyroUri) == "PYRO:thing@nat.example.com:5555"
        assert str(daemon.proxyFor("thing", nat=False)._pyroUri) == "PYRO:thing@" + daemon.locationStr


def test_natport_zero_means_real_port(servertype):
    with Daemon(host="127.0.0.1", nathost="nat.example.com", natport=0) as daemon:
        real_port = daemon.sock.getsockname()[1]
        assert daemon.natLocationStr == "nat.example.com:%d" % real_port
        assert daemon.register(Thing, "t").port == real_port


def test_nat_from_config(clean_config, servertype):
    clean_config.NATHOST = "nat.example.com"
    clean_config.NATPORT = 4444
    with Daemon(host="127.0.0.1") as daemon:
        assert daemon.natLocationStr == "nat.example.com:4444"


def test_nat_argument_errors(tmp_path, servertype):
    with pytest.raises(ValueError):
        Daemon(host="127.0.0.1", natport=5555)
    with pytest.raises(ValueError):
        Daemon(unixsocket=str(tmp_path / "n"), nathost="nat.example.com", natport=5555)
    with Daemon(host="127.0.0.1") as daemon:
        assert daemon.natLocationStr is None
        assert daemon.uriFor("x") == daemon.uriFor("x", nat=False)


def test_reset_metadata_cache(daemons, servertype):
    @expose
    class Growing:
        def first(self):
            return 1

    daemon = Daemon(host="127.0.0.1")
    obj = Growing()
    uri = daemon.register(obj)
    daemons.start(daemon)
    with Proxy(uri) as p:
        assert p.first() == 1
    Growing.second = expose(lambda self: 2)
    Growing.second.__name__ = "second"
    with Proxy(uri) as p:
        p._pyroBind()
        assert "second" not in p._pyroMethods  # cached metadata
    daemon.resetMetadataCache(obj)
    with Proxy(uri) as p:
        assert p.second() == 2
        assert "second" in p._pyroMethods


def test_location_and_sockets(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    port = daemon.sock.getsockname()[1]
    assert daemon.locationStr == "127.0.0.1:%d" % port
    assert daemon.natLocationStr is None
    assert daemon.sockets == [daemon.sock]
    assert list(daemon.objectsById) == [core.DAEMON_NAME]
    assert isinstance(daemon.objectsById[core.DAEMON_NAME], DaemonObject)
    uri = daemon.register(Thing)
    daemons.start(daemon)
    with Proxy(uri) as p:
        p.echo(1)
        local = p._pyroLocalSocket
        assert wait_until(lambda: len(daemon.sockets) == 2)
        assert daemon.sock in daemon.sockets
        assert any(s.getpeername() == local for s in daemon.sockets if s is not daemon.sock)
    assert wait_until(lambda: len(daemon.sockets) == 1)


def test_default_host(clean_config, servertype):
    with Daemon() as daemon:
        assert daemon.locationStr.startswith("localhost:")
    clean_config.HOST = "127.0.0.1"
    with Daemon() as daemon:
        assert daemon.locationStr.startswith("127.0.0.1:")
        assert daemon.sock.getsockname()[0] == "127.0.0.1"


def test_fixed_port(servertype):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Daemon(host="127.0.0.1", port=port) as daemon:
        assert daemon.locationStr == "127.0.0.1:%d" % port


def test_daemon_object(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    daemon.register(Thing, "thing")
    daemons.start(daemon)
    with Proxy("PYRO:" + core.DAEMON_NAME + "@" + daemon.locationStr) as dp:
        assert dp.ping() is None
        assert sorted(dp.registered()) == sorted([core.DAEMON_NAME, "thing"])
        info = dp.info()
        assert daemon.locationStr in info
        meta = dp.get_metadata("thing")
        assert set(meta["methods"]) == {"echo", "fail", "whoami", "client_id", "stop_daemon"}
        assert list(meta["attrs"]) == [] and list(meta["oneway"]) == []
        with pytest.raises(errors.DaemonError):
            dp.get_metadata("nope")
        assert set(dp.get_metadata(core.DAEMON_NAME)["methods"]) >= {"ping", "info", "registered", "get_metadata"}


def test_unknown_object_id(daemons, servertype):
    uri = daemons.serve(Thing)
    with pytest.raises(errors.CommunicationError, match="unknown object"):
        Proxy(core.URI("PYRO:nope@" + uri.location))._pyroBind()


def test_request_loop_condition(servertype, clean_config):
    clean_config.POLLTIMEOUT = 0.1
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    keep_going = threading.Event()
    keep_going.set()
    asked = threading.Event()

    def condition():
        asked.set()
        return keep_going.is_set()

    loop = threading.Thread(target=daemon.requestLoop, args=(condition,), daemon=True)
    loop.start()
    try:
        with Proxy(uri) as p:
            assert p.echo(1) == 1
        assert asked.wait(5)
        assert loop.is_alive()
        keep_going.clear()
        loop.join(5)
        assert not loop.is_alive(), "requestLoop did not notice its loopCondition turned false"
    finally:
        if loop.is_alive():
            daemon.shutdown()
            loop.join(5)
        daemon.close()


def test_shutdown_from_other_thread(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    daemons.start(daemon)
    loop = daemons.running[-1][1]
    with Proxy(uri) as p:
        assert p.echo(1) == 1
    daemon.shutdown()
    loop.join(5)
    assert not loop.is_alive()
    assert daemon.transportServer is None
    with pytest.raises(errors.CommunicationError):
        Proxy(uri)._pyroBind()


def test_shutdown_from_inside_a_call(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    daemons.start(daemon)
    loop = daemons.running[-1][1]
    with Proxy(uri) as p:
        assert p.stop_daemon() == "stopping"  # the caller still gets its reply
    loop.join(5)
    assert not loop.is_alive()
    with pytest.raises(errors.CommunicationError):
        Proxy(uri)._pyroBind()


def test_close_and_context_manager(servertype):
    with Daemon(host="127.0.0.1") as daemon:
        sock = daemon.sock
        address = sock.getsockname()
        assert daemon.transportServer is not None
    assert daemon.transportServer is None
    assert sock.fileno() == -1
    with pytest.raises(errors.PyroError):
        with daemon:
            pass
    with pytest.raises(errors.DaemonError):
        daemon.requestLoop()
    daemon.close()  # closing twice is harmless
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()
    daemon2 = Daemon(host="127.0.0.1")
    daemon2.close()
    assert daemon2.transportServer is None


def test_housekeeping_called_periodically(daemons, servertype, clean_config):
    clean_config.POLLTIMEOUT = 0.1
    calls = []
    twice = threading.Event()

    class HousekeepingDaemon(Daemon):
        def housekeeping(self):
            calls.append(time.monotonic())
            if len(calls) >= 2:
                twice.set()

    daemons.start(HousekeepingDaemon(host="127.0.0.1"))
    assert twice.wait(5), "housekeeping was not called repeatedly"


def test_validate_handshake_accepts(daemons, servertype):
    received = []

    class HandshakeDaemon(Daemon):
        def validateHandshake(self, conn, data):
            received.append((data, conn.getpeername()))
            return {"welcome": data["user"]}

    daemon = HandshakeDaemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    daemons.start(daemon)
    responses = []

    class HandshakeProxy(Proxy):
        def _pyroValidateHandshake(self, response):
            responses.append(response)

    with HandshakeProxy(uri) as p:
        p._pyroHandshake = {"user": "alice"}
        assert p.echo(1) == 1
        assert received[0][0] == {"user": "alice"}
        assert tuple(received[0][1]) == tuple(p._pyroLocalSocket)
    assert responses == [{"welcome": "alice"}]


def test_validate_handshake_denies(daemons, servertype):
    class DenyingDaemon(Daemon):
        def validateHandshake(self, conn, data):
            if data != "secret":
                raise ValueError("wrong password")
            return "ok"

    daemon = DenyingDaemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    daemons.start(daemon)
    p = Proxy(uri)
    with pytest.raises(errors.CommunicationError, match="wrong password"):
        p.echo(1)
    assert p._pyroConnection is None
    p._pyroHandshake = "secret"
    with p:
        assert p.echo(2) == 2


def test_client_side_handshake_refusal(daemons, servertype):
    uri = daemons.serve(Thing)

    class PickyProxy(Proxy):
        def _pyroValidateHandshake(self, response):
            raise errors.SecurityError("I don't like %r" % response)

    p = PickyProxy(uri)
    with pytest.raises(errors.SecurityError, match="hello"):
        p._pyroBind()
    assert p._pyroConnection is None


def test_client_disconnect_hook(daemons, servertype):
    disconnected = []
    gone = threading.Event()

    class WatchingDaemon(Daemon):
        def clientDisconnect(self, conn):
            disconnected.append(id(conn))
            gone.set()

    daemon = WatchingDaemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    daemons.start(daemon)
    p = Proxy(uri)
    conn_id = p.client_id()
    assert not gone.is_set()
    p._pyroRelease()
    assert gone.wait(5), "clientDisconnect was not called"
    assert disconnected == [conn_id]


def test_methodcall_error_handler(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    handled = []

    def handler(daemon_arg, client_sock, method, vargs, kwargs, exception):
        handled.append((daemon_arg, client_sock, method.__name__, tuple(vargs), dict(kwargs), exception))

    daemon.methodcall_error_handler = handler
    daemons.start(daemon)
    with Proxy(uri) as p:
        with pytest.raises(ValueError, match="failed with 1 2"):
            p.fail(1, b=2)
        local = p._pyroLocalSocket
    assert len(handled) == 1
    daemon_arg, client_sock, name, vargs, kwargs, exception = handled[0]
    assert daemon_arg is daemon
    assert tuple(client_sock) == tuple(local)
    assert (name, vargs, kwargs) == ("fail", (1,), {"b": 2})
    assert isinstance(exception, ValueError)


def test_errors_go_to_client_and_serving_continues(daemons, servertype):
    uri = daemons.serve(Thing)
    with Proxy(uri) as p:
        for _ in range(3):
            with pytest.raises(ValueError):
                p.fail(1, 2)
            assert p.echo("still alive") == "still alive"
        with pytest.raises(AttributeError):
            p._pyroInvoke("no_such_method", (), {})
        with pytest.raises(TypeError):
            p.echo()  # wrong arguments
        assert p.echo(3) == 3
    with Proxy(uri) as p2:
        assert p2.echo(4) == 4


def test_lazy_instance_creation(daemons, servertype):
    uri = daemons.serve(Thing)
    assert Thing.created == []
    with Proxy(uri) as p:
        p._pyroBind()
        assert Thing.created == []  # connecting and getting metadata makes no instance
        p.echo(1)
        assert len(Thing.created) == 1


def test_session_instance_released_on_disconnect(daemons, servertype):
    uri = daemons.serve(Thing)
    p = Proxy(uri)
    p.echo(1)
    assert len(Thing.created) == 1
    ref = Thing.created[0]
    assert ref() is not None
    p._pyroRelease()

    def collected():
        gc.collect()
        return ref() is None

    assert wait_until(collected), "session instance still alive after the connection closed"


def test_unix_socket_daemon(daemons, servertype, tmp_path):
    path = str(tmp_path / "s")
    daemon = Daemon(unixsocket=path)
    assert daemon.locationStr == "./u:" + path
    uri = daemon.register(Thing, "thing")
    assert str(uri) == "PYRO:thing@./u:" + path
    assert uri.sockname == path
    daemons.start(daemon)
    with Proxy("PYRO:thing@./u:" + path) as p:
        assert p.echo("unix") == "unix"
        assert p._pyroConnection.family() == "Unix"
    with Proxy(uri) as p:
        assert p.echo(2) == 2


def test_unix_socket_file_removed_on_close(servertype, tmp_path):
    path = tmp_path / "s"
    with Daemon(unixsocket=str(path)):
        assert path.exists()
    assert not path.exists()


def test_unix_socket_file_removed_on_shutdown(daemons, servertype, tmp_path):
    path = tmp_path / "s"
    daemon = Daemon(unixsocket=str(path))
    uri = daemon.register(Thing)
    daemons.start(daemon)
    with Proxy(uri) as p:
        assert p.echo(1) == 1  # the loop runs
    assert path.exists()
    daemon.shutdown()
    assert not path.exists()


def test_connected_socket_daemon(daemons, servertype):
    server_end, client_end = socket.socketpair()
    daemon = Daemon(connected_socket=server_end)
    daemon.register(Thing, "thing")
    daemons.start(daemon)
    loop = daemons.running[-1][1]
    p = Proxy("thing", connected_socket=client_end)
    try:
        assert p.echo("over a socketpair") == "over a socketpair"
        with pytest.raises(ValueError):
            p.fail(1, 2)
        assert p.echo(2) == 2
    finally:
        p._pyroRelease()
        client_end.close()
    loop.join(5)
    assert not loop.is_alive(), "connected-socket daemon did not stop when the other end closed"


def test_max_connections(daemons, servertype, clean_config):
    clean_config.MAX_CONNECTIONS = 1
    uri = daemons.serve(Thing)
    with Proxy(uri) as first:
        assert first.echo(1) == 1
        second = Proxy(uri)
        second._pyroTimeout = 5  # a hang would show up as TimeoutError, not pass
        with pytest.raises(errors.CommunicationError, match="limit") as info:
            second.echo(2)
        assert not isinstance(info.value, errors.TimeoutError)
        assert first.echo(3) == 3
    with Proxy(uri) as third:  # the slot is free again once the first client left
        assert wait_until(lambda: _can_call(third))


def _can_call(proxy):
    try:
        return proxy.echo(1) == 1
    except errors.CommunicationError:
        return False


@pytest.mark.parametrize("set_when", ["before", "after"])
def test_server_commtimeout_closes_idle_connection(daemons, servertype, clean_config, set_when):
    """COMMTIMEOUT counts whether it was set before the daemon was made or after (the config is live), also for
    a pool thread that lingers on the idle connection."""
    gone = threading.Event()

    class WatchingDaemon(Daemon):
        def clientDisconnect(self, conn):
            gone.set()

    if set_when == "before":
        clean_config.COMMTIMEOUT, clean_config.POLLTIMEOUT = 0.3, 0.1
    daemon = WatchingDaemon(host="127.0.0.1")
    if set_when == "after":
        clean_config.COMMTIMEOUT, clean_config.POLLTIMEOUT = 0.3, 0.1
    uri = daemon.register(Thing)
    daemons.start(daemon)
    p = Proxy(uri)
    p._pyroTimeout = None  # only the server times out
    assert p.echo(1) == 1
    assert gone.wait(5), "the server did not drop the idle connection"
    # like Pyro5: the next call finds the connection closed (no automatic retry with MAX_RETRIES=0) ...
    with pytest.raises(errors.ConnectionClosedError):
        p.echo(2)
    assert p._pyroConnection is None
    # ... and the call after that connects again
    assert p.echo(3) == 3
    p._pyroRelease()


def test_misbehaving_raw_clients_do_not_stop_others(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Thing)
    host, port = uri.host, uri.port
    daemons.start(daemon)
    silent = socket.create_connection((host, port), timeout=5)  # connects and says nothing
    try:
        with Proxy(uri) as p:
            assert p.echo(1) == 1
            garbage = socket.create_connection((host, port), timeout=5)
            garbage.sendall(b"this is certainly not a pyro message header!" * 3)
            try:
                assert garbage.recv(100) == b""  # the server hangs up
            except ConnectionResetError:
                pass
            garbage.close()
            half = socket.create_connection((host, port), timeout=5)
            half.sendall(b"PYRO\x01\xf6\x00")  # half a header, then gone
            half.close()
            assert p.echo(2) == 2
            with Proxy(uri) as other:
                assert other.echo(3) == 3
            # an invoke before the handshake is a protocol error for that client only
            rude = socket.create_connection((host, port), timeout=5)
            rude.sendall(b"PYRO" + b"\x00" * 36)
            try:
                assert rude.recv(100) == b""
            except ConnectionResetError:
                pass
            rude.close()
            assert p.echo(4) == 4
    finally:
        silent.close()


class _BytesOnlyConnection:
    """A connection object of the user's own, as Daemon.handleRequest accepts: its send() takes bytes."""

    def __init__(self, request):
        self.request = request
        self.sent = []
        self.pyroInstances = {}
        self.tracked_resources = set()

    def recv_message(self, max_size, accepted_types=None):
        return self.request

    def send(self, data):
        assert type(data) is bytes, "a large reply reached a foreign connection in parts"
        self.sent.append(data)

    def getpeername(self):
        return ("127.0.0.1", 9)


def test_large_reply_to_a_connection_object_of_the_users_own_is_one_bytes_object():
    @expose
    class Big:
        def blob(self, size):
            return b"x" * size

    size = protocol.LARGE_BODY + 10
    serializer = serializers.get_serializer("msgpack")
    with Daemon() as daemon:
        daemon.register(Big, "big")
        request = protocol.decode(protocol.encode(protocol.MSG_INVOKE, 0, 5, serializer.serializer_id,
                                                  serializer.dumpsCall("big", "blob", [size], {})), 1 << 30)
        conn = _BytesOnlyConnection(request)
        daemon.handleRequest(conn)
    (reply,) = conn.sent
    msg = protocol.decode(reply, 1 << 30)
    assert msg.seq == 5 and not msg.flags & protocol.FLAGS_EXCEPTION
    assert serializer.loads(msg.data) == b"x" * size


@expose
class Echoer:
    def echo(self, value):
        return value


def test_an_outside_select_loop_drives_either_server_type(servertype):
    """Pyro5's event-loop pattern: select() on daemon.sockets plus the program's own, then daemon.events().
    The default (greenlet) type starts its loop on a thread at the first events(); multiplex serves in events()."""
    import select
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Echoer, "echo")
    own_r, own_w = socket.socketpair()
    results = []

    def client():
        for _ in range(2):
            with Proxy(uri) as proxy:
                results.append([proxy.echo(n) for n in range(3)])
                big = "y" * 20_000_000  # read on a thread, and a reply larger than the socket buffers
                results.append(proxy.echo(big) == big)
        own_w.send(b"done")

    worker = threading.Thread(target=client)
    worker.start()
    rounds = 0
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select(daemon.sockets + [own_r], [], [], 1.0)
            rounds += 1
            if own_r in ready:
                break
            daemon.events([sock for sock in ready if sock is not own_r])
        worker.join(10)
        assert results == [[0, 1, 2], True, [0, 1, 2], True]
        assert rounds < 2000, rounds  # it did not spin (a 20 MB request takes ~320 rounds of 64 KB reads)
    finally:
        daemon.close()
        own_r.close()
        own_w.close()
