"""A hostile client cannot reach anything that is not exposed, by any path the protocol offers.

Calls are made with a raw wire client (``RawClient``), so the client side's own checks are not in the way:
method names, attribute get/set, metadata, streams, batches, oneway calls, blobs and autoproxies all
go straight to the daemon. After every probe the secrets must be untouched and the daemon must still serve.
"""

import pickle
import types
import uuid

import pytest

import geopyro
from certs import RawClient
from geopyro import core, protocol, serializers
from geopyro.api import Proxy, expose

SECRET = "the crown jewels"


class Marker:
    """Records every forbidden thing that ran; a probe that reaches one of them fails the test."""

    ran = []


@expose
class Child:
    """Registered, so it goes back to clients as an autoproxy."""

    def __init__(self):
        self._secret = SECRET

    def name(self):
        return "child"

    def _private(self):
        Marker.ran.append("Child._private")
        return self._secret


class Target:
    class_secret = SECRET

    def __init__(self, child):
        self._secret = SECRET
        self.plain_attribute = SECRET
        self.child = child
        self._value = 1

    @expose
    def ok(self):
        return "ok"

    @expose
    def get_child(self):
        return self.child

    @expose
    def numbers(self):
        return iter(range(3))

    @expose
    def kinds(self, *args, **kwargs):
        """The type names found anywhere in the arguments (to see what a deserializer let through)."""
        found = set()

        def walk(value):
            found.add(type(value).__name__)
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(key)
                    walk(item)
            elif isinstance(value, (list, tuple, set, frozenset)):
                for item in value:
                    walk(item)
        walk(list(args))
        walk(kwargs)
        return sorted(found)

    @expose
    @property
    def readonly(self):
        return self._value

    @expose
    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):  # (writable remotely: the property is exposed, as in Pyro5; no test writes it here)
        Marker.ran.append("value.setter")
        self._value = new

    def unexposed(self):
        Marker.ran.append("Target.unexposed")
        return SECRET

    def _private(self):
        Marker.ran.append("Target._private")
        return SECRET

    def __private(self):
        Marker.ran.append("Target.__private")
        return SECRET

    def __getattr__(self, name):
        if name.startswith(("__", "_pyro")):
            raise AttributeError(name)  # what the machinery itself may look up (copy, pickle, registration)
        Marker.ran.append("Target.__getattr__(%s)" % name)
        return lambda *args, **kwargs: SECRET

    def __call__(self, *args):
        Marker.ran.append("Target.__call__")
        return SECRET


@pytest.fixture
def served(daemons, servertype):
    """A daemon (of the parametrized type) serving a Target and its registered Child; yields (daemon, raw client)."""
    Marker.ran.clear()
    daemon = daemons.start()
    child = Child()
    daemon.register(child, "child")
    target = Target(child)
    daemon.register(target, "target")
    with RawClient(daemon.locationStr) as client:
        client.connect("target")
        yield daemon, client, target
    # the daemon serves as before, nothing forbidden ran, the secrets are where they were
    with fresh_client(daemon) as client:
        assert client.call("target", "ok") == (False, "ok")
    assert Marker.ran == []
    assert target._secret == SECRET and target.plain_attribute == SECRET and target._value in (1, 2)
    assert set(daemon.objectsById) == {core.DAEMON_NAME, "target", "child"}
    assert daemon.transportServer is not None


def fresh_client(daemon):
    """A new connection (a SecurityError makes the daemon close the connection after its error reply)."""
    client = RawClient(daemon.locationStr)
    client.connect("target")
    return client


def refused(result):
    """A call came back as an exception that does not carry the secret."""
    assert result is not None, "the server closed the connection instead of refusing the call"
    failed, value = result
    assert failed, "the call was not refused, it returned %r" % (value,)
    assert SECRET not in repr(value)
    return value


