"""geopyro proxies talk to unmodified Pyro4 4.82 servers (protocol 48): per proxy, or for all through config.

The Pyro4 daemon and name server run in subprocesses; geopyro's proxies run in this test process.
"""

import subprocess
import sys
import time

import pytest

import geopyro.api as api
from geopyro import config, errors
from support import accepts, child_env, first_line, free_port, wait_until

pytest.importorskip("Pyro4", reason="Pyro4 is the server these tests call")

SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
STARTUP_DEADLINE = 30.0

PYRO4_SERVER = r'''
import sys

import Pyro4
import Pyro4.errors

Pyro4.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "msgpack"}


@Pyro4.expose
class Service:
    def echo(self, value):
        return value

    def fail(self, message):
        raise ValueError(message)

    def fail_naming(self, name):
        raise Pyro4.errors.NamingError("unknown name: %s" % name)

    def location(self):
        return Pyro4.URI("PYRO:elsewhere@localhost:4321")

    def describe(self, proxy):
        return [type(proxy).__module__, type(proxy).__name__, str(proxy._pyroUri)]

    @Pyro4.oneway
    def record(self, item):
        self.recorded = item

    def last_recorded(self):
        return getattr(self, "recorded", None)

    @property
    def size(self):
        return 42

    def numbers(self, count):
        return (number * number for number in range(count))


daemon = Pyro4.Daemon(host="127.0.0.1")
if sys.argv[1]:
    daemon._pyroHmacKey = sys.argv[1].encode()
print(daemon.register(Service(), "service"), flush=True)
daemon.requestLoop()
'''


@pytest.fixture
def pyro4_server():
    procs = []

    def start(hmac_key=""):
        proc = subprocess.Popen([sys.executable, "-c", PYRO4_SERVER, hmac_key], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env())
        procs.append(proc)
        return first_line(proc, time.monotonic() + STARTUP_DEADLINE, "the Pyro4 server")

    yield start
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)


def pyro4_proxy(uri, serializer="serpent", hmac_key=None):
    proxy = api.Proxy(uri)
    proxy._pyroProtocol = 48
    proxy._pyroSerializer = serializer
    proxy._pyroHmacKey = hmac_key
    return proxy


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_a_geopyro_proxy_calls_a_pyro4_daemon(pyro4_server, serializer):
    with pyro4_proxy(pyro4_server(), serializer) as proxy:
        assert proxy.echo([1, "two", 3.5, {"k": None}]) == [1, "two", 3.5, {"k": None}]
        assert {"echo", "fail", "record"} <= proxy._pyroMethods and "record" in proxy._pyroOneway
        with pytest.raises(ValueError, match="bad value"):
            proxy.fail("bad value")
        with pytest.raises(errors.NamingError, match="unknown name: x"):
            proxy.fail_naming("x")  # Pyro4's errors arrive as geopyro's (Pyro5's) classes
        location = proxy.location()
        assert isinstance(location, api.URI) and str(location) == "PYRO:elsewhere@localhost:4321"
        proxy.record("fired")
        assert proxy.last_recorded() == "fired"
        assert proxy.size == 42
        with proxy._pyroBatch() as batch:  # (a batch's flags mean the same in both protocols)
            batch.echo(1)
            batch.echo(2)
        assert list(batch()) == [1, 2]
        if serializer != "marshal":  # marshal cannot carry a proxy
            assert proxy.describe(api.Proxy("PYRO:cb@localhost:1")) == \
                ["Pyro4.core", "Proxy", "PYRO:cb@localhost:1"]


def test_streamed_results_from_a_pyro4_daemon(pyro4_server):
    with pyro4_proxy(pyro4_server()) as proxy:
        assert list(proxy.numbers(5)) == [0, 1, 4, 9, 16]


def test_hmac_signing_with_a_pyro4_daemon(pyro4_server):
    uri = pyro4_server("sesame")
    with pyro4_proxy(uri, hmac_key="sesame") as proxy:
        assert proxy.echo("signed") == "signed"
    for key, error in [(b"wrong", "message hmac mismatch"), (None, "hmac key config not symmetric")]:
        with pyro4_proxy(uri, hmac_key=key) as proxy:
            with pytest.raises(errors.CommunicationError, match=error):
                proxy.echo("refused")


def test_config_makes_every_proxy_talk_to_pyro4(pyro4_server, monkeypatch):
    uri = pyro4_server()
    monkeypatch.setattr(config, "CLIENT_PROTOCOL", 48)
    with api.Proxy(uri) as proxy:
        assert proxy.echo("through config") == "through config"
    monkeypatch.setattr(config, "CLIENT_PROTOCOL", 47)
    with api.Proxy(uri) as proxy:
        with pytest.raises(errors.PyroError, match="unknown protocol version 47"):
            proxy.echo("no such protocol")


def test_a_pyro4_name_server_serves_geopyro_clients(pyro4_server, monkeypatch):
    port = free_port()
    ns_proc = subprocess.Popen([sys.executable, "-m", "Pyro4.naming", "-n", "127.0.0.1", "-p", str(port), "-x"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    try:
        assert wait_until(lambda: accepts(port), timeout=STARTUP_DEADLINE), "Pyro4's name server did not start"
        monkeypatch.setattr(config, "CLIENT_PROTOCOL", 48)
        ns = api.locate_ns("127.0.0.1", port)
        ns.register("pyro4.service", pyro4_server(), metadata={"old"})
        uri, metadata = ns.lookup("pyro4.service", return_metadata=True)
        assert isinstance(uri, api.URI) and list(metadata) == ["old"]  # (Pyro4's name server sends a list)
        assert list(ns.list(prefix="pyro4.")) == ["pyro4.service"]
        assert list(ns.list(metadata_all={"old"})) == ["pyro4.service"]  # (Pyro4 has no yplookup)
        with api.Proxy("PYRONAME:pyro4.service@127.0.0.1:%d" % port) as proxy:
            assert proxy.echo("found by name") == "found by name"
        with pytest.raises(errors.NamingError):
            ns.lookup("missing")
        ns._pyroRelease()
    finally:
        ns_proc.kill()
        ns_proc.wait(timeout=10)
