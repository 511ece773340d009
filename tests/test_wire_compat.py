"""Byte compatibility with the installed Pyro5: messages built by one side must parse in the other.

Both implementations run in this process: geopyro encodes, Pyro5 decodes, and the other way around.
serpent, json and msgpack are deterministic, so their output must be byte-identical to Pyro5's.
"""

import uuid

import pytest

import Pyro5.callcontext
import Pyro5.core
import Pyro5.errors
import Pyro5.protocol
import Pyro5.serializers

import geopyro
from geopyro import core, errors, protocol, serializers

SERIALIZERS = ["serpent", "marshal", "json", "msgpack"]
# marshal output depends on CPython reference counts (the FLAG_REF bit is set on objects that have more
# than one reference when they are written), so two equal values can marshal to different bytes. For
# marshal the tests compare decoded values only; the other three must match Pyro5 byte for byte.
DETERMINISTIC = ["serpent", "json", "msgpack"]
PYRO_ERROR_NAMES = ["PyroError", "CommunicationError", "ConnectionClosedError", "TimeoutError", "ProtocolError",
                    "MessageTooLargeError", "NamingError", "DaemonError", "SecurityError", "SerializeError"]
URIS = ["PYRO:some.object@localhost:9999", "PYRO:obj_1@./u:/tmp/pyro.sock", "PYRO:obj@[::1]:4444",
        "PYRO:obj@192.168.1.20:65535", "PYRONAME:some.name", "PYRONAME:some.name@nshost:1234",
        "PYROMETA:meta.one@host:9090", "PYROMETA:b.meta,a.meta,c.meta"]
MAX = 1024 * 1024 * 1024
CORR = uuid.UUID("12345678-9abc-def0-0fed-cba987654321")

CALL_ARGS = ("hello", 42, -7, 2 ** 40, 3.25, True, None, [1, 2, [3, "x"]], {"k": "v", "n": 1}, "\u00fcn\u00efc\u00f6d\u00e9")
CALL_KWARGS = {"flag": False, "items": [1, "two"], "nested": {"a": [1, 2], "b": None}}
RESULTS = [None, 0, -1, 2 ** 62, 1.5, "text", "\u20ac", [1, "a", None], {"a": 1, "b": [True, False]},
           {"deep": {"er": {"est": [[], {}]}}}]


@pytest.fixture(autouse=True)
def default_settings():
    """Both libraries at their defaults; Pyro5 reads its global config and call context when it builds messages."""
    saved = (Pyro5.config.COMPRESSION, Pyro5.config.MAX_MESSAGE_SIZE, Pyro5.config.SERPENT_BYTES_REPR,
             Pyro5.callcontext.current_context.correlation_id)
    Pyro5.config.COMPRESSION = False
    Pyro5.config.MAX_MESSAGE_SIZE = MAX
    Pyro5.config.SERPENT_BYTES_REPR = False
    Pyro5.callcontext.current_context.correlation_id = None
    geopyro.config.reset(use_environment=False)
    yield
    (Pyro5.config.COMPRESSION, Pyro5.config.MAX_MESSAGE_SIZE, Pyro5.config.SERPENT_BYTES_REPR,
     Pyro5.callcontext.current_context.correlation_id) = saved
    geopyro.config.reset(use_environment=False)


def gp(name):
    return serializers.serializers[name]


def p5(name):
    return Pyro5.serializers.serializers[name]


def plain(value):
    """json and msgpack have no tuples; compare values in a form where that does not matter."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def p5_send(msgtype, flags, seq, serializer_id, payload, annotations=None, compress=False, corr=None):
    """Pyro5's SendingMessage bytes, with its global compression setting and call context set for the call."""
    Pyro5.config.COMPRESSION = compress
    Pyro5.callcontext.current_context.correlation_id = corr
    try:
        return Pyro5.protocol.SendingMessage(msgtype, flags, seq, serializer_id, payload, annotations).data
    finally:
        Pyro5.config.COMPRESSION = False
        Pyro5.callcontext.current_context.correlation_id = None


def p5_receive(wire):
    """Parse complete message bytes with Pyro5 (header first, then the rest, as Pyro5 does)."""
    Pyro5.protocol.ReceivingMessage.validate(wire[:40])
    return Pyro5.protocol.ReceivingMessage(wire[:40], wire[40:])


# ---------------------------------------------------------------- calls