FORBIDDEN_METHODS = [
    "unexposed", "_private", "__private", "_Target__private", "class_secret", "plain_attribute", "child",
    "_secret", "__class__", "__dict__", "__init__", "__getattr__x", "__getattribute__", "__call__", "__reduce__",
    "__reduce_ex__", "__dir__", "__sizeof__", "__subclasshook__", "__init_subclass__", "__module__", "__doc__",
    "__globals__", "__code__", "__builtins__", "__weakref__", "__setattr__x", "__delattr__", "__len__",
    "ok.__globals__", "ok.__func__", "a.b", "__class__.__subclasses__", "ok.__self__", "get_child._private",
    "readonly", "value", "made_up_by_getattr", "", ".", "ok.", " ok", "ok\x00", "_pyroDaemon", "_pyroId",
    "_pyroInstancing", "__getstate__", "__setstate__", "__format__", "__eq__", "__hash__",
]


@pytest.mark.parametrize("method", FORBIDDEN_METHODS)
def test_forbidden_method_names(served, method):
    _, client, _ = served
    error = refused(client.call("target", method))
    assert isinstance(error, (AttributeError, geopyro.errors.PyroError)), error


@pytest.mark.parametrize("name", ["_secret", "__dict__", "__class__", "class_secret", "plain_attribute", "child",
                                  "ok", "unexposed", "made_up", "_pyroDaemon", "__globals__", "ok.__globals__",
                                  "a.b", "_value", "__module__", "__getattr__", "__init__"])
def test_attribute_get_of_anything_but_exposed_properties(served, name):
    _, client, _ = served
    refused(client.call("target", "__getattr__", [name]))
    assert client.call("target", "__getattr__", ["readonly"]) == (False, 1)


@pytest.mark.parametrize("name", ["_secret", "__dict__", "__class__", "class_secret", "plain_attribute", "readonly",
                                  "ok", "_value", "made_up", "__getattr__", "a.b", "_pyroDaemon"])
def test_attribute_set_of_anything_but_exposed_setters(served, name):
    _, client, target = served
    refused(client.call("target", "__setattr__", [name, "overwritten"]))
    assert target.__dict__.get("made_up") is None and target._value == 1


def test_attribute_access_with_bad_argument_shapes(served):
    _, client, _ = served
    for vargs in ([], [1], [None], [["_secret"]], [{"a": 1}], ["_secret", 1, 2]):
        for method in ("__getattr__", "__setattr__"):
            refused(client.call("target", method, vargs))


def test_metadata_lists_only_exposed_members(served):
    daemon, client, _ = served
    failed, meta = client.call(core.DAEMON_NAME, "get_metadata", ["target"])
    assert not failed
    assert set(meta["methods"]) == {"ok", "get_child", "numbers", "kinds"}
    assert set(meta["attrs"]) == {"readonly", "value"}
    assert set(meta["oneway"]) == set()
    for object_id in ("no such object", "", "_private", "Pyro.Daemon.daemon", "target.child", "__class__",
                      None, 42, ["target"]):
        refused(client.call(core.DAEMON_NAME, "get_metadata", [object_id]))
    failed, meta = client.call(core.DAEMON_NAME, "get_metadata", [core.DAEMON_NAME])
    assert set(meta["methods"]) == {"registered", "ping", "info", "get_metadata", "get_next_stream_item",
                                    "close_stream"}
    assert not meta["attrs"]


@pytest.mark.parametrize("method", ["daemon", "shutdown", "close", "register", "unregister", "objectsById",
                                    "_pyroInstances", "transportServer", "__init__", "_handshake", "_dispatch",
                                    "_streams", "validateHandshake", "requestLoop", "sock", "_settings",
                                    "daemon.shutdown", "daemon.objectsById", "__class__", "__dict__"])
def test_daemon_internals(served, method):
    daemon, client, _ = served
    refused(client.call(core.DAEMON_NAME, method, []))
    refused(client.call(core.DAEMON_NAME, "__getattr__", [method]))
    refused(client.call(core.DAEMON_NAME, "__setattr__", [method, None]))
    assert daemon.transportServer is not None


