"""Pyro4's wire protocol (48), sans I/O: bytes Pyro4 4.82 itself writes and reads, HMAC, and hostile input."""

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geopyro import protocol, protocol48
from geopyro.errors import MessageTooLargeError, ProtocolError, SecurityError
from support import feed_in_chunks

Pyro4_message = pytest.importorskip("Pyro4.message", reason="Pyro4 is the peer these tests compare with")
Pyro4_errors = pytest.importorskip("Pyro4.errors")

MAX = 64 * 1024
BASE = protocol48.PYRO4_SERIALIZER_BASE
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class _Wire:
    """A connection object for Pyro4's Message.recv: hands out the bytes it was given."""

    def __init__(self, data):
        self.data = data

    def recv(self, size):
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def read_all(data, max_size=MAX, hmac_key=None, chunk=None):
    reader = protocol48.MessageReader48(max_size, hmac_key)
    found = []
    step = chunk or len(data) or 1
    for pos in range(0, len(data), step):
        reader.feed(data[pos:pos + step])
        while True:
            msg = reader.next_message()
            if msg is None:
                break
            found.append(msg)
    return found, reader


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_reads_what_pyro4_writes(chunk):
    corr = uuid.uuid4().bytes
    wires = [
        Pyro4_message.Message(Pyro4_message.MSG_INVOKE, b"payload", 1, Pyro4_message.FLAGS_ONEWAY, 7,
                              annotations={"CORR": corr, "XTRA": b"x" * 300}).to_bytes(),
        Pyro4_message.Message(Pyro4_message.MSG_CONNECT, b"hello", 2, Pyro4_message.FLAGS_META_ON_CONNECT,
                              0xFFFF).to_bytes(),
        Pyro4_message.Message(Pyro4_message.MSG_PING, b"ping", 6, 0, 1).to_bytes(),
    ]
    found, reader = read_all(b"".join(wires), chunk=chunk)
    assert reader.buffered == 0 and not reader.in_message
    invoke, connect, ping = found
    assert (invoke.type, invoke.seq, invoke.data) == (protocol.MSG_INVOKE, 7, b"payload")
    assert invoke.serializer_id == BASE + 1
    assert invoke.flags == protocol.FLAGS_ONEWAY | protocol.FLAGS_CORR_ID
    assert invoke.corr_id == corr and invoke.annotations == {"CORR": corr, "XTRA": b"x" * 300}
    assert connect.flags == protocol48.FLAGS_META_ON_CONNECT and connect.seq == 0xFFFF
    assert connect.serializer_id == BASE + 2
    assert connect.corr_id == protocol.EMPTY_CORR_ID
    assert ping.serializer_id == BASE + 6 and ping.type == protocol.MSG_PING


def test_pyro4_reads_what_we_write():
    corr = uuid.uuid4().bytes
    wire = protocol48.encode(protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION | protocol.FLAGS_ITEMSTREAMRESULT, 0x1234,
                             BASE + 3, b"result", {"STRM": b"stream-id"}, corr)
    msg = Pyro4_message.Message.recv(_Wire(wire), [Pyro4_message.MSG_RESULT])
    assert msg.flags == Pyro4_message.FLAGS_EXCEPTION | Pyro4_message.FLAGS_ITEMSTREAMRESULT
    assert (msg.seq, msg.serializer_id, msg.data) == (0x1234, 3, b"result")
    assert msg.annotations == {"STRM": b"stream-id", "CORR": corr}


@pytest.mark.parametrize("flag", sorted(protocol48._FLAGS_TO_502))
def test_every_flag_means_the_same_both_ways(flag):
    wire = Pyro4_message.Message(Pyro4_message.MSG_RESULT, b"", 1, flag, 0).to_bytes()
    [msg], _ = read_all(wire)
    assert protocol48.encode(msg.type, msg.flags, msg.seq, msg.serializer_id, msg.data) == wire


def test_serializer_ids_map_to_ids_no_502_header_can_carry():
    for wire_id in protocol48.SERIALIZER_NAMES:
        ours = protocol48.serializer_id_from_48(wire_id)
        assert ours > 255 and protocol48.is_pyro4_serializer(ours)
        assert protocol48.serializer_id_to_48(ours) == wire_id
    for not_pyro4 in (1, 4, 255):
        assert not protocol48.is_pyro4_serializer(not_pyro4)
        with pytest.raises(ProtocolError):
            protocol48.serializer_id_to_48(not_pyro4)


