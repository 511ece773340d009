"""Pyro5 behaviours that unmodified programs (and Pyro5's own tests) rely on, each checked beside Pyro5."""

import contextlib
import gc
import select
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import Pyro5.callcontext
import Pyro5.client
import Pyro5.core
import Pyro5.errors
import Pyro5.protocol
import Pyro5.server
import Pyro5.socketutil
import pytest

from geopyro import client, nameserver, protocol, serializers, server
from geopyro.servers.greenlet import GreenletServer, SocketServer_Threadpool
from geopyro.servers.multiplex import MultiplexServer, SocketServer_Multiplex
from support import child_env, wait_until


@server.expose
class Echo:
    def echo(self, value):
        return value


class _Peer:
    def getpeername(self):
        return ("127.0.0.1", 9)


class _BytesConnection:
    """What Pyro5's tests hand to handleRequest: an object with only send() and recv(size)."""

    def __init__(self, data):
        self.received = data
        self.sock = _Peer()

    def send(self, data):
        self.received += data

    def recv(self, size):
        chunk, self.received = self.received[:size], self.received[size:]
        return chunk


def _forget_pyro5_call():
    context = Pyro5.callcontext.current_context
    context.client = context.client_sock_addr = context.correlation_id = None
    context.annotations, context.response_annotations = {}, {}


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_handle_request_on_an_object_with_only_send_and_recv(module):
    api_server = Pyro5.server if module is Pyro5 else server
    api_protocol = Pyro5.protocol if module is Pyro5 else protocol
    ser = (Pyro5.serializers if module is Pyro5 else serializers).serializers["serpent"]
    with api_server.Daemon(port=0) as daemon:
        uri = daemon.register(Echo())
        request = api_protocol.SendingMessage(api_protocol.MSG_INVOKE, 0, 7, ser.serializer_id,
                                              ser.dumpsCall(uri.object, "echo", ("hi",), {}))
        conn = _BytesConnection(request.data)
        try:
            daemon.handleRequest(conn)
        finally:
            _forget_pyro5_call()  # Pyro5's call context stays in this thread; later tests compare its bytes
        reply = api_protocol.recv_stub(conn, [api_protocol.MSG_RESULT])
        assert (reply.seq, ser.loads(reply.data)) == (7, "hi")


def test_a_daemon_reads_the_config_as_it_goes(daemons, clean_config):
    """As in Pyro5: a setting changed after the daemon was made applies to what the daemon does next."""
    @server.expose
    class Failing:
        def fail(self):
            raise ValueError("nope")

    clean_config.DETAILED_TRACEBACK = False
    uri = daemons.serve(Failing)
    clean_config.DETAILED_TRACEBACK = True  # the daemon is running already
    with client.Proxy(uri) as proxy:
        with pytest.raises(ValueError) as info:
            proxy.fail()
    assert "Local values" in "".join(info.value._pyroTraceback)  # the detailed form


def test_registered_objects_go_with_their_daemon():
    """``_pyroDaemon`` is a weak proxy (as in Pyro5): a registered class does not keep its daemon and objects."""
    class Kept:
        pass

    for module in (Pyro5.server, server):
        @module.expose
        class Registered:
            def ping(self):
                return 1

        daemon = module.Daemon(port=0)
        kept = Kept()
        watch = weakref.ref(kept)
        daemon.register(Registered)  # the class (a global, in a real program) now points at the daemon
        daemon.register(kept)
        del kept
        daemon.close()
        del daemon
        # (Pyro5's own server threads may still hold it for a moment after close() on a busy machine)
        assert wait_until(lambda: gc.collect() is not None and watch() is None, timeout=10), module.__name__
        assert isinstance(Registered._pyroDaemon, weakref.ProxyTypes)


def test_weakly_registered_object_is_not_held_by_a_lingering_thread(daemons, clean_config):
    """After a call on a pool thread, the thread may wait on the connection for the next one: it must not
    keep the finished call's object alive (Pyro5's testRegisterWeak)."""
    clean_config.SERVERTYPE = "thread"
    daemon = daemons.start()
    obj = Echo()
    watch = weakref.ref(obj)
    uri = daemon.register(obj, weak=True)
    with client.Proxy(uri) as proxy:
        assert proxy.echo(1) == 1
        del obj
        gc.collect()
        assert watch() is None
        with pytest.raises(Exception, match="unknown object|garbage collected"):
            proxy.echo(2)