def test_streams_with_made_up_ids(served):
    _, client, _ = served
    for stream_id in ("", "x", str(uuid.uuid4()), "../etc", "target", "__class__", 0, None, 1.5, ["a"], {"a": 1}):
        refused(client.call(core.DAEMON_NAME, "get_next_stream_item", [stream_id]))
        failed, _ = client.call(core.DAEMON_NAME, "close_stream", [stream_id]) or (True, None)
        # close_stream of an unknown id is a harmless no-op (as in Pyro5); an unhashable id is an error
    # a real stream still works after all that, and only yields its own items
    client.send(client.invoke_bytes(client.serializer.dumpsCall("target", "numbers", [], {})))
    reply = client.receive()
    assert reply.flags & protocol.FLAGS_ITEMSTREAMRESULT
    stream_id = bytes(reply.annotations["STRM"]).decode()
    assert [client.call(core.DAEMON_NAME, "get_next_stream_item", [stream_id])[1] for _ in range(3)] == [0, 1, 2]
    refused(client.call(core.DAEMON_NAME, "get_next_stream_item", [stream_id]))  # ended: gone


def batch(client, calls, flags=protocol.FLAGS_BATCH):
    payload = client.serializer.dumpsCall("target", "<batch>", calls, None)
    client.send(client.invoke_bytes(payload, flags))
    if flags & protocol.FLAGS_ONEWAY:
        return None
    msg = client.receive()
    return bool(msg.flags & protocol.FLAGS_EXCEPTION), client.serializer.loads(msg.data)


@pytest.mark.parametrize("method", ["_private", "unexposed", "__class__", "__dict__", "ok.__globals__", "a.b",
                                    "made_up", "__getattr__", "__setattr__", "readonly"])
def test_batch_cannot_reach_what_single_calls_cannot(served, method):
    _, client, _ = served
    refused(batch(client, [["ok", [], {}], [method, ["_secret"], {}]]))
    batch(client, [[method, ["_secret"], {}]], protocol.FLAGS_BATCH | protocol.FLAGS_ONEWAY)
    for malformed in ([["ok"]], [[1, [], {}]], ["ok"], [None], "ok", [["ok", [], {}], ["ok", {}, []]]):
        failed, result = batch(client, malformed)
        if not failed:  # a batch reports a failing call as an exception in its place, as Pyro5 does
            assert isinstance(result[-1], core._ExceptionWrapper), result
            assert SECRET not in repr(result[-1].exception)
    assert batch(client, [["ok", [], {}], ["ok", [], {}]]) == (False, ["ok", "ok"])


def test_oneway_flag_does_not_open_a_back_door(served):
    _, client, _ = served
    for method in ("_private", "unexposed", "__call__", "made_up", "__getattr__"):
        client.call("target", method, [], flags=protocol.FLAGS_ONEWAY)
    assert client.call("target", "ok") == (False, "ok")  # (the fixture checks that nothing forbidden ran)


def test_autoproxy_child_has_the_same_guard(served):
    daemon, client, _ = served
    failed, child = client.call("target", "get_child")
    assert not failed and isinstance(child, Proxy) and child._pyroUri.object == "child"
    for method in ("_private", "_secret", "__dict__", "__class__", "name.__globals__"):
        refused(client.call("child", method))
        refused(client.call("child", "__getattr__", [method]))
    assert client.call("child", "name") == (False, "child")
    proxy_dict = serializers.serializers_by_id[1].dumps(child)
    assert SECRET.encode() not in proxy_dict  # an autoproxy carries the URI only


