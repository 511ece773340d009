"""URI parsing and formatting, checked against Pyro5.core.URI for every valid form."""

import pytest

import Pyro5.core

import geopyro
from geopyro import core
from geopyro.errors import PyroError
from geopyro.core import URI


@pytest.fixture(autouse=True)
def default_config():
    geopyro.config.reset(use_environment=False)
    yield
    geopyro.config.reset(use_environment=False)


VALID = [
    # text, protocol, object, sockname, host, port
    ("PYRO:objectid@localhost:9999", "PYRO", "objectid", None, "localhost", 9999),
    ("PYRO:obj.with.dots_and-dashes@example.com:1", "PYRO", "obj.with.dots_and-dashes", None, "example.com", 1),
    ("PYRO:obj@127.0.0.1:65535", "PYRO", "obj", None, "127.0.0.1", 65535),
    ("PYRO:obj@host:0", "PYRO", "obj", None, "host", 0),
    ("PYRO:obj@./u:/tmp/pyro.sock", "PYRO", "obj", "/tmp/pyro.sock", None, None),
    ("PYRO:obj@./u:relative_sock", "PYRO", "obj", "relative_sock", None, None),
    ("PYRO:obj@[::1]:4444", "PYRO", "obj", None, "::1", 4444),
    ("PYRO:obj@[2001:db8::ff00:42:8329]:80", "PYRO", "obj", None, "2001:db8::ff00:42:8329", 80),
    ("PYRONAME:my.name", "PYRONAME", "my.name", None, None, None),
    ("PYRONAME:my.name@nshost", "PYRONAME", "my.name", None, "nshost", 9090),
    ("PYRONAME:my.name@nshost:5555", "PYRONAME", "my.name", None, "nshost", 5555),
    ("PYRONAME:my.name@[::1]", "PYRONAME", "my.name", None, "::1", 9090),
    ("PYRONAME:my.name@[::1]:5555", "PYRONAME", "my.name", None, "::1", 5555),
    ("PYRONAME:my.name@./u:/tmp/ns.sock", "PYRONAME", "my.name", "/tmp/ns.sock", None, None),
    ("PYROMETA:meta1", "PYROMETA", {"meta1"}, None, None, None),
    ("PYROMETA:m1,m2@host", "PYROMETA", {"m1", "m2"}, None, "host", 9090),
    ("PYROMETA:m1,m2,m3@host:1234", "PYROMETA", {"m1", "m2", "m3"}, None, "host", 1234),
    ("pyro:obj@host:1", "PYRO", "obj", None, "host", 1),
    ("pyroname:name", "PYRONAME", "name", None, None, None),
    ("PyroName:name@h:2", "PYRONAME", "name", None, "h", 2),
    ("pyrometa:a,b", "PYROMETA", {"a", "b"}, None, None, None),
]


@pytest.mark.parametrize("text, protocol, obj, sockname, host, port", VALID, ids=[v[0] for v in VALID])
def test_valid_forms(text, protocol, obj, sockname, host, port):
    uri = URI(text)
    assert (uri.protocol, uri.object, uri.sockname, uri.host, uri.port) == (protocol, obj, sockname, host, port)


@pytest.mark.parametrize("text", [v[0] for v in VALID])
def test_same_parse_as_pyro5(text):
    ours = URI(text)
    theirs = Pyro5.core.URI(text)
    assert ours.__getstate__() == theirs.__getstate__()
    assert ours.location == theirs.location
    if ours.protocol == "PYROMETA":
        # Pyro5 joins the set in iteration order; geopyro sorts: same elements either way
        assert str(ours).split("@")[0].split(":", 1)[1].split(",") == sorted(ours.object)
        assert set(str(theirs).split("@")[0].split(":", 1)[1].split(",")) == ours.object
        assert str(ours).partition("@")[2] == str(theirs).partition("@")[2]
    else:
        assert str(ours) == str(theirs)


@pytest.mark.parametrize("text", [
    "PYRO:objectid@localhost:9999", "PYRO:obj@./u:/tmp/pyro.sock", "PYRO:obj@[::1]:4444", "PYRONAME:my.name",
    "PYRONAME:my.name@nshost:5555", "PYRONAME:my.name@[::1]:5555", "PYROMETA:a,b,c@host:1234", "PYROMETA:x"])
def test_str_round_trip(text):
    assert str(URI(text)) == text
    assert URI(str(URI(text))) == URI(text)


def test_str_adds_default_port_and_uppercases():
    assert str(URI("pyroname:name@host")) == "PYRONAME:name@host:9090"
    assert str(URI("pyrometa:b,a@host")) == "PYROMETA:a,b@host:9090"
    assert str(URI("pyro:obj@host:1")) == "PYRO:obj@host:1"


def test_default_port_comes_from_config():
    geopyro.config.NS_PORT = 12345
    assert URI("PYRONAME:name@host").port == 12345
    assert URI("PYROMETA:m@host").port == 12345
    assert URI("PYRONAME:name@host:77").port == 77
    assert URI("PYRONAME:name").port is None


def test_location_property():
    assert URI("PYRO:o@host:5").location == "host:5"
    assert URI("PYRO:o@[::1]:5").location == "[::1]:5"
    assert URI("PYRO:o@./u:sock").location == "./u:sock"
    assert URI("PYRONAME:o").location is None
    assert URI.isUnixsockLocation("./u:sock")
    assert not URI.isUnixsockLocation("host:5")


