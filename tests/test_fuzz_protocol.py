"""Property tests: whatever bytes arrive, only protocol errors come out, and nothing big gets allocated."""

import marshal
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geopyro import protocol, serializers
from geopyro.errors import MessageTooLargeError, ProtocolError, SecurityError, SerializeError
from support import feed_in_chunks

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL_MAX = 64 * 1024
SERIALIZER_NAMES = ["serpent", "marshal", "json", "msgpack"]

annotation_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=4)
messages = st.builds(
    lambda t, f, seq, sid, data, ann, corr, z: protocol.encode(t, f, seq, sid, data, ann, corr, compress=z),
    st.sampled_from(sorted(protocol.MESSAGE_TYPES)),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.one_of(st.binary(max_size=300), st.binary(max_size=4).map(lambda b: b * 100)),
    st.dictionaries(annotation_ids, st.binary(max_size=40), max_size=3),
    st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
    st.booleans(),
)
mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10000)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=60)),
    st.tuples(st.just("size"), st.sampled_from([12, 16]), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("size"), st.sampled_from([12, 16]), st.integers(0xFFFF0000, 0xFFFFFFFF)),
    st.tuples(st.just("anns"), st.integers(0, 64), st.binary(min_size=8, max_size=16)),
)
chunkings = st.lists(st.integers(1, 80), min_size=1, max_size=20)


def mutate(data, ops):
    data = bytearray(data)
    for op in ops:
        if op[0] == "flip" and data:
            data[op[1] % len(data)] ^= op[2]
        elif op[0] == "truncate":
            del data[op[1] % (len(data) + 1):]
        elif op[0] == "extend":
            data += op[1]
        elif op[0] == "size" and len(data) >= op[1] + 4:
            data[op[1]:op[1] + 4] = struct.pack("!I", op[2])
        elif op[0] == "anns" and len(data) >= 40:
            position = 40 + op[1] % (len(data) - 39)
            data[position:position] = op[2]
    return bytes(data)


def drain(data, chunks, max_size):
    """Feed ``data`` in the given chunk sizes (cycled); return the messages and the reader. May raise."""
    reader = protocol.MessageReader(max_size)
    return feed_in_chunks(reader, data, chunks), reader


def only_protocol_errors(data, chunks, max_size=SMALL_MAX):
    try:
        drain(data, chunks, max_size)
    except ProtocolError:
        pass
    try:
        msg = protocol.decode(data, max_size)
    except ProtocolError:
        return None
    assert len(msg.data) <= max_size
    return msg


# ---------------------------------------------------------------- the message layer

@FUZZ
@given(st.binary(max_size=400), chunkings)
def test_random_bytes(data, chunks):
    only_protocol_errors(data, chunks)


@FUZZ
@given(st.binary(max_size=200), chunkings)
def test_random_bytes_after_a_valid_prefix(tail, chunks):
    """Junk behind a plausible header exercises the body and annotation parsing, not just the tag check."""
    only_protocol_errors(b"PYRO\x01\xf6" + tail, chunks)


annotation_sections = st.one_of(
    st.binary(max_size=120),
    # well-formed chunk framing around random ids and values, sometimes followed by a few stray bytes
    st.tuples(st.lists(st.tuples(st.binary(min_size=4, max_size=4), st.binary(max_size=20)), min_size=1, max_size=4),
              st.binary(max_size=9)).map(
        lambda parts: b"".join(key + struct.pack("!I", len(value)) + value for key, value in parts[0]) + parts[1]),
)


@FUZZ
@given(annotation_sections, st.binary(max_size=200), st.integers(0, 0xFFFF), chunkings)
def test_random_annotations_and_payload_behind_a_valid_header(annotations, data, flags, chunks):
    """Sizes that add up, so the parser gets as far as annotation chunks and (with random flags) inflating."""
    header = struct.pack("!4sHBBHHII16sHH", b"PYRO", 502, protocol.MSG_RESULT, 1, flags, 1, len(data),
                         len(annotations), b"\0" * 16, 0, 0x4DC5)
    only_protocol_errors(header + annotations + data, chunks)