def test_the_client_proxy_refuses_private_names_too(served):
    daemon, _, _ = served
    with Proxy("PYRO:target@" + daemon.locationStr) as proxy:
        for name in ("_private", "unexposed", "class_secret", "made_up"):
            with pytest.raises(AttributeError):
                getattr(proxy, name)
        with pytest.raises(AttributeError):
            proxy.readonly = 5
        assert proxy.ok() == "ok"


def test_keepserialized_blob_with_hostile_info(served):
    _, client, _ = served
    import marshal
    code = compile("open('/tmp/pwned', 'w')", "<hostile>", "exec")
    # (ok() takes no blob argument, so even the first, well-addressed one is an error)
    for info in [(code, "target", "ok"), ("info", "target", "_private"), ("info", code, "ok"),
                 ("info", "target", code), ("info", "target", "__class__"), ("info", "nobody", "ok"),
                 ("info", "target", "unexposed"), ("info", "target", "ok.__globals__")]:
        annotations = {"BLBI": marshal.dumps(info)}
        client.send(client.invoke_bytes(b"whatever", protocol.FLAGS_KEEPSERIALIZED, annotations=annotations))
        refused(client.receive_result())
    for garbage in (b"", b"\xff\xff", b"not marshal", marshal.dumps(42), marshal.dumps(code)):
        client.send(client.invoke_bytes(b"x", protocol.FLAGS_KEEPSERIALIZED, annotations={"BLBI": garbage}))
        refused(client.receive_result())
    client.send(client.invoke_bytes(b"x", protocol.FLAGS_KEEPSERIALIZED))  # no BLBI annotation at all
    refused(client.receive_result())


def test_keepserialized_blob_info_with_a_lying_size_is_refused_before_loading(served):
    """Five bytes of BLBI annotation declaring a 16-million-element list: refused by the size check, so
    marshal never allocates the list."""
    _, client, _ = served
    lying = b"[" + (0x00FFFFFF).to_bytes(4, "little")
    client.send(client.invoke_bytes(b"x", protocol.FLAGS_KEEPSERIALIZED, annotations={"BLBI": lying}))
    error = refused(client.receive_result())
    assert "exceeds" in str(error), error


# --- serializers that could execute code ---

class _Boom:
    def __reduce__(self):
        return (Marker.ran.append, ("pickle executed code on load",))


def test_no_serializer_executes_code_on_load(served):
    """There is no pickle (or dill); a pickle payload under every serializer id is just refused."""
    assert set(serializers.serializers) == {"serpent", "marshal", "json", "msgpack"}
    daemon, _, _ = served
    payload = pickle.dumps(("target", "ok", [_Boom()], {}))
    for sid in range(256):
        data = protocol.encode(protocol.MSG_INVOKE, 0, 1, sid, payload)
        with RawClient(daemon.locationStr) as other:
            other.connect("target")
            other.send(data)
            reply = other.receive()
            assert reply is None or reply.flags & protocol.FLAGS_EXCEPTION
    # (the fixture asserts Marker.ran stayed empty)


def test_class_dicts_naming_dangerous_types_are_refused(served):
    daemon, _, _ = served
    for classname in ("os.system", "builtins.eval", "subprocess.Popen", "__builtin__.exec", "Pyro5.errors.__class__",
                      "geopyro.server.Daemon", "types.CodeType", "Pyro5.core.URI.__init__", "posix.system",
                      "Pyro5.errors.PyroError.__init__", "builtins.getattr", "code", "function"):
        for sid in (1, 3, 4):
            serializer = serializers.serializers_by_id[sid]
            raw = serializer.dumpsCall("target", "kinds", [{"__class__": classname, "state": ["ls"],
                                                           "args": ["ls"]}], {})
            with fresh_client(daemon) as client:
                client.send(client.invoke_bytes(raw, serializer_id=sid))
                reply = client.receive()
            result = serializer.loads(reply.data)
            assert reply.flags & protocol.FLAGS_EXCEPTION or result == ["dict", "list", "str"], (classname, result)