def test_equality_and_hash():
    a = URI("PYRO:obj@host:9999")
    assert a == URI("pyro:obj@host:9999")
    assert hash(a) == hash(URI("pyro:obj@host:9999"))
    assert not a != URI("PYRO:obj@host:9999")
    for other in ("PYRO:obj@host:9998", "PYRO:obj2@host:9999", "PYRO:obj@other:9999", "PYRONAME:obj@host:9999"):
        assert a != URI(other)
        assert not a == URI(other)
    assert a != "PYRO:obj@host:9999"
    assert a != Pyro5.core.URI("PYRO:obj@host:9999")  # a different class, even with the same state
    assert len({a, URI("PYRO:obj@host:9999"), URI("PYRO:obj@host:1")}) == 2
    meta = URI("PYROMETA:a,b@host")
    assert meta == URI("PYROMETA:b,a@host")
    assert hash(meta) == hash(URI("PYROMETA:b,a@host"))
    assert meta in {URI("PYROMETA:b,a@host")}
    assert {a: 1}[URI("PYRO:obj@host:9999")] == 1


def test_copy_constructor():
    original = URI("PYRO:obj@host:9999")
    copy = URI(original)
    assert copy == original and copy is not original
    copy.port = 1
    assert original.port == 9999
    meta = URI(URI("PYROMETA:a,b@host:1"))
    assert meta.object == {"a", "b"} and meta.host == "host"


def test_getstate_setstate():
    uri = URI("PYRO:obj@host:9999")
    assert uri.__getstate__() == ("PYRO", "obj", None, "host", 9999)
    restored = URI.__new__(URI)
    restored.__setstate__(uri.__getstate__())
    assert restored == uri
    meta = URI.__new__(URI)
    meta.__setstate__(("PYROMETA", ["a", "b"], None, None, None))  # as json/msgpack deliver a set
    assert meta.object == {"a", "b"}
    assert meta == URI("PYROMETA:a,b")


def test_repr():
    assert "PYRO:obj@host:9999" in repr(URI("PYRO:obj@host:9999"))
    assert repr(URI("PYRO:obj@host:9999")).startswith("<geopyro.core.URI at 0x")


def test_not_a_string():
    with pytest.raises(TypeError):
        URI(12345)
    with pytest.raises(TypeError):
        URI(None)


@pytest.mark.parametrize("text, message", [
    ("", "expected PROTOCOL:object"),
    ("just text", "expected PROTOCOL:object"),
    ("http://host:80/", "expected PROTOCOL:object"),
    ("PYRO:", "expected PROTOCOL:object"),
    ("PYRO:obj with space@host:1", "expected PROTOCOL:object"),
    ("PYROX:obj@host:1", "unknown protocol PYROX"),
    ("pyrofoo:obj", "unknown protocol PYROFOO"),
    ("PYRO:obj", "needs a location"),
    ("PYRO:obj@host", "missing port"),
    ("PYRO:obj@host:", "missing port"),
    ("PYRO:obj@:9999", "missing host"),
    ("PYRO:obj@host:abc", "not a number"),
    ("PYRO:obj@host:12x", "not a number"),
    ("PYRONAME:obj@host:port", "not a number"),
    ("PYRO:obj@[[::1]]:5", "too many brackets"),
    ("PYRONAME:obj@[[::1]]", "too many brackets"),
    ("PYRO:obj@::1:5", "brackets"),
    ("PYRO:obj@fe80::1:5", "brackets"),
    ("PYRO:obj@host:1:2", "brackets"),
    ("PYRO:obj@[nothex]:5", "numeric ipv6"),
    ("PYRO:obj@[::1]:abc", "numeric ipv6"),
    ("PYRO:obj@[::1", "numeric ipv6"),
    ("PYRO:obj@./u:", "bad unix socket name"),
    ("PYRO:obj@./u:a:b", "bad unix socket name"),
    ("PYRONAME:obj@./u:", "bad unix socket name"),
])
def test_invalid_forms_say_what_is_wrong(text, message):
    with pytest.raises(PyroError, match=message) as info:
        URI(text)
    assert type(info.value) is PyroError
    assert str(info.value).startswith(("invalid uri", "invalid ipv6 address: "))  # (the latter: Pyro5's words)


@pytest.mark.parametrize("text", ["PYROX:obj@host:1", "PYRO:obj", "PYRO:obj@host:abc", "PYRO:obj@[[::1]]:5",
                                  "PYRO:obj@[nothex]:5", "PYRO:obj@./u:", "PYRO:obj@./u:a:b", "foo"])
def test_pyro5_rejects_these_as_well(text):
    import Pyro5.errors
    with pytest.raises(Pyro5.errors.PyroError):
        Pyro5.core.URI(text)
    with pytest.raises(PyroError):
        URI(text)


def test_host_for_uri_brackets_ipv6_only():
    assert core.host_for_uri("::1") == "[::1]"
    assert core.host_for_uri("fe80::1%eth0") == "[fe80::1%eth0]"
    assert core.host_for_uri("127.0.0.1") == "127.0.0.1"
    assert core.host_for_uri("localhost") == "localhost"
