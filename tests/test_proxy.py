"""The Proxy against live daemons: connecting, timeouts, retries, serializers, annotations, ownership, errors."""

import copy
import socket
import threading
import time
import uuid

import gevent
import pytest

from geopyro import core, errors, serializers
from geopyro.callcontext import current_context
from geopyro.client import Proxy
from geopyro.server import Daemon, expose
from support import green_wait


class Gate:
    """Lets a test hold a server method until it says go."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()


@expose
class Service:
    gate = None

    def __init__(self):
        self._attr = "initial"

    def echo(self, value):
        return value

    def add(self, a, b):
        return a + b

    def slow(self):
        Service.gate.entered.set()
        green_wait(Service.gate.release)
        return "slow done"

    def sleepy(self, seconds):
        gevent.sleep(seconds)
        return "slept"

    def broken(self):
        return self._inner_failure()

    def _inner_failure(self):
        raise ZeroDivisionError("deep inside the server")

    def serializer_id(self):
        return current_context.serializer_id

    def read_annotations(self):
        return {key: bytes(value).decode() for key, value in current_context.annotations.items()}

    def correlation(self):
        return str(current_context.correlation_id)

    def call_other(self, proxy):
        with proxy:
            return [type(proxy).__name__, proxy.echo("via passed proxy")]

    @property
    def attr(self):
        return self._attr

    @attr.setter
    def attr(self, value):
        self._attr = value

    @property
    def readonly(self):
        return "ro"


@pytest.fixture
def gate():
    Service.gate = Gate()
    yield Service.gate
    Service.gate.release.set()
    Service.gate = None


def test_lazy_connect(daemons, servertype):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    assert p._pyroConnection is None
    assert p._pyroUri == uri
    assert p.echo(1) == 1
    assert p._pyroConnection is not None
    p._pyroRelease()
    assert p._pyroConnection is None


def test_nothing_listening():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    p = Proxy("PYRO:thing@127.0.0.1:%d" % port)  # making the proxy does not connect
    with pytest.raises(errors.CommunicationError):
        p.echo(1)
    with pytest.raises(errors.CommunicationError):
        p._pyroBind()


def test_uri_types():
    with pytest.raises(TypeError):
        Proxy(42)
    p = Proxy(core.URI("PYRO:x@localhost:1234"))
    assert str(p._pyroUri) == "PYRO:x@localhost:1234"
    assert Proxy("PYRO:x@localhost:1234") == p
    assert hash(Proxy("PYRO:x@localhost:1234")) == hash(p)


def test_bind_and_release(daemons, servertype):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    assert p._pyroBind() is True
    assert p._pyroConnection is not None
    assert "echo" in p._pyroMethods and "attr" in p._pyroAttrs
    assert p._pyroBind() is False  # already bound
    p._pyroRelease()
    assert p._pyroConnection is None
    p._pyroRelease()  # harmless
    assert p.echo(2) == 2  # reconnects by itself
    assert p._pyroConnection is not None
    p._pyroRelease()


def test_reconnect_to_restarted_daemon(daemons, servertype):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Service, "service")
    daemons.start(daemon)
    p = Proxy(uri)
    assert p.echo(1) == 1
    daemon.shutdown()
    with pytest.raises(errors.ConnectionClosedError):
        p.echo(2)  # the daemon is gone
    with pytest.raises(errors.ConnectionClosedError):
        p._pyroReconnect(1)  # nobody there yet
    restarted = Daemon(host="127.0.0.1", port=uri.port)
    restarted.register(Service, "service")
    daemons.start(restarted)
    p._pyroReconnect(3)
    assert p._pyroConnection is not None
    assert p.echo(3) == 3
    p._pyroRelease()


def test_timeout(daemons, servertype, gate):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    assert p._pyroTimeout is None
    p._pyroTimeout = 0.2
    assert p._pyroTimeout == 0.2
    started = time.monotonic()
    with pytest.raises(errors.TimeoutError):
        p.slow()
    assert time.monotonic() - started < 3
    assert gate.entered.is_set()
    gate.release.set()
    assert p._pyroConnection is None  # a timed-out connection is out of step, so it was dropped
    p._pyroTimeout = 5
    assert p.echo("after timeout") == "after timeout"
    p._pyroRelease()


def test_timeout_gevent_sleep(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        p._pyroTimeout = 0.1
        with pytest.raises(errors.TimeoutError):
            p.sleepy(0.5)
        p._pyroTimeout = None
        assert p.sleepy(0.01) == "slept"


def test_timeout_from_config(clean_config):
    clean_config.COMMTIMEOUT = 1.5
    assert Proxy("PYRO:x@localhost:1234")._pyroTimeout == 1.5


def test_max_retries(daemons, servertype, clean_config):
    clean_config.COMMTIMEOUT = 0.3
    clean_config.POLLTIMEOUT = 0.1
    dropped = threading.Event()

    class DroppingDaemon(Daemon):
        def clientDisconnect(self, conn):
            dropped.set()

    daemon = DroppingDaemon(host="127.0.0.1")  # drops idle clients after 0.3 s
    uri = daemon.register(Service)
    clean_config.MAX_RETRIES = 1
    daemons.start(daemon)
    p = Proxy(uri)
    p._pyroTimeout = None  # only the server times out
    assert p._pyroMaxRetries == 1
    assert p.echo(1) == 1
    assert dropped.wait(5)
    assert p.echo(2) == 2  # retried on a new connection, invisible to the caller
    dropped.clear()
    p._pyroMaxRetries = 0
    assert dropped.wait(5)
    with pytest.raises(errors.ConnectionClosedError):
        p.echo(3)
    p._pyroRelease()


@pytest.mark.parametrize("name", ["serpent", "json", "marshal", "msgpack"])
def test_serializer_per_proxy(daemons, servertype, name):
    uri = daemons.serve(Service)
    with Proxy(uri) as p, Proxy(uri) as default:
        p._pyroSerializer = name
        assert p.serializer_id() == serializers.get_serializer(name).serializer_id
        assert p.echo([1, "two", 3.5]) == [1, "two", 3.5]
        assert p.add(2, 3) == 5
        assert default.serializer_id() == serializers.get_serializer("serpent").serializer_id


def test_unknown_serializer(daemons, servertype):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    p._pyroSerializer = "no-such-serializer"
    with pytest.raises(errors.SerializeError):
        p.echo(1)
    p._pyroSerializer = None
    with p:
        assert p.echo(1) == 1


def test_handshake_data_reaches_daemon(daemons, servertype):
    seen = []

    class HandshakeDaemon(Daemon):
        def validateHandshake(self, conn, data):
            seen.append(data)
            return "welcome %s" % data["name"]

    daemon = HandshakeDaemon(host="127.0.0.1")
    uri = daemon.register(Service)
    daemons.start(daemon)
    responses = []

    class CheckingProxy(Proxy):
        def _pyroValidateHandshake(self, response):
            responses.append(response)

    with CheckingProxy(uri) as p:
        assert p._pyroHandshake == "hello"
        p._pyroHandshake = {"name": "bob", "token": [1, 2, 3]}
        p._pyroBind()
    assert seen == [{"name": "bob", "token": [1, 2, 3]}]
    assert responses == ["welcome bob"]


def test_annotations_override_and_context(daemons, servertype):
    uri = daemons.serve(Service)

    class AnnotatingProxy(Proxy):
        def _pyroAnnotations(self):
            return {"XPRX": b"from proxy"}

    with AnnotatingProxy(uri) as p:
        assert p.read_annotations() == {"XPRX": "from proxy"}
        current_context.annotations = {"XCTX": b"from context"}
        assert p.read_annotations() == {"XPRX": "from proxy", "XCTX": "from context"}
    with Proxy(uri) as plain:
        current_context.annotations = {"XCTX": b"only context"}
        assert plain.read_annotations() == {"XCTX": "only context"}
        current_context.annotations = {}
        assert plain.read_annotations() == {}


def test_response_annotations(daemons, servertype):
    class AnnotatingDaemon(Daemon):
        def annotations(self):
            return {"XRSP": b"response"}

    daemon = AnnotatingDaemon(host="127.0.0.1")
    uri = daemon.register(Service)
    daemons.start(daemon)
    seen = []

    class WatchingProxy(Proxy):
        def _pyroResponseAnnotations(self, annotations, msgtype):
            seen.append(bytes(annotations["XRSP"]))

    with WatchingProxy(uri) as p:
        current_context.response_annotations = {}
        p.echo(1)
        assert bytes(current_context.response_annotations["XRSP"]) == b"response"
    assert len(seen) >= 2  # handshake and call
    assert set(seen) == {b"response"}


def test_remote_attributes(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        assert p.attr == "initial"
        p.attr = "changed"
        assert p.attr == "changed"
        assert p.readonly == "ro"
        with pytest.raises(AttributeError):
            p.readonly = "x"
    with Proxy(uri) as other:  # session instance: a new connection has its own state
        assert other.attr == "initial"


def test_unknown_names(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(AttributeError, match="no_such_thing"):
            p.no_such_thing
        with pytest.raises(AttributeError):
            p.no_such_thing()
        with pytest.raises(AttributeError):
            p.no_such_attr = 1
        with pytest.raises(AttributeError):
            p.echo = 1  # a method is not an attribute
        assert not hasattr(p, "nope")
        assert p.echo(1) == 1


def test_context_manager(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        assert p.echo(1) == 1
        assert p._pyroConnection is not None
    assert p._pyroConnection is None
    with p:  # usable again
        assert p.echo(2) == 2
    assert p._pyroConnection is None


def test_copy(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        p._pyroTimeout = 4.5
        p._pyroMaxRetries = 3
        p._pyroSerializer = "json"
        p._pyroHandshake = "shake"
        assert p.echo(1) == 1
        c = copy.copy(p)
        assert c is not p
        assert c._pyroUri == p._pyroUri
        assert c._pyroTimeout == 4.5
        assert c._pyroMaxRetries == 3
        assert c._pyroSerializer == "json"
        assert c._pyroHandshake == "shake"
        assert c._pyroMethods == p._pyroMethods
        assert c._pyroConnection is None  # a copy has its own connection
        with c:
            assert c.echo(2) == 2
            assert c._pyroConnection is not p._pyroConnection
        assert p.echo(3) == 3


def test_proxy_as_argument(daemons, servertype):
    target = daemons.serve(Service)
    relay = daemons.serve(Service)
    with Proxy(relay) as relay_proxy, Proxy(target) as target_proxy:
        assert relay_proxy.call_other(target_proxy) == ["Proxy", "via passed proxy"]
        assert target_proxy.echo("mine still works") == "mine still works"


def test_dir_lists_exposed_names(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        p._pyroBind()
        names = dir(p)
        for name in ("echo", "add", "slow", "attr", "readonly", "_pyroBind", "_pyroRelease"):
            assert name in names
        assert "_inner_failure" not in names


def test_ownership(daemons, servertype):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    assert p.echo(1) == 1
    outcome = {}

    def use_in_thread():
        try:
            p.echo(2)
        except errors.PyroError as exc:
            outcome["error"] = exc
        p._pyroClaimOwnership()
        outcome["after claim"] = p.echo(3)

    worker = threading.Thread(target=use_in_thread)
    worker.start()
    worker.join(10)
    assert "owner" in str(outcome["error"])
    assert outcome["after claim"] == 3
    with pytest.raises(errors.PyroError, match="owner"):
        p.echo(4)  # now the other thread owns it
    p._pyroClaimOwnership()
    assert p.echo(5) == 5
    p._pyroRelease()


def test_ownership_unconnected_proxy(daemons, servertype):
    uri = daemons.serve(Service)
    p = Proxy(uri)
    outcome = {}

    def use_in_thread():
        try:
            p.echo(1)
        except errors.PyroError as exc:
            outcome["error"] = exc
        p._pyroClaimOwnership()
        outcome["value"] = p.echo(2)
        p._pyroRelease()

    worker = threading.Thread(target=use_in_thread)
    worker.start()
    worker.join(10)
    assert isinstance(outcome["error"], errors.PyroError)
    assert outcome["value"] == 2


@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_server_stopped_mid_call(daemons, servertype, gate, how):
    """Stopping a daemon while a call runs: that call still gets its reply (as with Pyro5), then the
    connection is closed and the next call fails."""
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Service)
    daemons.start(daemon)
    p = Proxy(uri)
    p._pyroTimeout = 10  # a hang would show up as TimeoutError, not pass

    def stop_when_inside():
        if gate.entered.wait(5):
            gate.release.set()  # the call may finish now; the daemon stops meanwhile
            getattr(daemon, how)()

    stopper = threading.Thread(target=stop_when_inside)
    stopper.start()
    try:
        assert p.slow() == "slow done"
        stopper.join(10)
        with pytest.raises(errors.CommunicationError):
            p.echo(1)
    finally:
        gate.release.set()
        stopper.join(10)
    assert not stopper.is_alive()
    assert p._pyroConnection is None
    with pytest.raises(errors.CommunicationError):
        p.echo(2)


def test_call_running_past_the_shutdown_grace_loses_its_connection(daemons, gate, monkeypatch):
    """A call that does not finish within the grace time after shutdown: its client's connection is cut."""
    from geopyro.servers import greenlet as greenlet_server
    monkeypatch.setattr(greenlet_server, "CALLS_FINISH_TIMEOUT", 0.2)
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Service)
    daemons.start(daemon)
    p = Proxy(uri)
    p._pyroTimeout = 10
    stopper = threading.Thread(target=lambda: gate.entered.wait(5) and daemon.shutdown())
    stopper.start()
    try:
        with pytest.raises(errors.ConnectionClosedError):
            p.slow()
    finally:
        gate.release.set()
        stopper.join(10)