@pytest.mark.parametrize("name", SERIALIZERS)
def test_call_geopyro_to_pyro5(name):
    payload = gp(name).dumpsCall("obj.id", "method_name", CALL_ARGS, CALL_KWARGS)
    wire = protocol.encode(protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY, 17, gp(name).serializer_id, payload,
                           {"XTRA": b"extra"}, CORR.bytes)
    msg = p5_receive(wire)
    assert msg.type == Pyro5.protocol.MSG_INVOKE
    assert msg.flags == Pyro5.protocol.FLAGS_ONEWAY | Pyro5.protocol.FLAGS_CORR_ID
    assert msg.seq == 17
    assert bytes(msg.corr_id) == CORR.bytes
    assert {k: bytes(v) for k, v in msg.annotations.items()} == {"XTRA": b"extra"}
    obj, method, vargs, kwargs = Pyro5.serializers.serializers_by_id[msg.serializer_id].loadsCall(msg.data)
    assert (obj, method) == ("obj.id", "method_name")
    assert plain(vargs) == plain(CALL_ARGS)
    assert kwargs == CALL_KWARGS
    if name == "serpent":
        assert vargs == CALL_ARGS  # serpent keeps the tuple a tuple


@pytest.mark.parametrize("name", SERIALIZERS)
def test_call_pyro5_to_geopyro(name):
    payload = p5(name).dumpsCall("obj.id", "method_name", CALL_ARGS, CALL_KWARGS)
    wire = p5_send(Pyro5.protocol.MSG_INVOKE, Pyro5.protocol.FLAGS_BATCH, 65535, p5(name).serializer_id, payload,
                   {"XTRA": b"extra"}, corr=CORR)
    msg = protocol.decode(wire, MAX)
    assert msg.type == protocol.MSG_INVOKE
    assert msg.flags == protocol.FLAGS_BATCH | protocol.FLAGS_CORR_ID
    assert msg.seq == 65535
    assert msg.corr_id == CORR.bytes
    assert msg.annotations == {"XTRA": b"extra"}
    obj, method, vargs, kwargs = serializers.get_serializer_by_id(msg.serializer_id).loadsCall(msg.data)
    assert (obj, method) == ("obj.id", "method_name")
    assert plain(vargs) == plain(CALL_ARGS)
    assert kwargs == CALL_KWARGS


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_call_bytes_identical(name):
    assert gp(name).dumpsCall("obj.id", "m", CALL_ARGS, CALL_KWARGS) == \
        p5(name).dumpsCall("obj.id", "m", CALL_ARGS, CALL_KWARGS)
    assert gp(name).dumpsCall("x", "y", (), {}) == p5(name).dumpsCall("x", "y", (), {})


@pytest.mark.parametrize("name", SERIALIZERS)
def test_call_without_kwargs_from_pyro5(name):
    """Pyro5 sends kwargs=None for attribute access; geopyro must take that as an empty dict."""
    if name == "marshal":
        payload = p5(name).dumpsCall("obj", "__getattr__", ("attr",), {})
    else:
        payload = p5(name).dumpsCall("obj", "__getattr__", ("attr",), None)
    obj, method, vargs, kwargs = gp(name).loadsCall(payload)
    assert (obj, method, list(vargs), kwargs) == ("obj", "__getattr__", ["attr"], {})


# ---------------------------------------------------------------- results

@pytest.mark.parametrize("name", SERIALIZERS)
@pytest.mark.parametrize("value", RESULTS, ids=range(len(RESULTS)))
def test_results_both_ways(name, value):
    from_gp = p5(name).loads(gp(name).dumps(value))
    from_p5 = gp(name).loads(p5(name).dumps(value))
    assert plain(from_gp) == plain(value)
    assert plain(from_p5) == plain(value)
    assert from_gp == from_p5


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_results_bytes_identical(name):
    for value in RESULTS + [tuple(RESULTS), {"set": {1, 2, 3}}]:
        assert gp(name).dumps(value) == p5(name).dumps(value), value


def test_bytes_values_msgpack_and_marshal():
    for name in ("msgpack", "marshal"):
        value = {"raw": b"\x00\x01\xff", "list": [b"a", b""]}
        assert p5(name).loads(gp(name).dumps(value)) == value
        assert gp(name).loads(p5(name).dumps(value)) == value
    assert gp("msgpack").dumps(b"\x00\xff") == p5("msgpack").dumps(b"\x00\xff")
    assert gp("serpent").dumps(b"\x00\xff") == p5("serpent").dumps(b"\x00\xff")


