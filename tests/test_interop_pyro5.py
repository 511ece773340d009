"""Interoperability with an unmodified Pyro5 over real sockets, each peer in its own process.

Two directions, for every serializer:

* a Pyro5 client (in this test process) calls a geopyro daemon running in a subprocess;
* a geopyro proxy (in this test process) calls a Pyro5 daemon running in a subprocess.

Both server subprocesses run the same script (``SERVER_SCRIPT``) with either library. Each prints one
JSON line with its URIs on stdout; the fixture reads it with a deadline and kills the process afterwards.

Known Pyro5 client/server limitations, skipped with that reason (they are Pyro5 bugs, not geopyro's):

* Pyro5's client with the marshal serializer crashes on remote attribute access and on batch calls,
  because it serializes ``kwargs=None`` which marshal's call format cannot hold;
* a Pyro5 server cannot marshal the exception wrapper of a failing batch call;
* a Pyro5 server's SerializedBlob.deserialized() is wrong for json (it unpacks the call dict's keys);
* marshal cannot carry an autoproxy at all (that is true for both libraries).
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

import Pyro5.api
import Pyro5.errors

import geopyro.api
import geopyro.errors
from support import first_line

SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP_DEADLINE = 30.0
POLL_DEADLINE = 10.0

PYRO5_MARSHAL_KWARGS_NONE = ("Pyro5 client bug: its marshal serializer cannot serialize the kwargs=None that "
                             "Pyro5 sends for remote attribute access and batch calls")
PYRO5_MARSHAL_BATCH_ERROR = ("Pyro5 server bug: it cannot marshal the exception wrapper of a failing batch call")
PYRO5_JSON_BLOB = ("Pyro5 server bug: SerializedBlob.deserialized() tuple-unpacks the json call object, so it "
                   "returns the key 'params' instead of the arguments")
MARSHAL_NO_AUTOPROXY = "marshal cannot serialize a proxy, so autoproxy is not possible with it"

SERVER_SCRIPT = r'''
import json
import sys
import threading

LIB = sys.argv[1]
if LIB == "geopyro":
    sys.path.insert(0, sys.argv[2])
    import geopyro.api as api
    import geopyro.errors as errors
else:
    import Pyro5.api as api
    import Pyro5.errors as errors


@api.expose
class Child:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name

    def greet(self, who):
        return "%s greets %s" % (self._name, who)


@api.expose
class Service:
    def __init__(self):
        self._value = "initial"
        self._recorded = []

    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    def add(self, a, b):
        return a + b

    def lib(self):
        return LIB

    @api.oneway
    def record(self, item):
        self._recorded.append(item)

    def recorded(self):
        return list(self._recorded)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        self._value = value

    def fail(self, message):
        raise ValueError(message)

    def fail_naming(self, name):
        raise errors.NamingError("unknown name: %s" % name)

    def make_child(self, name):
        child = Child(name)
        self._pyroDaemon.register(child)
        return child

    def numbers(self, count):
        for number in range(count):
            yield number * number

    def open_streams(self):
        return len(self._pyroDaemon.streaming_responses)

    def describe_proxy(self, proxy):
        return [type(proxy).__name__, str(proxy._pyroUri)]

    def blob(self, blob):
        return [blob.info, blob.deserialized()]

    def context(self):
        """What the server saw of the call: request annotations and correlation id."""
        ctx = api.current_context
        ctx.response_annotations = {"RESP": b"from " + LIB.encode()}
        return {"annotations": {key: bytes(value).decode() for key, value in ctx.annotations.items()},
                "correlation_id": str(ctx.correlation_id)}


class DenyingDaemon(api.Daemon):
    def validateHandshake(self, conn, data):
        if data != "let me in":
            raise ValueError("go away, wrong handshake %r" % (data,))
        return "welcome"


main = api.Daemon(host="127.0.0.1")
main_uri = main.register(Service(), "service")
denying = DenyingDaemon(host="127.0.0.1")
denying_uri = denying.register(Service(), "service")
threading.Thread(target=denying.requestLoop, daemon=True).start()
print(json.dumps({"service": str(main_uri), "deny": str(denying_uri)}), flush=True)
main.requestLoop()
'''


def clean_env():
    """The environment for a subprocess: no PYRO_* overrides, so both libraries run with their defaults."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}