def test_hmac_both_ways():
    key = b"secret key"
    wire = Pyro4_message.Message(Pyro4_message.MSG_INVOKE, b"data", 1, 0, 3, annotations={"ABCD": b"1"},
                                 hmac_key=key).to_bytes()
    [msg], _ = read_all(wire, hmac_key=key)
    assert msg.data == b"data" and "HMAC" in msg.annotations
    ours = protocol48.encode(protocol.MSG_RESULT, 0, 3, BASE + 1, b"answer", {"ABCD": b"1"}, hmac_key=key)
    assert Pyro4_message.Message.recv(_Wire(ours), hmac_key=key).data == b"answer"
    with pytest.raises(Pyro4_errors.SecurityError, match="hmac mismatch"):
        Pyro4_message.Message.recv(_Wire(ours), hmac_key=b"other key")


@pytest.mark.parametrize("sender_key, reader_key, text", [
    (b"one", b"two", "message hmac mismatch"),
    (b"one", None, "hmac key config not symmetric"),
    (None, b"two", "hmac key config not symmetric"),
])
def test_wrong_or_one_sided_hmac_is_refused_with_pyro4s_error(sender_key, reader_key, text):
    wire = Pyro4_message.Message(Pyro4_message.MSG_INVOKE, b"data", 1, 0, 3, hmac_key=sender_key).to_bytes()
    with pytest.raises(SecurityError, match=text):
        read_all(wire, hmac_key=reader_key)


def test_a_tampered_payload_fails_the_hmac():
    wire = bytearray(protocol48.encode(protocol.MSG_INVOKE, 0, 1, BASE + 1, b"pay me 10", hmac_key=b"k"))
    wire[-2:] = b"99"
    with pytest.raises(SecurityError, match="hmac mismatch"):
        read_all(bytes(wire), hmac_key=b"k")


def _header(msgtype=protocol.MSG_INVOKE, flags=0, seq=0, size=0, serializer=1, anns=0, check=None):
    if check is None:
        check = protocol48.checksum(msgtype, flags, seq, serializer, size, anns)
    return struct.pack("!4sHHHHiHHHH", b"PYRO", 48, msgtype, flags, seq, size, serializer, anns, 0, check)


@pytest.mark.parametrize("data, error, text", [
    (_header(check=1), ProtocolError, "checksum mismatch"),
    (_header(msgtype=9), ProtocolError, "unknown message type 9"),
    (_header(size=-5), ProtocolError, "invalid message size"),
    (_header(size=MAX + 1), MessageTooLargeError, "max message size exceeded"),
    (b"PYRO\x00\x31", ProtocolError, "unsupported protocol version"),
    (b"HTTP/1.1", ProtocolError, "unsupported protocol version"),
    (_header(anns=3) + b"abc", ProtocolError, "truncated annotation chunk header"),
    (_header(anns=8) + b"ABCD\x00\x09xy", ProtocolError, "exceeds remaining data"),
])
def test_malformed_input_is_refused_as_soon_as_it_shows(data, error, text):
    with pytest.raises(error, match=text):
        read_all(data)


def test_every_message_in_the_buffer_has_its_tag_checked():
    ping = Pyro4_message.Message(Pyro4_message.MSG_PING, b"ping", 1, 0, 1).to_bytes()
    reader = protocol48.MessageReader48(MAX)
    reader.feed(ping + b"HTTP/1.1" + ping[8:])  # (a header whose checksum is right, but not a Pyro one)
    assert reader.next_message().data == b"ping"
    with pytest.raises(ProtocolError, match="unsupported protocol version"):
        reader.next_message()


def test_a_declared_size_is_refused_before_the_body_comes():
    reader = protocol48.MessageReader48(1000)
    reader.feed(_header(size=2000))
    with pytest.raises(MessageTooLargeError):
        reader.next_message()


def test_version_of_tells_the_protocols_apart():
    assert protocol48.version_of(protocol48.encode(protocol.MSG_PING, 0, 0, BASE + 1, b"")) == 48
    assert protocol48.version_of(protocol.encode(protocol.MSG_PING, 0, 0, 1, b"")) == 502
    assert protocol48.version_of(b"PYR") is None
    for junk in (b"GET / HTTP/1.1", b"PYRO\x00\x07", b"xx"):
        with pytest.raises(ProtocolError):
            protocol48.version_of(junk)


def test_encode_refuses_what_protocol_48_cannot_carry():
    with pytest.raises(ProtocolError, match="too long for protocol 48"):
        protocol48.encode(protocol.MSG_RESULT, 0, 0, BASE + 1, b"", {"BIGA": b"x" * 70000})
    with pytest.raises(ProtocolError, match="4 ASCII"):
        protocol48.encode(protocol.MSG_RESULT, 0, 0, BASE + 1, b"", {"TOOLONG": b""})
    with pytest.raises(MessageTooLargeError):
        protocol48.encode(protocol.MSG_RESULT, 0, 0, BASE + 1, b"x" * 100, max_size=50)


# ---------------------------------------------------------------- fuzzing, as for protocol 502