@pytest.mark.parametrize("name", SERIALIZERS)
def test_result_message_geopyro_to_pyro5_and_back(name):
    value = {"answer": [42, "x"], "none": None}
    wire = protocol.encode(protocol.MSG_RESULT, 0, 3, gp(name).serializer_id, gp(name).dumps(value))
    msg = p5_receive(wire)
    assert (msg.type, msg.flags, msg.seq) == (Pyro5.protocol.MSG_RESULT, 0, 3)
    assert plain(Pyro5.serializers.serializers_by_id[msg.serializer_id].loads(msg.data)) == plain(value)
    back = protocol.decode(p5_send(Pyro5.protocol.MSG_RESULT, 0, 3, p5(name).serializer_id, p5(name).dumps(value)),
                           MAX)
    assert plain(serializers.get_serializer_by_id(back.serializer_id).loads(back.data)) == plain(value)


# ---------------------------------------------------------------- exceptions

def remote_value_error():
    exc = ValueError("bad value", 42)
    exc._pyroTraceback = ["Traceback (most recent call last):\n", "  File \"x.py\", line 1\n", "ValueError: bad\n"]
    return exc


@pytest.mark.parametrize("name", SERIALIZERS)
def test_builtin_exception_geopyro_to_pyro5(name):
    wire = protocol.encode(protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION, 5, gp(name).serializer_id,
                           gp(name).dumps(remote_value_error()))
    msg = p5_receive(wire)
    assert msg.flags == Pyro5.protocol.FLAGS_EXCEPTION
    exc = Pyro5.serializers.serializers_by_id[msg.serializer_id].loads(msg.data)
    assert type(exc) is ValueError
    assert exc.args == ("bad value", 42)
    assert exc._pyroTraceback == remote_value_error()._pyroTraceback


@pytest.mark.parametrize("name", SERIALIZERS)
def test_builtin_exception_pyro5_to_geopyro(name):
    wire = p5_send(Pyro5.protocol.MSG_RESULT, Pyro5.protocol.FLAGS_EXCEPTION, 5, p5(name).serializer_id,
                   p5(name).dumps(remote_value_error()))
    msg = protocol.decode(wire, MAX)
    assert msg.flags == protocol.FLAGS_EXCEPTION
    exc = serializers.get_serializer_by_id(msg.serializer_id).loads(msg.data)
    assert type(exc) is ValueError
    assert exc.args == ("bad value", 42)
    assert exc._pyroTraceback == remote_value_error()._pyroTraceback


@pytest.mark.parametrize("name", SERIALIZERS)
@pytest.mark.parametrize("error_name", PYRO_ERROR_NAMES)
def test_pyro_errors_cross_over_under_pyro5_names(name, error_name):
    ours = getattr(errors, error_name)("went wrong", 7)
    ours._pyroTraceback = ["remote line\n"]
    arrived = p5(name).loads(gp(name).dumps(ours))
    assert type(arrived) is getattr(Pyro5.errors, error_name)
    assert arrived.args == ("went wrong", 7)
    assert arrived._pyroTraceback == ["remote line\n"]

    theirs = getattr(Pyro5.errors, error_name)("went wrong", 7)
    theirs._pyroTraceback = ["remote line\n"]
    back = gp(name).loads(p5(name).dumps(theirs))
    assert type(back) is getattr(errors, error_name)
    assert back.args == ("went wrong", 7)
    assert back._pyroTraceback == ["remote line\n"]


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("error_name", PYRO_ERROR_NAMES)
def test_pyro_errors_bytes_identical(name, error_name):
    ours = getattr(errors, error_name)("msg")
    theirs = getattr(Pyro5.errors, error_name)("msg")
    ours._pyroTraceback = theirs._pyroTraceback = ["tb line 1\n", "tb line 2\n"]
    assert gp(name).dumps(ours) == p5(name).dumps(theirs)
    assert gp(name).dumps(remote_value_error()) == p5(name).dumps(remote_value_error())


@pytest.mark.parametrize("name", SERIALIZERS)
def test_bare_exception_class_names_like_pyro5(name):
    """Pyro5 also recreates exceptions whose __class__ has no module part (as non-Python peers send them)."""
    for classname, expected_gp, expected_p5 in [("ValueError", ValueError, ValueError),
                                                ("NamingError", errors.NamingError, Pyro5.errors.NamingError),
                                                ("TimeoutError", errors.TimeoutError, Pyro5.errors.TimeoutError)]:
        data = {"__class__": classname, "__exception__": True, "args": ["text"], "attributes": {}}
        payload = p5(name).dumps(data)
        assert type(p5(name).loads(payload)) is expected_p5
        exc = gp(name).loads(payload)
        assert type(exc) is expected_gp
        assert exc.args == ("text",)


