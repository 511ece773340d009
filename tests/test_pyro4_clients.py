"""Unmodified Pyro4 4.82 clients call a geopyro daemon (ACCEPT_PYRO4 on, the default), beside Pyro5 clients on
the same port.

The daemon runs in a subprocess (``SERVER_SCRIPT``); Pyro4's and Pyro5's proxies run in this test process.
"""

import subprocess
import sys
import threading
import time

import Pyro4
import Pyro4.errors
import Pyro4.message
import pytest

import Pyro5.api
import Pyro5.errors
from geopyro import api, protocol48
from support import accepts, child_env, first_line, free_port, wait_until

SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
STARTUP_DEADLINE = 30.0

SERVER_SCRIPT = r'''
import sys

import geopyro.api as api
from geopyro import errors

servertype, accept, hmac_key = sys.argv[1], sys.argv[2], sys.argv[3]
api.config.SERVERTYPE = servertype
if accept != "default":  # (by default a daemon serves Pyro4 clients)
    api.config.ACCEPT_PYRO4 = accept == "on"


@api.expose
class Service:
    def echo(self, value):
        return value

    def fail(self, message):
        raise ValueError(message)

    def fail_naming(self, name):
        raise errors.NamingError("unknown name: %s" % name)

    def location(self):
        return api.URI("PYRO:elsewhere@localhost:4321")

    def describe(self, proxy):
        return [type(proxy).__module__, type(proxy).__name__, str(proxy._pyroUri)]

    def protocol_of_caller(self):
        return api.current_context.serializer_id

    def length(self, value):
        return len(value)

    def call_back(self, listener, text):
        with listener:
            return listener.shout(text)

    def annotated(self):
        context = api.current_context
        context.response_annotations = {"RESP": b"answer"}
        return sorted(context.annotations)

    @api.oneway
    def record(self, item):
        self.recorded = item

    def last_recorded(self):
        return getattr(self, "recorded", None)

    @property
    def size(self):
        return 42


daemon = api.Daemon(host="127.0.0.1")
if hmac_key:
    daemon._pyroHmacKey = hmac_key
print(daemon.register(Service(), "service"), flush=True)
daemon.requestLoop()
'''


@pytest.fixture
def start_server():
    procs = []

    def start(servertype="greenlet", accept=None, hmac_key=""):
        accept = "default" if accept is None else "on" if accept else "off"
        proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, servertype, accept,
                                 hmac_key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=child_env())
        procs.append(proc)
        return first_line(proc, time.monotonic() + STARTUP_DEADLINE, "the geopyro server")

    yield start
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_a_pyro4_client_calls_a_geopyro_daemon(start_server, pyro4_serializer, servertype, serializer):
    pyro4_serializer(serializer)
    uri = start_server(servertype)
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.echo([1, "two", 3.5, {"k": None}]) == [1, "two", 3.5, {"k": None}]
        assert {"echo", "fail", "record"} <= proxy._pyroMethods  # metadata came with the handshake
        assert "record" in proxy._pyroOneway and "size" in proxy._pyroAttrs
        with pytest.raises(ValueError, match="bad value"):
            proxy.fail("bad value")
        with pytest.raises(Pyro4.errors.NamingError, match="unknown name: x"):
            proxy.fail_naming("x")  # Pyro's own errors arrive as Pyro4's classes
        location = proxy.location()
        assert isinstance(location, Pyro4.core.URI) and str(location) == "PYRO:elsewhere@localhost:4321"
        proxy.record("fired")
        assert proxy.last_recorded() == "fired"  # (the oneway call ran before this one on the same connection)
        if serializer != "marshal":  # Pyro4's own marshal client cannot send the kwargs=None of attribute access
            assert proxy.size == 42
        proxy._pyroBind()
        Pyro4.message.Message.ping(proxy._pyroConnection)


def test_a_pyro4_proxy_passed_in_arrives_as_a_pyro4_proxy_of_geopyros(start_server):
    """(geopyro's Pyro4 API Proxy: a geopyro Proxy that talks protocol 48, as the object it stands for needs)"""
    uri = start_server()
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.describe(Pyro4.Proxy("PYRO:callback@localhost:1234")) == \
            ["geopyro.compatibility.Pyro4.core", "Proxy", "PYRO:callback@localhost:1234"]


def test_pyro4_and_pyro5_clients_share_one_port(start_server):
    uri = start_server()
    with Pyro4.Proxy(uri) as old, Pyro5.api.Proxy(uri) as new:
        for round_ in range(20):
            assert old.echo(round_) == round_
            assert new.echo(-round_) == -round_
        assert old.protocol_of_caller() > 255  # served in protocol 48 (see geopyro.protocol48)
        assert new.protocol_of_caller() == 1
        with pytest.raises(Pyro5.errors.NamingError):
            new.fail_naming("x")  # and Pyro5's client still gets Pyro5's classes


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
def test_hmac_is_required_and_checked_as_pyro4_does(start_server, servertype):
    uri = start_server(servertype, hmac_key="sesame")
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroHmacKey = b"sesame"
        assert proxy.echo("signed") == "signed"
    for key, error in [(b"wrong", "message hmac mismatch"), (None, "hmac key config not symmetric")]:
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroHmacKey = key
            with pytest.raises(Pyro4.errors.CommunicationError, match=error):
                proxy.echo("refused")
    with Pyro5.api.Proxy(uri) as proxy:  # protocol 502 cannot sign, so a daemon with a key refuses it
        with pytest.raises(Pyro5.errors.CommunicationError, match="requires Pyro4's HMAC signing"):
            proxy.echo("unsigned")


