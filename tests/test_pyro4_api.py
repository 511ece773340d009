"""Pyro4's API on geopyro (geopyro.compatibility.Pyro4): its config, proxies, daemons, futures and names.

The conformance suite runs the documented behaviours against it (target geopyro4, and paired with the real
Pyro4 both ways: tests/test_conformance.py); these tests cover what is particular to this API on geopyro.
"""

import copy

import Pyro4 as real_Pyro4
import pytest

import geopyro
import geopyro.api
from geopyro import serializers
from geopyro.compatibility import Pyro4


@Pyro4.expose
class Service:
    def echo(self, value):
        return value

    def fail(self):
        raise ValueError("it failed")


@pytest.fixture
def pyro4_daemon(daemons, clean_config):
    """A running daemon of the Pyro4 API with a Service, and its uri (geopyro's config at its defaults, but
    with ACCEPT_PYRO4 off: a daemon of the Pyro4 API serves Pyro4 clients whatever it says)."""
    clean_config.ACCEPT_PYRO4 = False
    daemon = Pyro4.Daemon(host="127.0.0.1")
    uri = daemon.register(Service(), "service")
    daemons.start(daemon)
    return str(uri)  # (Pyro4's own Proxy takes a string, not a geopyro URI)


@pytest.fixture
def real_pyro4_serializer():
    saved = real_Pyro4.config.SERIALIZER
    yield real_Pyro4.config
    real_Pyro4.config.SERIALIZER = saved


# --- config ---

def test_config_shares_pyro5s_items_with_geopyro_and_keeps_pyro4s_own(clean_config):
    Pyro4.config.SERIALIZER = "json"
    assert geopyro.config.SERIALIZER == "json"  # the same item: every proxy uses it
    Pyro4.config.reset(useenvironment=False)
    assert Pyro4.config.SERIALIZERS_ACCEPTED == {"serpent", "marshal", "json"}  # Pyro4's defaults
    assert Pyro4.config.METADATA is True and Pyro4.config.REQUIRE_EXPOSE is True
    assert geopyro.config.SERIALIZER == "serpent"
    assert "Pyro4's API on geopyro" in Pyro4.config.dump() and "SERIALIZERS_ACCEPTED" in Pyro4.config.asDict()
    assert Pyro4.config.parseAddressesString("a, '' ,b") == ["a", "", "b"]
    with pytest.raises(AttributeError, match="no config item"):
        Pyro4.config.NO_SUCH_ITEM = 1
    for item in ("METADATA", "REQUIRE_EXPOSE", "AUTOPROXY", "FLAME_ENABLED"):
        with pytest.raises(ValueError, match="not supported by geopyro"):
            setattr(Pyro4.config, item, not getattr(Pyro4.config, item))


def test_config_reads_pyro4s_environment_variables(monkeypatch, clean_config, caplog):
    monkeypatch.setenv("PYRO_SERIALIZERS_ACCEPTED", "serpent, msgpack")
    monkeypatch.setenv("PYRO_PICKLE_PROTOCOL_VERSION", "2")
    monkeypatch.setenv("PYRO_METADATA", "false")  # not supported: ignored, with a warning
    try:
        Pyro4.config.reset()
        assert Pyro4.config.SERIALIZERS_ACCEPTED == {"serpent", "msgpack"}
        assert Pyro4.config.PICKLE_PROTOCOL_VERSION == 2 and Pyro4.config.METADATA is True
        assert "PYRO_METADATA is ignored" in caplog.text
    finally:
        for name in ("PYRO_SERIALIZERS_ACCEPTED", "PYRO_PICKLE_PROTOCOL_VERSION", "PYRO_METADATA"):
            monkeypatch.delenv(name)
        Pyro4.config.reset(useenvironment=False)


# --- daemons and proxies ---

def test_its_daemon_serves_pyro4_clients_without_accept_pyro4(pyro4_daemon):
    assert geopyro.config.ACCEPT_PYRO4 is False  # (see the fixture)
    with real_Pyro4.Proxy(pyro4_daemon) as proxy:
        assert proxy.echo("from Pyro4") == "from Pyro4"
    with Pyro4.Proxy(pyro4_daemon) as proxy:
        assert proxy._pyroProtocol == 48 and proxy.echo("from geopyro's Pyro4 API") == "from geopyro's Pyro4 API"
    with geopyro.api.Proxy(pyro4_daemon) as proxy:
        assert proxy.echo("from Pyro5's API") == "from Pyro5's API"