@pytest.mark.parametrize("name", SERIALIZERS)
def test_exception_wrapper_of_batch_results(name):
    # batch results are a list; marshal converts only top-level objects (Pyro5 too), so send the wrapper alone
    def batch(item):
        return item if name == "marshal" else [1, item]

    def wrapper_of(result):
        return result if name == "marshal" else result[1]

    wrapped = core._ExceptionWrapper(remote_value_error())
    arrived = wrapper_of(p5(name).loads(gp(name).dumps(batch(wrapped))))
    assert type(arrived) is Pyro5.core._ExceptionWrapper
    assert type(arrived.exception) is ValueError and arrived.exception.args == ("bad value", 42)
    assert arrived.exception._pyroTraceback == remote_value_error()._pyroTraceback

    back = wrapper_of(gp(name).loads(p5(name).dumps(batch(
        Pyro5.core._ExceptionWrapper(Pyro5.errors.NamingError("nope"))))))
    assert type(back) is core._ExceptionWrapper
    assert type(back.exception) is errors.NamingError
    with pytest.raises(errors.NamingError, match="nope"):
        back.raiseIt()
    if name in DETERMINISTIC:
        assert gp(name).dumps(wrapped) == p5(name).dumps(Pyro5.core._ExceptionWrapper(remote_value_error()))


# ---------------------------------------------------------------- URIs

def uri_container(name, uri):
    """marshal converts only top-level objects (in Pyro5 as well), so nest URIs only for the other serializers."""
    return uri if name == "marshal" else {"uri": uri, "more": [uri]}


def uris_in(name, container):
    return [container] if name == "marshal" else [container["uri"], container["more"][0]]


def p5_state(uri):
    protocol_, obj, sockname, host, port = uri.__getstate__()
    return protocol_, set(obj) if protocol_ == "PYROMETA" else obj, sockname, host, port


@pytest.mark.parametrize("name", SERIALIZERS)
@pytest.mark.parametrize("text", URIS)
def test_uri_geopyro_to_pyro5(name, text):
    arrived = p5(name).loads(gp(name).dumps(uri_container(name, core.URI(text))))
    for uri in uris_in(name, arrived):
        assert type(uri) is Pyro5.core.URI
        assert p5_state(uri) == p5_state(Pyro5.core.URI(text))


@pytest.mark.parametrize("name", SERIALIZERS)
@pytest.mark.parametrize("text", URIS)
def test_uri_pyro5_to_geopyro(name, text):
    arrived = gp(name).loads(p5(name).dumps(uri_container(name, Pyro5.core.URI(text))))
    for uri in uris_in(name, arrived):
        assert type(uri) is core.URI
        assert uri == core.URI(text)
        assert str(uri) == str(core.URI(text))


@pytest.mark.parametrize("name", SERIALIZERS)
def test_uri_in_call_arguments(name):
    uri_text = "PYRO:obj@localhost:5555"
    payload = gp(name).dumpsCall("obj", "register", ("name", core.URI(uri_text)), {"uri": core.URI(uri_text)})
    _, _, vargs, kwargs = p5(name).loadsCall(payload)
    assert type(vargs[1]) is Pyro5.core.URI and str(vargs[1]) == uri_text
    assert type(kwargs["uri"]) is Pyro5.core.URI
    payload = p5(name).dumpsCall("obj", "register", ("name", Pyro5.core.URI(uri_text)), {})
    _, _, vargs, _ = gp(name).loadsCall(payload)
    assert vargs[1] == core.URI(uri_text)


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("text", URIS)
def test_uri_bytes_identical(name, text):
    assert gp(name).dumps(core.URI(text)) == p5(name).dumps(Pyro5.core.URI(text))


# ---------------------------------------------------------------- whole messages

MESSAGE_CASES = [
    (protocol.MSG_CONNECT, 0, 0, b"", None, None, False),
    (protocol.MSG_CONNECTOK, 0, 1, b"ok" * 10, {"CORR": b"c" * 16}, None, False),
    (protocol.MSG_CONNECTFAIL, 0, 2, b"failed", None, CORR, False),
    (protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY | protocol.FLAGS_BATCH, 300, b"call" * 100,
     {"ABCD": b"1", "WXYZ": b"22" * 40}, CORR, True),
    (protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION, 65535, b"x" * 100, None, None, True),
    (protocol.MSG_RESULT, protocol.FLAGS_ITEMSTREAMRESULT | protocol.FLAGS_KEEPSERIALIZED, 9, b"y" * 101,
     {"ANNO": b""}, CORR, True),
    (protocol.MSG_PING, 0, 0, b"ping", None, None, False),
]


