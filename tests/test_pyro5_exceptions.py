"""The exception types Pyro5 raises for a program's mistakes, raised by geopyro for the same call.

Programs catch these by type: a SerializeError where Pyro5 lets a TypeError
through would look like a network failure to retry code. Each case runs the
same call on Pyro5 and on geopyro and compares the types raised.
"""

import threading

import Pyro5.client
import Pyro5.protocol
import Pyro5.serializers
import Pyro5.server
import pytest

from geopyro import client, core, errors, protocol, serializers, server


def _deep():
    value = []
    for _ in range(100000):
        value = [value]
    return value


def _circular():
    value = [1]
    value.append(value)
    return value


UNWRITABLE = {
    "deep": _deep,
    "circular": _circular,
    "lock": threading.Lock,
    "generator": lambda: (i for i in range(3)),
    "bytes": lambda: b"\xff",
    "complex": lambda: 1j,
    "tuple key": lambda: {(1, 2): 3},
}


def outcome(call):
    """The name of the exception type ``call()`` raises (its Pyro5 or geopyro module left out), or 'ok'."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
@pytest.mark.parametrize("name", ["serpent", "json", "marshal", "msgpack"])
def test_serializing_what_a_serializer_cannot_write(name, case):
    value = UNWRITABLE[case]()
    theirs = Pyro5.serializers.serializers[name]
    ours = serializers.serializers[name]
    expected = outcome(lambda: theirs.dumpsCall("obj", "method", (value,), {}))
    assert outcome(lambda: ours.dumpsCall("obj", "method", (value,), {})) == expected
    assert outcome(lambda: ours.dumps(value)) == outcome(lambda: theirs.dumps(value))


def test_unserializable_argument_raises_before_anything_is_sent(daemons):
    """The error of the serializer reaches the caller, the proxy stays usable (nothing went on the wire)."""
    @server.expose
    class Echo:
        def echo(self, value):
            return value

    uri = daemons.serve(Echo)
    with client.Proxy(uri) as proxy:
        with pytest.raises(ValueError) as info:
            proxy.echo(_circular())
        assert not isinstance(info.value, errors.CommunicationError)
        assert proxy.echo(2) == 2


def test_unknown_serializer_on_a_proxy_is_a_key_error():
    for module in (Pyro5.client, client):
        proxy = module.Proxy("PYRO:obj@localhost:5555")
        proxy._pyroSerializer = "~invalidoverride~"
        proxy._pyroConnection = "not used: the serializer is looked up first"
        with pytest.raises(KeyError, match="invalidoverride"):
            proxy.method()
        proxy._pyroConnection = None


def test_registering_what_takes_no_attributes_is_an_attribute_error():
    with Pyro5.server.Daemon(port=0) as theirs, server.Daemon(port=0) as ours:
        for daemon in (theirs, ours):
            for thing in (None, 4444):
                with pytest.raises(AttributeError):
                    daemon.register(thing)
            with pytest.raises(TypeError):
                daemon.register(object.__new__(type("W", (), {})), 666)


@pytest.mark.parametrize("kwargs, expected", [
    ({"instance_mode": "~invalidmode~"}, TypeError),  # on a method: that it is not a class is found first
    ({"instance_mode": "percall", "instance_creator": float}, TypeError),
])
def test_behavior_on_a_method(kwargs, expected):
    for module in (Pyro5.server, server):
        with pytest.raises(expected):
            @module.behavior(**kwargs)
            def method(self):
                pass


def test_behavior_with_a_bad_mode_on_a_class_is_a_value_error():
    for module in (Pyro5.server, server):
        decorate = module.behavior(instance_mode="~invalidmode~")  # nothing checked until it decorates
        with pytest.raises(ValueError):
            decorate(type("C", (), {}))


def test_receiving_message_from_text_is_a_type_error():
    for module in (Pyro5.protocol, protocol):
        with pytest.raises(TypeError):
            module.ReceivingMessage("FOOBAR")
        with pytest.raises(errors.ProtocolError if module is protocol else Pyro5.errors.ProtocolError):
            module.ReceivingMessage(b"FOOBARFOOBARFOOBARFOOBARFOOBARFOOBAR1234")
    assert protocol._header_size == Pyro5.protocol._header_size == 40


@pytest.mark.parametrize("text", ["PYRO:12345@[[::1]]:4444", "PYRO:12345@[nothex]:4444"])
def test_bad_ipv6_uri_says_what_pyro5_says(text):
    with pytest.raises(Pyro5.errors.PyroError) as theirs:
        Pyro5.core.URI(text)
    with pytest.raises(errors.PyroError) as ours:
        core.URI(text)
    assert str(ours.value).startswith(str(theirs.value))


def test_expose_in_the_wrong_order_says_what_pyro5_says():
    for module in (Pyro5.server, server):
        with pytest.raises(AttributeError, match="must be done after"):
            class Wrong:
                @module.expose
                @classmethod
                def cmethod(cls):
                    pass


def test_proxy_takes_a_pyro5_uri_object():
    uri = Pyro5.core.URI("PYRO:obj@localhost:5555")
    proxy = client.Proxy(uri)
    assert isinstance(proxy._pyroUri, core.URI) and str(proxy._pyroUri) == str(uri)
    with pytest.raises(TypeError):
        client.Proxy(5555)