@FUZZ
@given(st.lists(messages, min_size=1, max_size=4), chunkings)
def test_valid_messages_survive_any_chunking(wires, chunks):
    found, reader = drain(b"".join(wires), chunks, SMALL_MAX)
    assert len(found) == len(wires)
    assert reader.buffered == 0
    for wire, msg in zip(wires, found):
        expected = protocol.decode(wire, SMALL_MAX)
        assert (msg.type, msg.flags, msg.seq, msg.serializer_id, bytes(msg.data), msg.annotations, msg.corr_id) == \
            (expected.type, expected.flags, expected.seq, expected.serializer_id, bytes(expected.data),
             expected.annotations, expected.corr_id)


@FUZZ
@given(messages, st.lists(mutation, min_size=1, max_size=4), chunkings)
def test_mutated_messages(wire, ops, chunks):
    only_protocol_errors(mutate(wire, ops), chunks)


@FUZZ
@given(messages, st.lists(mutation, min_size=1, max_size=3), chunkings, st.integers(0, 300))
def test_mutated_messages_with_tiny_limits(wire, ops, chunks, max_size):
    only_protocol_errors(mutate(wire, ops), chunks, max_size)


@FUZZ
@given(st.binary(max_size=120), st.integers(1, 2000))
def test_decompress_only_raises_protocol_errors(data, max_size):
    try:
        out = protocol.decompress(data, max_size)
    except ProtocolError:
        return
    assert len(out) <= max_size


@FUZZ
@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.binary(max_size=50))
def test_declared_sizes_never_exceed_the_limit(data_size, ann_size, body):
    header = struct.pack("!4sHBBHHII16sHH", b"PYRO", 502, 4, 1, 0, 1, data_size, ann_size, b"\0" * 16, 0, 0x4DC5)
    reader = protocol.MessageReader(SMALL_MAX)
    reader.feed(header + body)
    try:
        reader.next_message()
    except MessageTooLargeError:
        assert data_size + ann_size > SMALL_MAX
    except ProtocolError:
        assert data_size + ann_size <= SMALL_MAX
    else:
        assert data_size + ann_size <= SMALL_MAX
    assert reader.buffered <= 40 + len(body)


# ---------------------------------------------------------------- no large allocation

def huge_header(declared, ann_size=0):
    return struct.pack("!4sHBBHHII16sHH", b"PYRO", 502, 4, 1, 0, 1, declared, ann_size, b"\0" * 16, 0, 0x4DC5)


@pytest.mark.parametrize("data_size, ann_size", [(900 * 1024 * 1024, 0), (0, 900 * 1024 * 1024),
                                                 (500 * 1024 * 1024, 500 * 1024 * 1024)])