def marshal_call(daemon, vargs):
    import marshal
    raw = marshal.dumps(("target", "kinds", vargs, {}))
    with fresh_client(daemon) as client:
        client.send(client.invoke_bytes(raw, serializer_id=serializers.MarshalSerializer.serializer_id))
        reply = client.receive()
    return bool(reply.flags & protocol.FLAGS_EXCEPTION), \
        serializers.serializers_by_id[reply.serializer_id].loads(reply.data)


CODE = compile("1 + 1", "<hostile>", "eval")


@pytest.mark.parametrize("vargs", [[CODE], [[CODE]], [(1, CODE)], [{"k": CODE}], [{1: [CODE]}], [{CODE}],
                                   [frozenset([CODE])], [{CODE: 1}], [{(1, CODE): 1}]],
                         ids=["top", "in-list", "in-tuple", "dict-value", "nested", "in-set", "in-frozenset",
                              "dict-key", "in-tuple-key"])
def test_marshal_code_objects_are_refused(served, vargs):
    daemon, _, _ = served
    failed, result = marshal_call(daemon, vargs)
    assert failed and "code object" in str(result), "a code object reached the method: %r" % (result,)


def test_handshake_cannot_reach_private_objects(served):
    daemon, _, _ = served
    for object_id in ("_private", "target._secret", "Pyro.Daemon.daemon", "__class__", 42, None, ["target"]):
        with RawClient(daemon.locationStr) as client:
            payload = client.serializer.dumps({"handshake": "hi", "object": object_id})
            client.send(protocol.encode(protocol.MSG_CONNECT, 0, 0, 1, payload))
            reply = client.receive()
            assert reply.type == protocol.MSG_CONNECTFAIL, object_id
            assert SECRET not in repr(client.serializer.loads(reply.data))
    for handshake in ({"handshake": "hi"}, {"object": "target"}, "just a string", [1, 2], None):
        with RawClient(daemon.locationStr) as client:
            client.send(protocol.encode(protocol.MSG_CONNECT, 0, 0, 1, client.serializer.dumps(handshake)))
            assert client.receive().type == protocol.MSG_CONNECTFAIL


def test_code_type_is_not_what_the_method_sees(served):
    """A sanity check of the probe itself: plain data arrives as plain types."""
    daemon, _, _ = served
    assert marshal_call(daemon, [[1, "a"], {"k": (1.5, None)}]) == (False, ["NoneType", "dict", "float", "int",
                                                                           "list", "str", "tuple"])
    assert types.CodeType.__name__ == "code"


class DenyingDaemon(geopyro.api.Daemon):
    def validateHandshake(self, conn, data):
        if data != "let me in":
            raise ValueError("access denied: bad handshake")
        return "welcome"


def test_denied_handshake_reaches_nothing(daemons, servertype):
    Marker.ran.clear()
    daemon = DenyingDaemon(host="127.0.0.1")
    daemon.register(Target(Child()), "target")
    daemons.start(daemon)
    with RawClient(daemon.locationStr) as client:
        client.send(protocol.encode(protocol.MSG_CONNECT, 0, 0, 1,
                                    client.serializer.dumps({"handshake": "hello", "object": "target"})))
        reply = client.receive()
        assert reply.type == protocol.MSG_CONNECTFAIL
        assert "access denied" in client.serializer.loads(reply.data)
        try:  # ignoring the refusal and calling anyway gets nothing: the connection is closed
            client.send(client.invoke_bytes(client.serializer.dumpsCall("target", "ok", [], {})))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert client.receive() is None
    with Proxy("PYRO:target@" + daemon.locationStr) as proxy:
        with pytest.raises(geopyro.errors.CommunicationError, match="rejected: access denied"):
            proxy.ok()
    with Proxy("PYRO:target@" + daemon.locationStr) as proxy:
        proxy._pyroHandshake = "let me in"
        assert proxy.ok() == "ok"
    assert Marker.ran == []