def test_its_daemon_accepts_only_the_serializers_pyro4_accepts(pyro4_daemon, real_pyro4_serializer):
    real_pyro4_serializer.SERIALIZER = "msgpack"  # not in Pyro4's default SERIALIZERS_ACCEPTED
    with real_Pyro4.Proxy(pyro4_daemon) as proxy:
        with pytest.raises(real_Pyro4.errors.CommunicationError, match="serializer that is not accepted: 6"):
            proxy.echo(1)


def test_its_proxies_stay_pyro4_proxies_when_copied_or_sent(pyro4_daemon):
    proxy = Pyro4.Proxy(pyro4_daemon)
    assert copy.copy(proxy)._pyroProtocol == 48
    travelled = serializers.get_pyro4_serializer("serpent")
    back = travelled.loads(travelled.dumps(proxy))
    assert type(back) is Pyro4.Proxy and back._pyroProtocol == 48


def test_errors_tracebacks_batches_and_async_calls(pyro4_daemon):
    with Pyro4.Proxy(pyro4_daemon) as proxy:
        try:
            proxy.fail()
        except ValueError:
            assert "Remote traceback" in "".join(Pyro4.util.getPyroTraceback())
        else:
            pytest.fail("no error")
        batch = Pyro4.batch(proxy)
        batch.echo(1)
        batch.echo(2)
        assert list(batch()) == [1, 2]
        Pyro4.asyncproxy(proxy)
        assert proxy.echo(3).value == 3


# --- futures ---

def test_future_chains_delays_and_cancels(monkeypatch):
    slept = []
    monkeypatch.setattr(Pyro4.futures.time, "sleep", slept.append)  # the delay, seen without timing anything
    future = Pyro4.Future(lambda a, b: a + b).then(lambda value: value * 10)
    assert future.delay(0.01)
    assert future(1, 2).value == 30 and slept == [0.01]
    with pytest.raises(RuntimeError, match="only be called once"):
        future(1, 2)
    assert not future.delay(1) and not future.cancel()
    cancelled = Pyro4.Future(lambda: 1)
    assert cancelled.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        cancelled()
    seen = []
    failing = Pyro4.Future(lambda: 1 / 0).iferror(seen.append)
    result = failing()
    with pytest.raises(ZeroDivisionError):
        result.value
    assert geopyro_wait_until(lambda: seen) and isinstance(seen[0], ZeroDivisionError)


def geopyro_wait_until(predicate, timeout=10.0):
    from support import wait_until
    return wait_until(predicate, timeout=timeout)


# --- naming, utilities ---

def test_name_server_functions_under_pyro4s_names(daemons, clean_config):
    uri, ns_daemon, bcserver = Pyro4.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    assert bcserver is None
    daemons.start(ns_daemon)
    service_daemon = daemons.start(Pyro4.Daemon(host="127.0.0.1"))
    service = service_daemon.register(Service())
    ns = Pyro4.locateNS(uri.host, uri.port)
    assert type(ns) is Pyro4.Proxy
    ns.register("example.service", service)
    assert ns.list(prefix="example.") == {"example.service": str(service)}
    with real_Pyro4.Proxy("PYRONAME:example.service@%s:%d" % (uri.host, uri.port)) as proxy:
        assert proxy.echo("found by a Pyro4 client") == "found by a Pyro4 client"
    assert Pyro4.resolve("PYRONAME:example.service@%s:%d" % (uri.host, uri.port)) == service
    ns._pyroRelease()


def test_utilities_under_pyro4s_names():
    assert Pyro4.socketutil.getIpAddress("localhost") in ("127.0.0.1", "::1")
    assert Pyro4.socketutil.getInterfaceAddress("127.0.0.1") == "127.0.0.1"
    assert Pyro4.socketutil.getIpVersion("127.0.0.1") == 4
    assert isinstance(Pyro4.socketutil.findProbablyUnusedPort(), int)
    assert Pyro4.util.get_serializer_by_id(1) is Pyro4.util.get_serializer("serpent")
    assert Pyro4.constants.PROTOCOL_VERSION == 48 and Pyro4.constants.DAEMON_NAME == "Pyro.Daemon"
    assert Pyro4.errors.NamingError is geopyro.errors.NamingError


def test_pyro4s_name_server_command_runs_geopyros(clean_config):
    import subprocess
    import sys

    from support import accepts, child_env, free_port, wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "geopyro.run", "-m", "Pyro4.naming", "-n", "127.0.0.1", "-p",
                             str(port), "-x"], env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: accepts(port), timeout=30), "the name server did not start"
        ns = real_Pyro4.locateNS("127.0.0.1", port)  # a real Pyro4 client
        assert ns.list() == {"Pyro.NameServer": "PYRO:Pyro.NameServer@127.0.0.1:%d" % port}
        ns._pyroRelease()
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert b"RuntimeWarning" not in err, err