@pytest.mark.parametrize("cls, base", [(SocketServer_Threadpool, GreenletServer),
                                       (SocketServer_Multiplex, MultiplexServer)])
def test_server_classes_under_pyro5s_names_made_pyro5s_way(cls, base):
    with server.Daemon(port=0) as daemon:
        made = cls()
        assert isinstance(made, base) and made.sock is None
        made.init(daemon, "127.0.0.1", 0)
        assert made.locationStr.startswith("127.0.0.1:") and made.sock is not None
        with socket.create_connection(made.sock.getsockname()[:2], timeout=5):
            pass
        made.close()
        made.close()
        assert made.sock is None


def test_thread_servertype_has_thread_in_its_class_name(clean_config):
    """Code (and Pyro5's tests) check ``"Thread" in type(daemon.transportServer).__name__``."""
    clean_config.SERVERTYPE = "thread"
    with server.Daemon(port=0) as daemon:
        assert "Thread" in type(daemon.transportServer).__name__
    clean_config.SERVERTYPE = "multiplex"
    with server.Daemon(port=0) as daemon:
        assert "Multiplex" in type(daemon.transportServer).__name__


def test_serialized_blob_of_a_sending_message():
    ser = serializers.serializers["serpent"]
    message = protocol.SendingMessage(protocol.MSG_INVOKE, 0, 42, ser.serializer_id,
                                      ser.dumpsCall("object", "method", ([1, 2, 3],), {"kwarg": 42}))
    assert client.SerializedBlob("blobname", message, is_blob=True).deserialized() == ([1, 2, 3],)


def test_receiving_message_data_after_annotations_is_not_copied():
    ser = serializers.serializers["serpent"]
    for module in (Pyro5.protocol, protocol):
        sent = module.SendingMessage(module.MSG_INVOKE, 0, 1, ser.serializer_id, b"x" * 500, {"TEST": b"abc"})
        received = module.ReceivingMessage(sent.data[:40], sent.data[40:])
        assert type(received.data) is memoryview and bytes(received.data) == b"x" * 500


def test_broadcast_lookup_returns_a_proxy_that_connects_on_first_use(clean_config):
    """Pyro5's locate_ns hands back the broadcast answer unbound: a name server whose loop is not running
    yet (or is busy) does not make the lookup hang."""
    uri, ns_daemon, bc = nameserver.start_ns(host="", port=0, bcport=0)
    bc_thread = bc.runInThread()
    try:
        clean_config.NS_HOST, clean_config.NS_PORT = "0.0.0.0", uri.port
        clean_config.NS_BCPORT = bc.getPort()
        clean_config.BROADCAST_ADDRS = ["127.255.255.255"]
        proxy = nameserver.locate_ns()
        assert proxy._pyroConnection is None and proxy._pyroUri.port == uri.port
        assert proxy._pyroUri.host != "0.0.0.0"
        proxy._pyroRelease()
    finally:
        ns_daemon.close()
        bc.close()
        bc_thread.join(5)