def test_a_huge_declared_size_allocates_nothing(data_size, ann_size):
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        reader = protocol.MessageReader(1024 * 1024 * 1024)
        reader.feed(huge_header(data_size, ann_size) + b"abc")
        assert reader.next_message() is None
        for _ in range(50):
            reader.feed(b"0123456789")
            assert reader.next_message() is None
        with pytest.raises(ProtocolError, match="truncated"):
            protocol.decode(huge_header(data_size, ann_size) + b"abc", 1024 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    assert reader.buffered == 40 + 3 + 500
    assert reader.in_message
    assert reader.bytes_needed() == 40 + data_size + ann_size - reader.buffered
    assert peak < 256 * 1024, "peak traced allocation %d bytes" % peak


def test_a_declared_size_over_the_limit_fails_before_anything_else_arrives():
    reader = protocol.MessageReader(1024 * 1024 * 1024)
    reader.feed(huge_header(1024 * 1024 * 1024 + 1))
    with pytest.raises(MessageTooLargeError):
        reader.next_message()
    assert reader.buffered == 40


# ---------------------------------------------------------------- the serializers

DANGEROUS_MARSHAL_CODES = {ord("("), ord("["), ord("l")}


def defuse_marshal(data):
    """Replace marshal type codes that preallocate from a 4-byte count (tuple, list, long) when the count is
    larger than the data: CPython's marshal.loads allocates that count first (b'[\\xff\\xff\\xff\\x7f' asks for
    16 GiB), which is a known hazard of the marshal serializer itself (Pyro5 shares it), not of the code tested here.
    """
    data = bytearray(data)
    for i, code in enumerate(data):
        if code & 0x7F in DANGEROUS_MARSHAL_CODES:
            count = struct.unpack("<i", bytes(data[i + 1:i + 5]).ljust(4, b"\0"))[0]
            if count > len(data):
                data[i] = ord(")")  # small tuple: a one-byte count
    return bytes(data)


def load_only_serializer_errors(name, data):
    serializer = serializers.serializers[name]
    if name == "marshal":
        data = defuse_marshal(data)
    for load in (serializer.loads, serializer.loadsCall):
        try:
            load(data)
        except (SerializeError, SecurityError, ProtocolError):
            pass


def sample_payloads(name):
    serializer = serializers.serializers[name]
    return [
        serializer.dumpsCall("obj.id", "method", (1, "two", [3.0, None], {"k": True}), {"kw": [1, 2]}),
        serializer.dumps({"__class__": "Pyro5.core.URI", "state": ("PYRO", "o", None, "host", 9999)}),
        serializer.dumps(ValueError("boom", 42)),
        serializer.dumps([{"a": [1, 2, {"b": "c"}]}, ("x", 1.5), "\u20ac" * 3, 2 ** 70]),
    ]


@pytest.mark.parametrize("name", SERIALIZER_NAMES)
@FUZZ
@given(data=st.binary(max_size=200))
def test_serializer_random_bytes(name, data):
    load_only_serializer_errors(name, data)


@pytest.mark.parametrize("name", SERIALIZER_NAMES)
@FUZZ
@given(choice=st.integers(0, 3), ops=st.lists(mutation, min_size=1, max_size=4))
def test_serializer_mutated_payloads(name, choice, ops):
    payload = sample_payloads(name)[choice]
    load_only_serializer_errors(name, mutate(b"\0" * 40 + payload, ops)[40:])


@pytest.mark.parametrize("name", SERIALIZER_NAMES)
@FUZZ
@given(classname=st.text(max_size=30), extra=st.dictionaries(st.text(max_size=8), st.integers(), max_size=3))
def test_serializer_random_class_dicts(name, classname, extra):
    serializer = serializers.serializers[name]
    payload = serializer.dumps(dict(extra, __class__=classname))
    try:
        serializer.loads(payload)
    except SecurityError:
        assert "__" in classname
    except SerializeError:
        pass


@pytest.mark.parametrize("name", SERIALIZER_NAMES)
def test_double_underscore_class_names_are_refused(name):
    serializer = serializers.serializers[name]
    with pytest.raises(SecurityError, match="double underscores"):
        serializer.loads(serializer.dumps({"__class__": "os.__system__", "x": 1}))


NESTED = {
    "serpent": [b"[" * 100000, b"(" * 100000 + b")" * 100000, b"{'a':" * 50000],
    "json": [b"[" * 100000, b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000],
    "msgpack": [b"\x91" * 100000 + b"\xc0", b"\x81\xa1a" * 50000 + b"\xc0"],
    "marshal": [b"[\x01\x00\x00\x00" * 100000 + b"N", b"\xdb\x01\x00\x00\x00" * 100000 + b"N"],
}


@pytest.mark.parametrize("name", SERIALIZER_NAMES)
def test_deep_nesting_is_a_serialize_error(name):
    serializer = serializers.serializers[name]
    for data in NESTED[name]:
        with pytest.raises(SerializeError):
            serializer.loads(data)
        with pytest.raises(SerializeError):
            serializer.loadsCall(data)


def test_nesting_that_parses_but_is_too_deep_to_rebuild():
    """marshal reads 1500 levels itself; recreating classes in Python must not leak the RecursionError."""
    value = None
    for _ in range(1500):
        value = [value]
    data = marshal.dumps(value)
    with pytest.raises(SerializeError, match="nested too deeply"):
        serializers.serializers["marshal"].loads(data)

# (dumping data nested too deeply raises what Pyro5 raises: tests/test_pyro5_exceptions.py)
