"""Instance modes (session, single, percall), instance_creator, and autoproxying of registered objects."""

import threading

import pytest

from geopyro import errors
from geopyro.client import Proxy
from geopyro.server import Daemon, behavior, expose


def make_counting_class(mode=None, creator=None):
    """A fresh exposed class that records every instance made of it."""

    class Counted:
        instances = []

        def __init__(self, label="default"):
            self.label = label
            self.calls = 0
            Counted.instances.append(self)

        @expose
        def hit(self):
            self.calls += 1
            return [id(self), self.calls, self.label]

    if mode is not None:
        Counted = behavior(instance_mode=mode, instance_creator=creator)(Counted)
    return Counted


def calls_through_two_proxies(uri, per_proxy=3):
    with Proxy(uri) as a, Proxy(uri) as b:
        results_a = [a.hit() for _ in range(per_proxy)]
        results_b = [b.hit() for _ in range(per_proxy)]
    return results_a, results_b


def test_default_is_session(daemons, servertype):
    clazz = make_counting_class()
    uri = daemons.serve(clazz)
    a, b = calls_through_two_proxies(uri)
    assert len(clazz.instances) == 2
    assert len({r[0] for r in a}) == 1 and len({r[0] for r in b}) == 1
    assert a[0][0] != b[0][0]
    assert [r[1] for r in a] == [1, 2, 3] and [r[1] for r in b] == [1, 2, 3]


def test_session(daemons, servertype):
    clazz = make_counting_class("session")
    uri = daemons.serve(clazz)
    a, b = calls_through_two_proxies(uri)
    assert len(clazz.instances) == 2
    assert {r[0] for r in a} != {r[0] for r in b}
    assert [r[1] for r in a] == [1, 2, 3] and [r[1] for r in b] == [1, 2, 3]
    # a reconnect of the same proxy is a new session
    with Proxy(uri) as p:
        first = p.hit()
        p._pyroRelease()
        second = p.hit()
    assert first[1] == 1 and second[1] == 1
    assert len(clazz.instances) == 4


def test_single(daemons, servertype):
    clazz = make_counting_class("single")
    uri = daemons.serve(clazz)
    assert clazz.instances == []
    a, b = calls_through_two_proxies(uri)
    assert len(clazz.instances) == 1
    assert {r[0] for r in a} == {r[0] for r in b}
    assert [r[1] for r in a + b] == [1, 2, 3, 4, 5, 6]


def test_single_is_per_daemon(daemons, servertype):
    clazz = make_counting_class("single")
    uri1 = daemons.serve(clazz)
    uri2 = daemons.serve(clazz)
    with Proxy(uri1) as p1, Proxy(uri2) as p2:
        assert p1.hit()[1] == 1
        assert p2.hit()[1] == 1
    assert len(clazz.instances) == 2


def test_percall(daemons, servertype):
    clazz = make_counting_class("percall")
    uri = daemons.serve(clazz)
    a, b = calls_through_two_proxies(uri)
    assert len(clazz.instances) == 6
    assert all(r[1] == 1 for r in a + b)


@pytest.mark.parametrize("mode,expected", [("session", 2), ("single", 1), ("percall", 6)])
def test_instance_creator(daemons, servertype, mode, expected):
    created_for = []

    def creator(clazz):
        created_for.append(clazz)
        return clazz("made by creator")

    clazz = make_counting_class(mode, creator)
    uri = daemons.serve(clazz)
    a, b = calls_through_two_proxies(uri)
    assert len(clazz.instances) == expected
    assert created_for == [clazz] * expected
    assert all(r[2] == "made by creator" for r in a + b)


def test_instance_creator_wrong_type(daemons, servertype):
    clazz = make_counting_class("session", lambda cls: "not an instance")
    uri = daemons.serve(clazz)
    with Proxy(uri) as p:
        with pytest.raises(TypeError, match="different type"):
            p.hit()


def test_instance_creator_failing(daemons, servertype):
    def creator(clazz):
        raise RuntimeError("cannot make one")

    clazz = make_counting_class("percall", creator)
    uri = daemons.serve(clazz)
    with Proxy(uri) as p:
        with pytest.raises(RuntimeError, match="cannot make one"):
            p.hit()


def test_class_needing_arguments_without_creator(daemons, servertype):
    @expose
    class NeedsArgs:
        def __init__(self, required):
            self.required = required

        def method(self):
            return self.required

    uri = daemons.serve(NeedsArgs)
    with Proxy(uri) as p:
        with pytest.raises(TypeError):
            p.method()


def test_single_instance_made_once_under_concurrency(daemons, servertype):
    clazz = make_counting_class("single")
    uri = daemons.serve(clazz)
    results = []

    def worker():
        with Proxy(uri) as p:
            results.append(p.hit()[0])

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 5
    assert len(clazz.instances) == 1 and len(set(results)) == 1


# --- autoproxy ---

@expose
class Child:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


@expose
class Factory:
    def __init__(self):
        self.children = []

    def make_child(self, name):
        child = Child(name)
        self._pyroDaemon.register(child)
        self.children.append(child)
        return child

    def make_unregistered(self, name):
        return Child(name)

    def inspect_argument(self, thing):
        result = [type(thing).__name__, isinstance(thing, Proxy)]
        if isinstance(thing, Proxy):
            with thing:
                result.append(thing.get_name())
        return result


AUTOPROXY_SERIALIZERS = ["serpent", "json", "msgpack"]


@pytest.mark.parametrize("serializer", AUTOPROXY_SERIALIZERS)
def test_registered_object_returned_as_proxy(daemons, servertype, serializer):
    daemon = Daemon(host="127.0.0.1")
    factory = Factory()
    uri = daemon.register(factory)
    daemons.start(daemon)
    with Proxy(uri) as p:
        p._pyroSerializer = serializer
        child = p.make_child("kid")
        assert isinstance(child, Proxy)
        assert child._pyroUri.object == factory.children[0]._pyroId
        assert child._pyroUri.location == daemon.locationStr
        with child:
            assert child.get_name() == "kid"
        with pytest.raises(errors.SerializeError):
            p.make_unregistered("stray")  # not registered: travels as plain data, an unknown class here


@pytest.mark.parametrize("serializer", AUTOPROXY_SERIALIZERS)
def test_registered_object_argument_arrives_as_proxy(daemons, servertype, serializer):
    server_uri = daemons.serve(Factory)
    client_daemon = Daemon(host="127.0.0.1")  # the client publishes an object of its own (a callback)
    mine = Child("client side object")
    client_daemon.register(mine)
    daemons.start(client_daemon)
    with Proxy(server_uri) as p:
        p._pyroSerializer = serializer
        assert p.inspect_argument(mine) == ["Proxy", True, "client side object"]
        with pytest.raises(errors.SerializeError):
            p.inspect_argument(Child("plain"))  # not registered: no proxy, and the server can't rebuild it


def test_no_autoproxy_with_marshal(daemons, servertype, clean_config):
    """Documented: with the marshal serializer autoproxying doesn't work."""
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Factory())
    daemons.start(daemon)
    with Proxy(uri) as p:
        p._pyroSerializer = "marshal"
        try:
            child = p.make_child("kid")
        except (ValueError, errors.SerializeError):
            return  # marshal could not carry it, or it came as a dict of a class this side cannot rebuild: no proxy
        assert not isinstance(child, Proxy)