annotation_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=4)
messages = st.builds(
    lambda t, f, seq, sid, data, ann, corr, key: (protocol48.encode(t, f, seq, sid, data, ann, corr, key), key),
    st.sampled_from(sorted(protocol.MESSAGE_TYPES)),
    st.sampled_from([0] + sorted(protocol48._FLAGS_TO_48)),
    st.integers(0, 0xFFFF),
    st.sampled_from([BASE + wire_id for wire_id in protocol48.SERIALIZER_NAMES]),
    st.binary(max_size=300),
    st.dictionaries(annotation_ids.filter(lambda k: k not in ("HMAC", "CORR")), st.binary(max_size=40), max_size=3),
    st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
    st.one_of(st.none(), st.binary(min_size=1, max_size=8)),
)
chunkings = st.lists(st.integers(1, 80), min_size=1, max_size=20)


def _drain(data, chunks, hmac_key=None):
    reader = protocol48.MessageReader48(MAX, hmac_key)
    found = feed_in_chunks(reader, data, chunks)
    assert all(len(msg.data) <= MAX for msg in found)
    return found, reader


@FUZZ
@given(st.binary(max_size=400), chunkings)
def test_random_bytes_give_only_protocol_errors(data, chunks):
    try:
        _drain(b"PYRO\x00\x30" + data, chunks)
    except ProtocolError:
        pass


@FUZZ
@given(messages, chunkings)
def test_valid_messages_survive_any_chunking_and_pyro4_agrees(wire_and_key, chunks):
    wire, key = wire_and_key
    [msg], reader = _drain(wire, chunks, key)
    assert reader.buffered == 0
    theirs = Pyro4_message.Message.recv(_Wire(wire), hmac_key=key)
    assert (theirs.type, theirs.seq, theirs.data) == (msg.type, msg.seq, msg.data)
    assert protocol48.serializer_id_from_48(theirs.serializer_id) == msg.serializer_id
    assert theirs.annotations == msg.annotations


@FUZZ
@given(messages, st.integers(0, 400), st.integers(1, 255), chunkings)
def test_flipped_bytes_give_only_protocol_or_security_errors(wire_and_key, position, xor, chunks):
    wire, key = wire_and_key
    data = bytearray(wire)
    data[position % len(data)] ^= xor
    try:
        _drain(bytes(data), chunks, key)
    except (ProtocolError, SecurityError):
        pass


def _signed(data, key, msgtype=protocol.MSG_INVOKE):
    return protocol48.encode(msgtype, 0, 1, BASE + 1, data, hmac_key=key)


@pytest.mark.parametrize("msgtype", [protocol.MSG_INVOKE, protocol.MSG_CONNECT, protocol.MSG_PING])
def test_a_server_reader_leaves_a_large_signature_for_later(msgtype):
    large = b"x" * protocol48.DEFERRED_HMAC_FROM
    reader = protocol48.MessageReader48(1 << 20, b"key", defer_large_hmac=True)
    reader.feed(_signed(large, b"wrong key", msgtype))
    msg = reader.next_message()  # not hashed yet: no error
    assert msg.hmac_pending == b"key" and isinstance(msg.data, memoryview)  # (the buffer was handed over)
    with pytest.raises(SecurityError, match="message hmac mismatch"):
        protocol48.verify(msg)
    reader.feed(_signed(large, b"key", msgtype))
    msg = reader.next_message()
    protocol48.verify(msg)
    assert msg.hmac_pending is None and bytes(msg.data) == large


def test_small_messages_and_client_readers_check_the_signature_at_once():
    small, large = b"x" * (protocol48.DEFERRED_HMAC_FROM - 1), b"x" * protocol48.DEFERRED_HMAC_FROM
    for data, defer in ((small, True), (large, False)):
        reader = protocol48.MessageReader48(1 << 20, b"key", defer_large_hmac=defer)
        reader.feed(_signed(data, b"wrong key"))
        with pytest.raises(SecurityError, match="message hmac mismatch"):
            reader.next_message()
        reader = protocol48.MessageReader48(1 << 20, b"key", defer_large_hmac=defer)
        reader.feed(_signed(data, b"key"))
        msg = reader.next_message()
        assert msg.hmac_pending is None and type(msg.data) is (bytes if data is small else memoryview)


def test_a_missing_or_unexpected_signature_is_refused_at_once_whatever_the_size():
    large = b"x" * protocol48.DEFERRED_HMAC_FROM
    for wire, key in ((_signed(large, None), b"key"), (_signed(large, b"key"), None)):
        reader = protocol48.MessageReader48(1 << 20, key, defer_large_hmac=True)
        reader.feed(wire)
        with pytest.raises(SecurityError, match="hmac key config not symmetric"):
            reader.next_message()