def test_a_large_signed_request_is_checked_on_a_pool_thread(daemons, servertype, monkeypatch):
    """Hashing a large payload cannot yield: the daemon checks its signature where the loop does not wait."""
    checked_in_threads = []
    verify = protocol48.verify

    def recording_verify(msg):
        checked_in_threads.append(threading.get_ident())
        return verify(msg)

    monkeypatch.setattr(protocol48, "verify", recording_verify)
    daemon = api.Daemon(host="127.0.0.1")
    daemon._pyroHmacKey = b"sesame"
    uri = daemon.register(Echo, "echo")
    daemons.start(daemon)
    loop_thread = daemons.running[-1][1].ident
    large = "x" * protocol48.DEFERRED_HMAC_FROM
    with Pyro4.Proxy(str(uri)) as proxy:
        proxy._pyroHmacKey = b"sesame"
        assert proxy.echo("small") == "small"
        assert set(checked_in_threads) == {loop_thread}  # small messages: checked as they were read
        checked_in_threads.clear()
        assert proxy.echo(large) == large
        assert len(checked_in_threads) == 1 and loop_thread not in checked_in_threads
        checked_in_threads.clear()
        calls = Echo.calls
        proxy._pyroHmacKey = b"wrong"
        with pytest.raises(Pyro4.errors.SecurityError, match="message hmac mismatch"):
            proxy.echo(large)  # (the daemon's answer, signed with its key, fails the client's own check)
        assert len(checked_in_threads) == 1 and loop_thread not in checked_in_threads
        assert Echo.calls == calls  # (the forged call did not run)
    with Pyro4.Proxy(str(uri)) as proxy:  # the daemon closed that connection and serves the next one
        proxy._pyroHmacKey = b"sesame"
        assert proxy.echo("still served") == "still served"


@api.expose
class Echo:
    calls = 0

    def echo(self, value):
        Echo.calls += 1
        return value