def start_server(lib, script):
    proc = subprocess.Popen([sys.executable, str(script), lib, ROOT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=clean_env(), text=True)
    try:
        uris = json.loads(first_line(proc, time.monotonic() + STARTUP_DEADLINE, "%s server" % lib))
    except BaseException:
        stop_server(proc)
        raise
    return proc, uris


def stop_server(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def server_script(tmp_path_factory):
    script = tmp_path_factory.mktemp("interop") / "interop_server.py"
    script.write_text(SERVER_SCRIPT)
    return script


@pytest.fixture(scope="module")
def geopyro_server(server_script):
    """URIs of a geopyro daemon subprocess (read by Pyro5 clients)."""
    proc, uris = start_server("geopyro", server_script)
    try:
        yield uris
        assert proc.poll() is None, "the geopyro server process died during the tests"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def pyro5_server(server_script):
    """URIs of a Pyro5 daemon subprocess (read by geopyro proxies)."""
    proc, uris = start_server("pyro5", server_script)
    try:
        yield uris
        assert proc.poll() is None, "the Pyro5 server process died during the tests"
    finally:
        stop_server(proc)


@pytest.fixture(autouse=True)
def pyro5_defaults():
    """The Pyro5 client in this process runs with its default settings."""
    Pyro5.api.config.reset(use_environment=False)
    yield
    Pyro5.api.config.reset(use_environment=False)


class Direction:
    """One direction of the conversation: which client library talks to which server library."""

    def __init__(self, name, client_api, errors_module, server_lib):
        self.name = name
        self.api = client_api
        self.errors = errors_module
        self.server_lib = server_lib

    def proxy(self, uri, serializer):
        proxy = self.api.Proxy(uri)
        proxy._pyroSerializer = serializer
        return proxy


PYRO5_TO_GEOPYRO = Direction("pyro5-client->geopyro-server", Pyro5.api, Pyro5.errors, "geopyro")
GEOPYRO_TO_PYRO5 = Direction("geopyro-client->pyro5-server", geopyro.api, geopyro.errors, "pyro5")


@pytest.fixture(params=[PYRO5_TO_GEOPYRO, GEOPYRO_TO_PYRO5], ids=lambda d: d.name)
def direction(request):
    return request.param


@pytest.fixture(params=SERIALIZERS)
def serializer(request):
    return request.param


@pytest.fixture
def uris(direction, request):
    fixture = "geopyro_server" if direction.server_lib == "geopyro" else "pyro5_server"
    return request.getfixturevalue(fixture)


@pytest.fixture
def service(direction, serializer, uris):
    """A client proxy of the other library's Service object, using the parametrized serializer."""
    with direction.proxy(uris["service"], serializer) as proxy:
        assert proxy.lib() == direction.server_lib  # really talking to the other library
        yield proxy


def plain(value):
    """Tuples become lists (json and msgpack have no tuples) so results compare across serializers."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def poll_until(predicate, what):
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail("gave up waiting for " + what)
        time.sleep(0.02)  # polling interval of a deadline-bounded wait, not synchronisation


ARGUMENTS = [
    "text",
    "\u00fcn\u00efc\u00f6d\u00e9 \u20ac \U0001f600",
    "",
    0,
    -17,
    2 ** 40,
    -2 ** 62,
    3.25,
    -0.5,
    True,
    False,
    None,
    [1, "two", [3.0, None]],
    {"key": "value", "nested": {"list": [1, 2, 3], "flag": True}},
    (1, "tuple"),
    [],
    {},
]


def test_plain_calls(service):
    assert service.add(2, 3) == 5
    assert service.add("con", "cat") == "concat"
    args, kwargs = service.echo(*ARGUMENTS)
    assert plain(args) == plain(ARGUMENTS)
    assert kwargs == {}
    args, kwargs = service.echo(1, "a", number=7, text="t", items=[1, {"x": None}], nothing=None)
    assert args == [1, "a"]
    assert plain(kwargs) == {"number": 7, "text": "t", "items": [1, {"x": None}], "nothing": None}


@pytest.mark.parametrize("serializer", ["marshal", "msgpack"])
def test_bytes_arguments(service):
    """marshal and msgpack carry bytes natively (serpent and json turn them into base64 text)."""
    blob = bytes(range(256))
    args, _ = service.echo(blob)
    assert args == [blob]


def test_many_calls_on_one_connection(service):
    for number in range(50):
        assert service.add(number, 1) == number + 1


def test_oneway(service):
    token = "oneway-" + uuid.uuid4().hex
    assert service.record(token) is None
    poll_until(lambda: token in service.recorded(), "the oneway call to be recorded by the server")


def test_remote_attribute(service, direction, serializer):
    if direction is PYRO5_TO_GEOPYRO and serializer == "marshal":
        pytest.skip(PYRO5_MARSHAL_KWARGS_NONE)
    token = "value-" + uuid.uuid4().hex
    service.value = token
    assert service.value == token
    service.value = [1, 2, {"three": 3}]
    assert plain(service.value) == [1, 2, {"three": 3}]
    with pytest.raises(AttributeError):
        service.no_such_attribute = 1


def test_builtin_exception_with_remote_traceback(service, direction):
    with pytest.raises(ValueError, match="it broke") as info:
        service.fail("it broke")
    assert type(info.value) is ValueError
    remote_tb = "".join(info.value._pyroTraceback)
    assert "raise ValueError(message)" in remote_tb
    assert "in fail" in remote_tb
    formatted = "".join(direction.errors.get_pyro_traceback(type(info.value), info.value, info.tb))
    assert "Remote traceback" in formatted
    # the connection stays usable after a remote error
    assert service.add(1, 1) == 2


def test_pyro_error_arrives_as_the_right_class(service, direction):
    with pytest.raises(direction.errors.NamingError, match="unknown name: nobody") as info:
        service.fail_naming("nobody")
    assert type(info.value) is direction.errors.NamingError
    assert service.add(1, 2) == 3


def _autoproxy_cases():
    for direction in (PYRO5_TO_GEOPYRO, GEOPYRO_TO_PYRO5):
        for serializer in SERIALIZERS:
            yield pytest.param(direction, serializer, id="%s-%s" % (direction.name, serializer))


@pytest.mark.parametrize("direction, serializer", list(_autoproxy_cases()))
def test_autoproxy(service, direction, serializer):
    if serializer == "marshal":
        pytest.skip(MARSHAL_NO_AUTOPROXY)
    child = service.make_child("kid")
    assert isinstance(child, direction.api.Proxy)
    with child:
        assert child.name() == "kid"
        assert child.greet("you") == "kid greets you"
    assert str(child._pyroUri).startswith("PYRO:obj_")
    assert child._pyroUri.location == service._pyroUri.location


def make_batch(direction, proxy):
    if direction is PYRO5_TO_GEOPYRO:
        return Pyro5.api.BatchProxy(proxy)
    return proxy._pyroBatch()


def test_batch(service, direction, serializer):
    if direction is PYRO5_TO_GEOPYRO and serializer == "marshal":
        pytest.skip(PYRO5_MARSHAL_KWARGS_NONE)
    batch = make_batch(direction, service)
    batch.add(1, 2)
    batch.echo("x", key="y")
    batch.add("a", "b")
    batch.recorded()
    results = list(batch())
    assert plain(results[:3]) == [3, [["x"], {"key": "y"}], "ab"]
    assert isinstance(results[3], list)
    # a oneway batch returns nothing, but its calls run
    token = "batch-oneway-" + uuid.uuid4().hex
    batch.record(token)
    assert batch(oneway=True) is None
    poll_until(lambda: token in service.recorded(), "the oneway batch to be run by the server")


@pytest.mark.parametrize("direction", [GEOPYRO_TO_PYRO5], ids=lambda d: d.name)
def test_batch_class_of_geopyro_api(service, direction):
    batch = geopyro.api.BatchProxy(service)
    batch.add(20, 22)
    batch.add(1, 1)
    assert list(batch()) == [42, 2]


def test_batch_with_error(service, direction, serializer):
    if serializer == "marshal":
        if direction is PYRO5_TO_GEOPYRO:
            pytest.skip(PYRO5_MARSHAL_KWARGS_NONE)
        pytest.skip(PYRO5_MARSHAL_BATCH_ERROR)
    token = "not-run-" + uuid.uuid4().hex
    batch = make_batch(direction, service)
    batch.add(1, 2)
    batch.fail("batch failure")
    batch.record(token)  # after the failure: must not run
    results = batch()
    assert next(results) == 3
    with pytest.raises(ValueError, match="batch failure") as info:
        next(results)
    assert "raise ValueError(message)" in "".join(info.value._pyroTraceback)
    assert list(results) == []
    assert token not in service.recorded()


def test_streamed_generator_result(service):
    result = service.numbers(6)
    assert not isinstance(result, (list, tuple))  # items arrive one by one, not as one list
    assert next(result) == 0
    assert list(result) == [1, 4, 9, 16, 25]
    assert list(service.numbers(0)) == []
    assert service.add(2, 2) == 4


def test_stream_closed_early_by_the_client(service):
    before = service.open_streams()
    result = service.numbers(1000)
    assert next(result) == 0
    assert service.open_streams() == before + 1
    result.close()
    poll_until(lambda: service.open_streams() == before, "the server to drop the closed stream")


def test_proxy_as_argument(service, direction):
    """A proxy passed as an argument arrives as the server library's own Proxy class, for the same URI."""
    uri = "PYRO:some.object@127.0.0.1:4444"
    with direction.api.Proxy(uri) as argument:
        assert service.describe_proxy(argument) == ["Proxy", uri]


def test_serialized_blob(service, direction, serializer):
    """A SerializedBlob argument is passed on still serialized (FLAGS_KEEPSERIALIZED + BLBI annotation)."""
    if direction is GEOPYRO_TO_PYRO5 and serializer == "json":
        pytest.skip(PYRO5_JSON_BLOB)
    args = ["first", {"payload": [1, 2, 3], "text": "x"}]  # the data is what would have been the call arguments
    info, data = service.blob(direction.api.SerializedBlob("some info", args))
    assert info == "some info"
    assert plain(data) == args


def test_handshake_denied_pyro5_client(geopyro_server, serializer):
    """A geopyro daemon whose validateHandshake raises: the Pyro5 client gets CommunicationError with the reason."""
    with PYRO5_TO_GEOPYRO.proxy(geopyro_server["deny"], serializer) as proxy:
        with pytest.raises(Pyro5.errors.CommunicationError, match="go away, wrong handshake"):
            proxy._pyroBind()
    with PYRO5_TO_GEOPYRO.proxy(geopyro_server["deny"], serializer) as proxy:
        proxy._pyroHandshake = "let me in"
        assert proxy.add(4, 5) == 9


def test_handshake_denied_by_pyro5_daemon(pyro5_server, serializer):
    """The same the other way around: a geopyro proxy and a Pyro5 daemon that denies the handshake."""
    with GEOPYRO_TO_PYRO5.proxy(pyro5_server["deny"], serializer) as proxy:
        with pytest.raises(geopyro.errors.CommunicationError, match="go away, wrong handshake"):
            proxy._pyroBind()
    with GEOPYRO_TO_PYRO5.proxy(pyro5_server["deny"], serializer) as proxy:
        proxy._pyroHandshake = "let me in"
        assert proxy.add(4, 5) == 9


def test_daemon_object_from_pyro5(geopyro_server, serializer):
    location = Pyro5.api.URI(geopyro_server["service"]).location
    with PYRO5_TO_GEOPYRO.proxy("PYRO:Pyro.Daemon@" + location, serializer) as daemon:
        assert daemon.ping() is None
        registered = daemon.registered()
        assert "service" in registered
        assert "Pyro.Daemon" in registered
        info = daemon.info()
        assert location in info
        metadata = daemon.get_metadata("service")
        assert set(metadata) == {"methods", "oneway", "attrs"}
        assert {"echo", "add", "fail", "make_child", "numbers", "record"} <= set(metadata["methods"])
        assert list(metadata["oneway"]) == ["record"]
        assert list(metadata["attrs"]) == ["value"]
        with pytest.raises(Pyro5.errors.DaemonError):
            daemon.get_metadata("no.such.object")


def test_large_payload(service):
    text = "0123456789abcdef" * (256 * 1024)  # 4 MiB each way
    args, _ = service.echo(text)
    assert args == [text]


def test_compressed_messages(direction, serializer, uris):
    """Compressed requests (zlib) are understood; the server answers compressed too."""
    if direction is PYRO5_TO_GEOPYRO:
        Pyro5.api.config.COMPRESSION = True
    else:
        geopyro.api.config.COMPRESSION = True
    with direction.proxy(uris["service"], serializer) as proxy:
        text = "compress me " * 1000
        args, _ = proxy.echo(text)
        assert args == [text]


def test_annotations_and_correlation_id(direction, serializer, uris):
    """Request annotations and the correlation id (set in current_context, the Pyro5 way) reach the server;
    the server's response annotations come back in current_context.response_annotations."""
    context = direction.api.current_context
    corr = uuid.uuid4()
    context.correlation_id = corr
    context.annotations = {"XTRA": b"client annotation"}
    try:
        with direction.proxy(uris["service"], serializer) as proxy:
            seen = proxy.context()
            response_annotations = {key: bytes(value) for key, value in context.response_annotations.items()}
    finally:
        context.correlation_id = None
        context.annotations = {}
    assert seen["annotations"].get("XTRA") == "client annotation"
    assert seen["correlation_id"] == str(corr)
    assert response_annotations.get("RESP") == b"from " + direction.server_lib.encode()
