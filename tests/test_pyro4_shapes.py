"""Pyro's own objects in Pyro4's names and shapes, for Pyro4 clients (and read back from them)."""

import gevent
import Pyro4.util
import pytest

import geopyro.api as api
from geopyro import core, errors, protocol48, serializers, server

SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]


def pyro4_reads(name, data):
    """What Pyro4 4.82's own serializer ``name`` makes of ``data``."""
    return Pyro4.util.get_serializer_by_id(protocol48.SERIALIZER_IDS[name]).deserializeData(data)


@pytest.mark.parametrize("name", SERIALIZERS)
def test_pyro4_reads_our_uris_errors_and_batch_wrappers(name):
    ours = serializers.get_pyro4_serializer(name)
    uri, error, wrapped = (pyro4_reads(name, ours.dumps(value)) for value in (  # (one by one: marshal takes
        api.URI("PYRO:obj@localhost:1234"), errors.NamingError("no name"),    # no objects inside a list)
        core._ExceptionWrapper(errors.CommunicationError("lost"))))
    assert isinstance(uri, Pyro4.core.URI) and str(uri) == "PYRO:obj@localhost:1234"
    assert type(error) is Pyro4.errors.NamingError and str(error) == "no name"
    assert type(wrapped.exception) is Pyro4.errors.CommunicationError


@pytest.mark.parametrize("name", ["serpent", "json", "msgpack"])  # (marshal cannot carry a proxy)
def test_pyro4_reads_our_proxies_and_we_read_theirs(name):
    ours = serializers.get_pyro4_serializer(name)
    proxy = api.Proxy("PYRO:obj@localhost:1234")
    proxy._pyroTimeout = 2.5
    theirs = pyro4_reads(name, ours.dumps(proxy))
    assert isinstance(theirs, Pyro4.core.Proxy) and str(theirs._pyroUri) == "PYRO:obj@localhost:1234"
    back = ours.loads(Pyro4.util.get_serializer(name).serializeData(theirs)[0])
    assert isinstance(back, api.Proxy) and str(back._pyroUri) == "PYRO:obj@localhost:1234"


def test_a_daemon_travels_under_pyro4s_name():
    text = serializers.get_pyro4_serializer("serpent").dumps(server.Daemon.__new__(server.Daemon))
    assert b"Pyro4.core.Daemon" in text
    assert isinstance(serializers.get_pyro4_serializer("serpent").loads(text), server.Daemon)


def test_pyro4_shapes_stay_with_the_greenlet_that_writes_them():
    """A converter that yields must not let another greenlet's Pyro5 reply go out in Pyro4's names (or cut
    a Pyro4 reply short of them)."""
    class Slow:
        pass

    def slow_to_dict(obj):
        gevent.sleep(0.01)
        return {"__class__": "Slow"}

    serializers.SerializerBase.register_class_to_dict(Slow, slow_to_dict)
    try:
        uri = api.URI("PYRO:obj@localhost:1234")
        pyro4 = gevent.spawn(serializers.get_pyro4_serializer("serpent").dumps, [Slow(), uri])
        gevent.sleep(0.001)  # the Pyro4 writer waits in its converter now
        pyro5 = gevent.spawn(serializers.get_serializer("serpent").dumps, [uri, Slow(), uri])
        gevent.joinall([pyro4, pyro5], raise_error=True)
        assert b"Pyro4.core.URI" in pyro4.value and b"Pyro5" not in pyro4.value
        assert b"Pyro5.core.URI" in pyro5.value and b"Pyro4" not in pyro5.value
    finally:
        serializers.SerializerBase.unregister_class_to_dict(Slow)


def test_a_proxy_from_a_pyro4_peer_talks_pyro4_with_its_key():
    """A Pyro4 client's callback object lives in a Pyro4 daemon: the proxy for it must speak protocol 48."""
    theirs = Pyro4.Proxy("PYRO:callback@localhost:1234")
    theirs._pyroHmacKey = b"their key"
    wire = Pyro4.util.get_serializer("serpent").serializeData(theirs)[0]
    ours = serializers.get_pyro4_serializer("serpent").loads(wire)
    assert ours._pyroProtocol == 48 and ours._pyroHmacKey == b"their key"
    back = pyro4_reads("serpent", serializers.get_pyro4_serializer("serpent").dumps(ours))
    assert back._pyroHmacKey == b"their key" and str(back._pyroUri) == "PYRO:callback@localhost:1234"
    plain = serializers.get_serializer("serpent")
    assert plain.loads(plain.dumps(api.Proxy("PYRO:x@localhost:1")))._pyroProtocol is None  # 502 proxies stay