def test_replies_carry_the_correlation_id_as_pyro4s_do(start_server):
    uri = start_server()
    with Pyro4.Proxy(uri) as proxy:
        proxy.echo(1)
        assert len(Pyro4.current_context.response_annotations["CORR"]) == 16


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
def test_a_signed_connect_that_hangs_up_at_once_harms_nobody(start_server, servertype):
    """The daemon has no key, so it refuses the signed CONNECT; the client is gone (reset) before the refusal."""
    import socket
    import struct

    from geopyro import protocol, protocol48, serializers

    uri = Pyro5.api.URI(start_server(servertype))
    serpent4 = serializers.get_pyro4_serializer("serpent")
    connect = protocol48.encode(protocol.MSG_CONNECT, 0, 0, serpent4.serializer_id,
                                serpent4.dumps({"handshake": "hi", "object": "service"}), hmac_key=b"key")
    with Pyro5.api.Proxy(uri) as bystander:
        assert bystander.echo(1) == 1
        for _ in range(5):
            sock = socket.create_connection((uri.host, uri.port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(connect)
            sock.close()  # a reset, not a goodbye
        assert bystander.echo(2) == 2
    with Pyro5.api.Proxy(uri) as newcomer:
        assert newcomer.echo(3) == 3


def test_a_client_key_that_the_daemon_does_not_have_is_refused(start_server):
    uri = start_server()
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroHmacKey = b"sesame"
        with pytest.raises(Pyro4.errors.CommunicationError, match="hmac key config not symmetric"):
            proxy.echo("refused")


def test_protocol_48_is_refused_unless_accepted(start_server):
    uri = start_server(accept=False)
    with Pyro4.Proxy(uri) as proxy:
        with pytest.raises(Pyro4.errors.CommunicationError):
            proxy.echo("no")
    with Pyro5.api.Proxy(uri) as proxy:
        assert proxy.echo("yes") == "yes"


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
def test_a_broken_protocol_48_client_loses_only_its_own_connection(start_server, servertype):
    import socket
    import struct

    uri = Pyro5.api.URI(start_server(servertype))
    bad_checksum = struct.pack("!4sHHHHiHHHH", b"PYRO", 48, 1, 0, 0, 10, 1, 0, 0, 12345) + b"x" * 10
    with Pyro5.api.Proxy(uri) as bystander, Pyro4.Proxy(str(uri)) as pyro4_bystander:
        assert bystander.echo(1) == 1 and pyro4_bystander.echo(1) == 1
        for junk in (bad_checksum, b"PYRO\x00\x30" + b"\xff" * 30):
            with socket.create_connection((uri.host, uri.port), timeout=10) as sock:
                sock.sendall(junk)
                try:
                    assert sock.recv(100) == b""  # closed, nothing answered
                except ConnectionResetError:
                    pass  # (closed before it read all of the junk)
        assert bystander.echo(2) == 2 and pyro4_bystander.echo(2) == 2


@pytest.fixture
def name_server():
    """geopyro's name server in a child process, which serves Pyro4 clients too (by default)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "geopyro.nameserver", "-n", "127.0.0.1", "-p", str(port), "-x"],
                            env=child_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: accepts(port), timeout=STARTUP_DEADLINE), "the name server did not start"
        yield Pyro5.api.URI("PYRO:Pyro.NameServer@127.0.0.1:%d" % port)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_pyro4_clients_use_geopyros_name_server(name_server):
    ns4 = Pyro4.locateNS(name_server.host, name_server.port)
    ns4.register("old.service", "PYRO:old@127.0.0.1:5555", metadata={"from:pyro4"})
    uri, metadata = ns4.lookup("old.service", return_metadata=True)
    assert isinstance(uri, Pyro4.core.URI) and str(uri) == "PYRO:old@127.0.0.1:5555" and metadata == {"from:pyro4"}
    with Pyro5.api.Proxy(name_server) as ns5:  # a Pyro5 client sees what a Pyro4 client registered, and back
        assert str(ns5.lookup("old.service")) == "PYRO:old@127.0.0.1:5555"
        ns5.register("new.service", "PYRO:new@127.0.0.1:6666", metadata={"from:pyro5"})
    assert ns4.list(prefix="new.") == {"new.service": "PYRO:new@127.0.0.1:6666"}
    assert ns4.yplookup(meta_any={"from:pyro5"}) == {"new.service": ("PYRO:new@127.0.0.1:6666", {"from:pyro5"})}
    with pytest.raises(Pyro4.errors.NamingError, match="unknown name"):
        ns4.lookup("missing")
    assert ns4.remove(prefix="old.") == 1
    ns4._pyroRelease()


def test_pyro4s_broadcast_locate_finds_geopyros_name_server(daemons, clean_config):
    """Pyro4.locateNS() without a host: the name server at NS_HOST is not there, so Pyro4 asks by broadcast
    (here sent to 127.0.0.1 only) and then pings the name server it was told of, in protocol 48."""
    from geopyro import nameserver

    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    with nameserver.BroadcastServer(uri, "", 0) as broadcast:
        thread = broadcast.runInThread()
        script = "import Pyro4; ns = Pyro4.locateNS(); print(ns._pyroUri, ns.list(prefix='Pyro.'))"
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                                env=child_env(PYRO_NS_HOST="localhost", PYRO_NS_PORT=free_port(),
                                              PYRO_NS_BCPORT=broadcast.getPort(), PYRO_BROADCAST_ADDRS="127.0.0.1"))
    thread.join(5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "%s {'Pyro.NameServer': '%s'}" % (uri, uri)


@pytest.fixture
def pyro4_config():
    """Pyro4's config items a test changes, put back afterwards (Pyro4's config is global)."""
    saved = Pyro4.config.asDict()
    yield Pyro4.config
    for name, value in saved.items():
        setattr(Pyro4.config, name, value)


def test_pyro4_clients_with_compression_without_metadata_and_with_annotations(start_server, pyro4_config):
    uri = start_server()
    pyro4_config.COMPRESSION = True  # large requests come compressed
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.length("x" * 200000) == 200000
    pyro4_config.COMPRESSION = False
    pyro4_config.METADATA = False  # no object id in the handshake, no metadata asked for
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.echo(5) == 5
    pyro4_config.METADATA = True
    with Pyro4.Proxy(uri) as proxy:
        Pyro4.current_context.annotations = {"XTRA": b"1"}
        try:
            assert proxy.annotated() == ["XTRA"]
        finally:
            Pyro4.current_context.annotations = {}
        assert sorted(Pyro4.current_context.response_annotations) == ["CORR", "RESP"]


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
def test_the_daemon_calls_back_a_pyro4_clients_own_object(start_server, servertype):
    """The proxy a Pyro4 client passes in is for a Pyro4 daemon: the server calls it in protocol 48."""
    import threading

    @Pyro4.expose
    class Listener:
        def shout(self, text):
            return text.upper() + "!"

    uri = start_server(servertype)
    with Pyro4.Daemon(host="127.0.0.1") as callback_daemon:
        listener = callback_daemon.register(Listener())
        thread = threading.Thread(target=callback_daemon.requestLoop, daemon=True)
        thread.start()
        try:
            with Pyro4.Proxy(uri) as proxy:
                assert proxy.call_back(Pyro4.Proxy(listener), "hello") == "HELLO!"
        finally:
            callback_daemon.shutdown()
            thread.join(10)