@pytest.mark.parametrize("case", MESSAGE_CASES, ids=range(len(MESSAGE_CASES)))
@pytest.mark.parametrize("serializer_id", [1, 2, 3, 4])
def test_whole_message_bytes_identical(case, serializer_id):
    msgtype, flags, seq, payload, annotations, corr, compress = case
    ours = protocol.encode(msgtype, flags, seq, serializer_id, payload, annotations,
                           corr.bytes if corr else None, compress=compress)
    theirs = p5_send(msgtype, flags, seq, serializer_id, payload, annotations, compress, corr)
    assert ours == theirs


@pytest.mark.parametrize("case", MESSAGE_CASES, ids=range(len(MESSAGE_CASES)))
def test_whole_message_parsed_by_the_other_side(case):
    msgtype, flags, seq, payload, annotations, corr, compress = case
    expected_flags = flags | (protocol.FLAGS_CORR_ID if corr else 0)
    expected_corr = corr.bytes if corr else b"\0" * 16
    theirs = p5_receive(protocol.encode(msgtype, flags, seq, 4, payload, annotations, corr.bytes if corr else None,
                                        compress=compress))
    assert (theirs.type, theirs.flags, theirs.seq, theirs.serializer_id) == (msgtype, expected_flags, seq, 4)
    assert bytes(theirs.data) == payload and bytes(theirs.corr_id) == expected_corr
    assert {k: bytes(v) for k, v in theirs.annotations.items()} == (annotations or {})

    ours = protocol.decode(p5_send(msgtype, flags, seq, 4, payload, annotations, compress, corr), MAX)
    assert (ours.type, ours.flags, ours.seq, ours.serializer_id) == (msgtype, expected_flags, seq, 4)
    assert bytes(ours.data) == payload and ours.corr_id == expected_corr
    assert ours.annotations == (annotations or {})


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_full_call_message_bytes_identical(name):
    payload_ours = gp(name).dumpsCall("obj", "method", ("a", core.URI("PYRO:x@h:1")), {"k": 1})
    payload_theirs = p5(name).dumpsCall("obj", "method", ("a", Pyro5.core.URI("PYRO:x@h:1")), {"k": 1})
    ours = protocol.encode(protocol.MSG_INVOKE, 0, 12, gp(name).serializer_id, payload_ours, {"XTRA": b"q"},
                           CORR.bytes, compress=True)
    theirs = p5_send(Pyro5.protocol.MSG_INVOKE, 0, 12, p5(name).serializer_id, payload_theirs, {"XTRA": b"q"},
                     True, CORR)
    assert ours == theirs


def test_pyro5_ping_message_is_understood():
    wire = Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_PING, 0, 0, 42, b"ping").data
    msg = protocol.decode(wire, MAX)
    assert (msg.type, msg.serializer_id, msg.data) == (protocol.MSG_PING, 42, b"ping")


def test_pyro5_and_geopyro_agree_on_the_constants():
    for name in ("MSG_CONNECT", "MSG_CONNECTOK", "MSG_CONNECTFAIL", "MSG_INVOKE", "MSG_RESULT", "MSG_PING",
                 "FLAGS_EXCEPTION", "FLAGS_COMPRESSED", "FLAGS_ONEWAY", "FLAGS_BATCH", "FLAGS_ITEMSTREAMRESULT",
                 "FLAGS_KEEPSERIALIZED", "FLAGS_CORR_ID", "PROTOCOL_VERSION"):
        assert getattr(protocol, name) == getattr(Pyro5.protocol, name), name
    for name in SERIALIZERS:
        assert gp(name).serializer_id == p5(name).serializer_id


@pytest.mark.parametrize("name", SERIALIZERS)
def test_loads_from_any_bytes_like_payload(name):
    """Large received payloads reach the serializer as memoryviews; they must load like bytes."""
    ser = serializers.get_serializer(name)
    value = {"text": "h\u00e9llo", "numbers": [1, 2.5, -3], "nested": {"k": [True, None]}}
    data = ser.dumps(value)
    call = ser.dumpsCall("obj", "method", [1, "two"], {"k": 3})
    for kind in (bytes, bytearray, memoryview):
        assert ser.loads(kind(data)) == value
        obj, method, vargs, kwargs = ser.loadsCall(kind(call))
        assert (obj, method, list(vargs), kwargs) == ("obj", "method", [1, "two"], {"k": 3})