def test_launcher_hangs_each_logger_under_pyro5s_logger_of_the_same_job(tmp_path):
    """A program that sets a level on logging.getLogger("Pyro5.server") gets geopyro.server's records."""
    program = textwrap.dedent("""\
        import logging, sys
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.name)
        handler = Keep()
        logging.getLogger("Pyro5.server").addHandler(handler)
        logging.getLogger("Pyro5.server").setLevel(logging.DEBUG)
        import Pyro5.server
        with Pyro5.server.Daemon(port=0):
            pass
        logging.getLogger("Pyro5.naming").addHandler(handler)
        logging.getLogger("Pyro5.naming").setLevel(logging.INFO)
        import Pyro5.nameserver
        Pyro5.nameserver.NameServerDaemon(port=0).close()
        print(sorted(set(records)))
        print(logging.getLogger("geopyro.servers.greenlet").getEffectiveLevel())
        """)
    script = tmp_path / "logs.py"
    script.write_text(program)
    done = subprocess.run([sys.executable, "-m", "geopyro.run", str(script)], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    names, level = done.stdout.split("\n")[:2]
    assert names == "['geopyro.nameserver', 'geopyro.server']"
    # Pyro5.threadpoolserver was left alone: it inherits the level of "Pyro5", which the launcher, as Pyro5
    # itself, keeps off (9999) unless PYRO_LOGLEVEL is set
    assert int(level) == 9999


def test_the_daemon_an_object_was_registered_with_does_not_travel():
    for module in (Pyro5.server, server):
        with module.Daemon(port=0) as daemon:
            thing = Echo()
            daemon.register(thing, "thing")
            daemon.unregister("thing")  # by id: the object keeps its attributes
            assert "_pyroDaemon" in vars(thing)
    for name in ("json", "msgpack"):  # (serpent writes it as a harmless dict of its own, as with Pyro5)
        data = serializers.serializers[name].dumps(thing)
        assert b"weakref" not in bytes(data) and b"_pyroDaemon" not in bytes(data)



@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_a_socket_made_with_create_socket_may_be_used_on_another_thread(module):
    """Plain code in an unpatched program gets a plain socket: made on one thread, it serves on another
    (a gevent socket belongs to its thread's hub and would refuse with "Cannot switch to a different thread")."""
    util = Pyro5.socketutil if module is Pyro5 else sys.modules["geopyro.socketutil"]
    listener = util.create_socket(bind=("127.0.0.1", 0), timeout=10)
    accepting, received = threading.Event(), []

    def serve():
        accepting.set()
        try:
            conn, _ = listener.accept()  # (waits: the client connects only once this thread runs)
            with conn:
                received.append(util.receive_data(conn, 5))
                util.send_data(conn, b"world")
        except Exception as exc:
            received.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        accepting.wait(10)
        with util.create_socket(connect=("127.0.0.1", listener.getsockname()[1]), timeout=10) as sock:
            util.send_data(sock, b"hello")
            assert util.receive_data(sock, 5) == b"world"
    finally:
        thread.join(10)
        listener.close()
    assert received == [b"hello"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # (Pyro5's worker thread dies)
@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_a_method_that_raises_keyboard_interrupt_ends_its_connection_not_the_server(module):
    """In Pyro5 it ends the thread serving that client; geopyro's default server (a call on a pool thread in
    this unpatched program) ends that client's connection, and the loop goes on serving the others."""
    api = Pyro5.server if module is Pyro5 else server
    proxies = Pyro5.client if module is Pyro5 else client
    errs = Pyro5.errors if module is Pyro5 else sys.modules["geopyro.errors"]

    @api.expose
    class Interrupted:
        def ping(self):
            return "pong"

        def interrupt(self):
            raise KeyboardInterrupt

    with api.Daemon(host="127.0.0.1", port=0) as daemon, _request_loop_running(daemon) as loop:
        uri = daemon.register(Interrupted)
        with proxies.Proxy(uri) as proxy:
            proxy._pyroTimeout = 10
            with pytest.raises(errs.ConnectionClosedError):
                proxy.interrupt()
        with proxies.Proxy(uri) as proxy:
            proxy._pyroTimeout = 10
            assert proxy.ping() == "pong"
        assert loop.is_alive()


@contextlib.contextmanager
def _request_loop_running(daemon):
    """``daemon``'s requestLoop on a thread for the block (the thread object is given); shut down after it."""
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    try:
        yield loop
    finally:
        daemon.shutdown()
        loop.join(10)


def _serve_from_own_loop(daemon, make_proxy, calls, answers, timeout=60):
    """The program's own select() loop drives ``daemon`` through events(), as in Pyro5's examples, while a
    thread makes ``calls(proxy)`` (an error goes into ``answers``); on until the daemon saw the client leave."""
    def call():
        try:
            with make_proxy() as proxy:
                proxy._pyroTimeout = 10
                calls(proxy)
        except Exception as exc:
            answers.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + timeout
    while (caller.is_alive() or len(daemon.sockets) > 1) and time.monotonic() < deadline:
        ready, _, _ = select.select(daemon.sockets, [], [], 0.05)
        if ready:
            daemon.events(ready)
    caller.join(1)


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_multiplex_runs_calls_on_the_thread_that_runs_its_loop(module, clean_config):
    """Pyro5's multiplex server calls methods on the thread of requestLoop() or of the program's own loop that
    calls events(): a GUI toolkit's main thread, or an SQLite connection made there, work from a method."""
    api = Pyro5.server if module is Pyro5 else server
    proxies = Pyro5.client if module is Pyro5 else client
    settings = Pyro5.config if module is Pyro5 else clean_config
    old_servertype, settings.SERVERTYPE = settings.SERVERTYPE, "multiplex"
    loop_thread = threading.current_thread()
    database = sqlite3.connect(":memory:")  # usable only on this thread
    database.execute("create table t (x)")

    @api.expose
    class Store:
        def add(self, x):
            database.execute("insert into t values (?)", (x,))
            return threading.current_thread() is loop_thread

        def count(self):
            return database.execute("select count(*) from t").fetchone()[0]

    answers = []
    try:
        with api.Daemon(host="127.0.0.1", port=0) as daemon:
            uri = daemon.register(Store)

            def call(proxy):
                answers.extend([proxy.add(1), proxy.add(2), proxy.count()])

            _serve_from_own_loop(daemon, lambda: proxies.Proxy(uri), call, answers)
    finally:
        settings.SERVERTYPE = old_servertype
        database.close()
        _forget_pyro5_call()  # (Pyro5's call context of this thread holds the client's connection)
    assert answers == [True, True, 2]


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_client_disconnect_only_for_clients_whose_handshake_was_accepted(module):
    api = Pyro5.server if module is Pyro5 else server
    proxies = Pyro5.client if module is Pyro5 else client
    errs = Pyro5.errors if module is Pyro5 else sys.modules["geopyro.errors"]
    events = []

    class Guarded(api.Daemon):
        def validateHandshake(self, conn, data):
            if data != "let me in":
                raise ValueError("refused")
            events.append("accepted")
            return super().validateHandshake(conn, data)

        def clientDisconnect(self, conn):
            events.append("disconnect")

    with Guarded(host="127.0.0.1", port=0) as daemon:
        with _request_loop_running(daemon):
            for secret in ("wrong", "let me in"):
                proxy = proxies.Proxy(daemon.uriFor(module.core.DAEMON_NAME))
                proxy._pyroHandshake = secret
                try:
                    proxy._pyroBind()
                except errs.CommunicationError:
                    assert secret == "wrong"
                proxy._pyroRelease()
            wait_until(lambda: "disconnect" in events, timeout=10)
    assert events == ["accepted", "disconnect"]


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_port_past_65535_fails_when_used_not_when_parsed(module, host):
    """As Pyro5: the URI keeps it, connecting raises a CommunicationError, binding Python's OverflowError (never
    the port modulo 65536, which is what getaddrinfo would make of it)."""
    core = Pyro5.core if module is Pyro5 else sys.modules["geopyro.core"]
    errs = Pyro5.errors if module is Pyro5 else sys.modules["geopyro.errors"]
    proxies = Pyro5.client if module is Pyro5 else client
    api = Pyro5.server if module is Pyro5 else server
    util = Pyro5.socketutil if module is Pyro5 else sys.modules["geopyro.socketutil"]
    uri = core.URI("PYRO:obj@%s:99999" % host)
    assert uri.port == 99999
    with pytest.raises(errs.CommunicationError, match="port must be 0-65535"):
        proxies.Proxy(uri)._pyroBind()
    with pytest.raises(OverflowError):
        api.Daemon(host=host, port=99999)
    if host == "127.0.0.1":  # (Pyro5's own lets getaddrinfo take a name's port modulo 65536)
        with pytest.raises(OverflowError, match="connect"):
            util.create_socket(connect=(host, 70000))


def test_expose_on_a_property_object_exposes_its_first_accessor_as_pyro5s():
    """expose(property(g, s)): the property, and g (a public function of the class) as a method; not s."""
    listings = []
    for module in (Pyro5.server, server):
        class Holder:
            def __init__(self):
                self._x = 1

            def g(self):
                return self._x

            def s(self, value):
                self._x = value

            x = module.expose(property(g, s))

        members = module._get_exposed_members(Holder)
        listings.append((sorted(members["methods"]), sorted(members["attrs"])))
    assert listings[0] == listings[1] == (["g"], ["x"])


def _multiplex_of(module, clean_config):
    """(api, proxies, settings) of ``module`` with SERVERTYPE multiplex; the caller restores Pyro5's config."""
    api = Pyro5.server if module is Pyro5 else server
    proxies = Pyro5.client if module is Pyro5 else client
    settings = Pyro5.config if module is Pyro5 else clean_config
    return api, proxies, settings


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_multiplex_makes_a_session_instance_on_the_loop_thread_even_for_a_first_oneway_call(module, clean_config):
    api, proxies, settings = _multiplex_of(module, clean_config)
    old_servertype, settings.SERVERTYPE = settings.SERVERTYPE, "multiplex"
    ran = threading.Event()

    @api.expose
    @api.behavior(instance_mode="session")
    class Store:
        def __init__(self):
            self.db = sqlite3.connect(":memory:")  # usable only on the thread that made it
            self.db.execute("create table t (x)")

        @api.oneway
        def hello(self):
            ran.set()

        def add(self, x):
            self.db.execute("insert into t values (?)", (x,))
            return self.db.execute("select count(*) from t").fetchone()[0]

    try:
        with api.Daemon(host="127.0.0.1", port=0) as daemon, _request_loop_running(daemon):
            uri = daemon.register(Store)
            with proxies.Proxy(uri) as proxy:
                proxy._pyroTimeout = 10
                proxy.hello()
                assert ran.wait(10)
                assert proxy.add(1) == 1
    finally:
        settings.SERVERTYPE = old_servertype
        _forget_pyro5_call()


@pytest.mark.parametrize("module", [Pyro5, sys.modules["geopyro"]], ids=["Pyro5", "geopyro"])
def test_an_outside_loop_serves_oneway_calls_among_normal_ones(module, clean_config):
    """The program's own select() loop drives a multiplex daemon through events() (Pyro5's GUI examples): a
    client that makes oneway calls between normal ones keeps being served (the loop never gives gevent's hub a
    turn, so oneway calls cannot count on it)."""
    api, proxies, settings = _multiplex_of(module, clean_config)
    old = settings.SERVERTYPE, settings.THREADPOOL_SIZE
    settings.SERVERTYPE, settings.THREADPOOL_SIZE = "multiplex", 8  # (geopyro's quota: 4 oneway calls a client)
    fired = []

    @api.expose
    class Thing:
        @api.oneway
        def fire(self, n):
            fired.append(n)

        def ping(self):
            return "pong"

    answers = []
    try:
        with api.Daemon(host="127.0.0.1", port=0) as daemon:
            uri = daemon.register(Thing())

            def call(proxy):
                for n in range(30):
                    proxy.fire(n)
                    answers.append(proxy.ping())

            _serve_from_own_loop(daemon, lambda: proxies.Proxy(uri), call, answers)
    finally:
        settings.SERVERTYPE, settings.THREADPOOL_SIZE = old
        _forget_pyro5_call()
    assert answers == ["pong"] * 30
    assert wait_until(lambda: sorted(fired) == list(range(30)), timeout=10)


def test_a_pyro4_program_configures_geopyros_loggers_through_pyro4s(tmp_path):
    """Under the launcher a program that imports Pyro4 gets geopyro's records through the "Pyro4" loggers, which
    stay off, as Pyro4 keeps them, unless the program (or PYRO_LOGLEVEL) sets a level."""
    program = textwrap.dedent("""\
        import logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.name)
        import Pyro4
        silent = logging.getLogger("Pyro4").getEffectiveLevel()
        Pyro4.Daemon(port=0).close()
        before = list(records)
        logging.getLogger("Pyro4").addHandler(Keep())
        logging.getLogger("Pyro4").setLevel(logging.DEBUG)
        Pyro4.Daemon(port=0).close()
        print(silent, before, "geopyro.server" in records)
        """)
    script = tmp_path / "logs4.py"
    script.write_text(program)
    done = subprocess.run([sys.executable, "-m", "geopyro.run", str(script)], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9999", "[]", "True"]


def test_a_pyro5_program_that_looks_for_pyro4_keeps_its_pyro5_loggers(tmp_path):
    """Only a Pyro4 program moves geopyro's loggers under "Pyro4": a Pyro5 program that probes for Pyro4, or
    imports it too, keeps them under "Pyro5"."""
    program = textwrap.dedent("""\
        import importlib.util, logging
        import Pyro5.api
        importlib.util.find_spec("Pyro4")
        import Pyro4
        print(logging.getLogger("geopyro.server").parent.name)
        """)
    script = tmp_path / "probe.py"
    script.write_text(program)
    done = subprocess.run([sys.executable, "-m", "geopyro.run", str(script)], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "Pyro5.server"), done.stderr