def test_remote_exception_and_traceback(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(ZeroDivisionError, match="deep inside the server") as info:
            p.broken()
        remote = "".join(info.value._pyroTraceback)
        assert "_inner_failure" in remote
        assert "ZeroDivisionError" in remote
        try:
            p.broken()
        except ZeroDivisionError:
            text = "".join(errors.get_pyro_traceback())
        assert "Remote traceback" in text
        assert "_inner_failure" in text
        text2 = "".join(errors.get_pyro_traceback(type(info.value), info.value, info.value.__traceback__))
        assert "_inner_failure" in text2
        assert p.echo(1) == 1


def test_detailed_traceback(daemons, servertype, clean_config):
    clean_config.DETAILED_TRACEBACK = True
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(ZeroDivisionError) as info:
            p.broken()
    assert "Local values" in "".join(info.value._pyroTraceback)


def test_correlation_id_round_trip(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        corr = uuid.uuid4()
        current_context.correlation_id = corr
        assert p.correlation() == str(corr)
        other = uuid.uuid4()
        current_context.correlation_id = other
        assert p.correlation() == str(other)
        current_context.correlation_id = None
        generated = p.correlation()
        assert generated not in (str(corr), str(other), "None")
        uuid.UUID(generated)


def test_excepthook_prints_remote_part(daemons, servertype, capsys):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(ZeroDivisionError) as info:
            p.broken()
    errors.excepthook(type(info.value), info.value, info.value.__traceback__)
    assert "_inner_failure" in capsys.readouterr().err
