"""The sans-IO wire protocol (version 502): encoding, incremental parsing and every malformed input."""

import random
import struct
import zlib

import pytest

from geopyro import protocol
from geopyro.errors import MessageTooLargeError, ProtocolError

MAX = 1024 * 1024
ALL_TYPES = [protocol.MSG_CONNECT, protocol.MSG_CONNECTOK, protocol.MSG_CONNECTFAIL, protocol.MSG_INVOKE,
             protocol.MSG_RESULT, protocol.MSG_PING]
PLAIN_FLAGS = [0, protocol.FLAGS_EXCEPTION, protocol.FLAGS_ONEWAY, protocol.FLAGS_BATCH,
               protocol.FLAGS_ITEMSTREAMRESULT, protocol.FLAGS_KEEPSERIALIZED,
               protocol.FLAGS_EXCEPTION | protocol.FLAGS_ONEWAY | protocol.FLAGS_BATCH
               | protocol.FLAGS_ITEMSTREAMRESULT | protocol.FLAGS_KEEPSERIALIZED]
CORR = bytes(range(1, 17))


def raw_header(msgtype=protocol.MSG_INVOKE, serializer_id=1, flags=0, seq=1, data_size=0, ann_size=0,
               corr_id=b"\0" * 16, tag=b"PYRO", version=502, magic=0x4DC5):
    """A header built by hand (independent of geopyro's own struct) to craft any malformed variant."""
    return (tag + version.to_bytes(2, "big") + bytes([msgtype, serializer_id]) + flags.to_bytes(2, "big")
            + seq.to_bytes(2, "big") + data_size.to_bytes(4, "big") + ann_size.to_bytes(4, "big") + corr_id
            + b"\0\0" + magic.to_bytes(2, "big"))


def feed_all(reader, data, chunk_sizes):
    """Feed ``data`` in chunks of the given sizes (cycled), collecting every complete message."""
    messages = []
    pos = 0
    i = 0
    while pos < len(data):
        size = chunk_sizes[i % len(chunk_sizes)]
        reader.feed(data[pos:pos + size])
        pos += size
        i += 1
        while True:
            msg = reader.next_message()
            if msg is None:
                break
            messages.append(msg)
    return messages


def assert_same(msg, msgtype, flags, seq, serializer_id, data, annotations, corr_id):
    assert msg.type == msgtype
    assert msg.flags == flags
    assert msg.seq == seq
    assert msg.serializer_id == serializer_id
    assert bytes(msg.data) == data
    assert {k: bytes(v) for k, v in msg.annotations.items()} == annotations
    assert msg.corr_id == corr_id


# ---------------------------------------------------------------- encoding and round trips

def test_header_layout_matches_the_documented_wire_format():
    wire = protocol.encode(protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION, 0x1234, 3, b"payload",
                           annotations={"ABCD": b"xyz"}, corr_id=CORR)
    assert protocol.HEADER_SIZE == 40
    assert wire[:40] == raw_header(protocol.MSG_RESULT, 3, protocol.FLAGS_EXCEPTION | protocol.FLAGS_CORR_ID,
                                   0x1234, 7, 11, CORR)
    assert wire[40:] == b"ABCD" + b"\0\0\0\x03" + b"xyz" + b"payload"


@pytest.mark.parametrize("msgtype", ALL_TYPES)
@pytest.mark.parametrize("flags", PLAIN_FLAGS)
def test_round_trip_every_type_and_flag(msgtype, flags):
    data = b"some payload \x00\xff" * 3
    wire = protocol.encode(msgtype, flags, 42, 4, data)
    msg = protocol.decode(wire, MAX)
    assert_same(msg, msgtype, flags, 42, 4, data, {}, protocol.EMPTY_CORR_ID)
    assert not msg.flags & protocol.FLAGS_CORR_ID


@pytest.mark.parametrize("msgtype", ALL_TYPES)
def test_round_trip_with_annotations_corr_id_and_compression(msgtype):
    data = b"0123456789" * 50
    annotations = {"CORR": b"\x01\x02", "XTRA": b"", "BIGG": b"z" * 300}
    wire = protocol.encode(msgtype, protocol.FLAGS_ONEWAY, 65535, 2, data, annotations, CORR, compress=True)
    _, wire_flags = struct.unpack("!BxH", wire[6:10])
    assert wire_flags & protocol.FLAGS_COMPRESSED
    msg = protocol.decode(wire, MAX)
    assert_same(msg, msgtype, protocol.FLAGS_ONEWAY | protocol.FLAGS_CORR_ID, 65535, 2, data, annotations, CORR)


def test_empty_payload_and_no_annotations():
    wire = protocol.encode(protocol.MSG_PING, 0, 0, 0, b"")
    assert len(wire) == 40
    msg = protocol.decode(wire, MAX)
    assert msg.data == b"" and msg.annotations == {}


def test_corr_id_sets_flag_and_travels():
    wire = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"x", corr_id=CORR)
    assert wire[20:36] == CORR
    assert struct.unpack("!H", wire[8:10])[0] == protocol.FLAGS_CORR_ID
    msg = protocol.decode(wire, MAX)
    assert msg.corr_id == CORR and msg.flags & protocol.FLAGS_CORR_ID


def test_no_corr_id_sends_zeros_and_no_flag():
    for corr in (None, b""):
        wire = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"x", corr_id=corr)
        assert wire[20:36] == b"\0" * 16
        assert struct.unpack("!H", wire[8:10])[0] == 0


@pytest.mark.parametrize("corr", [b"short", b"x" * 17, "0123456789abcdef"])
def test_corr_id_must_be_16_bytes(corr):
    with pytest.raises(ProtocolError, match="correlation id"):
        protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"x", corr_id=corr)


def test_sequence_number_wraps_to_16_bits():
    msg = protocol.decode(protocol.encode(protocol.MSG_INVOKE, 0, 65536 + 5, 1, b""), MAX)
    assert msg.seq == 5


def test_annotation_values_may_be_any_bytes_like():
    annotations = {"BARR": bytearray(b"ba"), "MVIE": memoryview(b"mv"), "BYTS": b"by"}
    msg = protocol.decode(protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"d", annotations), MAX)
    assert msg.annotations == {"BARR": b"ba", "MVIE": b"mv", "BYTS": b"by"}
    assert all(type(v) is bytes for v in msg.annotations.values())


def test_annotations_keep_their_order_on_the_wire():
    annotations = {"ZZZZ": b"1", "AAAA": b"22", "MMMM": b"333"}
    wire = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"", annotations)
    assert wire[40:] == b"ZZZZ\0\0\0\x011AAAA\0\0\0\x0222MMMM\0\0\0\x03333"
    assert list(protocol.decode(wire, MAX).annotations) == ["ZZZZ", "AAAA", "MMMM"]


# ---------------------------------------------------------------- compression

def test_compression_of_payloads_over_100_bytes():
    data = b"abc" * 200
    wire = protocol.encode(protocol.MSG_RESULT, 0, 1, 1, data, annotations={"ANNO": b"A" * 200}, compress=True)
    flags = struct.unpack("!H", wire[8:10])[0]
    assert flags == protocol.FLAGS_COMPRESSED
    data_size, ann_size = struct.unpack("!II", wire[12:20])
    assert ann_size == 208
    assert wire[40:48 + 200] == b"ANNO\0\0\0\xc8" + b"A" * 200      # annotations are never compressed
    assert zlib.decompress(wire[40 + ann_size:]) == data
    assert data_size == len(wire) - 40 - ann_size < len(data)
    msg = protocol.decode(wire, MAX)
    assert msg.data == data
    assert msg.flags == 0                                             # the receiver sees plain data


@pytest.mark.parametrize("size", [0, 1, 50, 99, 100])
def test_payloads_of_at_most_100_bytes_are_not_compressed(size):
    data = b"a" * size
    wire = protocol.encode(protocol.MSG_RESULT, 0, 1, 1, data, compress=True)
    assert struct.unpack("!H", wire[8:10])[0] == 0
    assert wire[40:] == data


def test_101_bytes_are_compressed():
    wire = protocol.encode(protocol.MSG_RESULT, 0, 1, 1, b"a" * 101, compress=True)
    assert struct.unpack("!H", wire[8:10])[0] == protocol.FLAGS_COMPRESSED


def test_compressed_flag_passed_by_caller_is_ignored_without_compression():
    wire = protocol.encode(protocol.MSG_RESULT, protocol.FLAGS_COMPRESSED | protocol.FLAGS_BATCH, 1, 1, b"x" * 500)
    assert struct.unpack("!H", wire[8:10])[0] == protocol.FLAGS_BATCH
    assert wire[40:] == b"x" * 500


def test_max_size_is_checked_against_the_compressed_size():
    data = b"a" * 1000
    protocol.encode(protocol.MSG_RESULT, 0, 1, 1, data, compress=True, max_size=500)
    with pytest.raises(MessageTooLargeError):
        protocol.encode(protocol.MSG_RESULT, 0, 1, 1, data, compress=False, max_size=500)


# ---------------------------------------------------------------- MessageReader

def test_reader_byte_by_byte():
    data = b"payload-bytes" * 10
    wire = protocol.encode(protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY, 9, 1, data, {"ABCD": b"ann"}, CORR)
    reader = protocol.MessageReader(MAX)
    assert not reader.in_message
    assert reader.bytes_needed() == 40
    for i, byte in enumerate(wire[:-1]):
        reader.feed(bytes([byte]))
        assert reader.next_message() is None
        assert reader.buffered == i + 1
        assert reader.in_message
        received = i + 1
        assert reader.bytes_needed() == (40 - received if received < 40 else len(wire) - received)
    reader.feed(wire[-1:])
    msg = reader.next_message()
    assert_same(msg, protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY | protocol.FLAGS_CORR_ID, 9, 1, data,
                {"ABCD": b"ann"}, CORR)
    assert reader.buffered == 0 and not reader.in_message
    assert reader.next_message() is None


@pytest.mark.parametrize("seed", range(8))
def test_reader_random_chunk_sizes(seed):
    rnd = random.Random(seed)
    specs = []
    for i in range(6):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 400)))
        annotations = {"A%03d" % j: bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 20)))
                       for j in range(rnd.randint(0, 3))}
        specs.append((rnd.choice(ALL_TYPES), rnd.choice(PLAIN_FLAGS), i, rnd.randint(1, 4), data, annotations,
                      rnd.choice([None, CORR]), rnd.random() < 0.5))
    wire = b"".join(protocol.encode(t, f, s, sid, d, a, c, compress=z) for t, f, s, sid, d, a, c, z in specs)
    chunks = [rnd.randint(1, 97) for _ in range(50)]
    messages = feed_all(protocol.MessageReader(MAX), wire, chunks)
    assert len(messages) == len(specs)
    for msg, (t, f, s, sid, d, a, c, _) in zip(messages, specs):
        expected_flags = f | (protocol.FLAGS_CORR_ID if c else 0)
        assert_same(msg, t, expected_flags, s, sid, d, a, c or protocol.EMPTY_CORR_ID)


def test_reader_several_messages_in_one_chunk():
    wires = [protocol.encode(protocol.MSG_RESULT, 0, seq, 1, b"result %d" % seq) for seq in range(3)]
    extra = protocol.encode(protocol.MSG_RESULT, 0, 3, 1, b"partial")
    reader = protocol.MessageReader(MAX)
    reader.feed(b"".join(wires) + extra[:25])
    for seq in range(3):
        msg = reader.next_message()
        assert msg.seq == seq and msg.data == b"result %d" % seq
    assert reader.next_message() is None
    assert reader.buffered == 25 and reader.in_message
    reader.feed(extra[25:])
    assert reader.next_message().data == b"partial"
    assert reader.buffered == 0


def test_reader_large_payload_arrives_intact():
    data = bytes(range(256)) * 1024  # 256 KiB
    wire = protocol.encode(protocol.MSG_RESULT, 0, 1, 1, data)
    messages = feed_all(protocol.MessageReader(MAX), wire, [65000])
    assert len(messages) == 1
    assert bytes(messages[0].data) == data


def test_reader_accepts_exactly_max_size():
    reader = protocol.MessageReader(100)
    reader.feed(protocol.encode(protocol.MSG_RESULT, 0, 1, 1, b"d" * 80, {"ANNO": b"a" * 12}))
    assert bytes(reader.next_message().data) == b"d" * 80


# ---------------------------------------------------------------- malformed input

@pytest.mark.parametrize("junk", [b"X", b"PX", b"GET / HTTP/1.1\r\n", b"pyro", b"\0" * 40])
def test_bad_tag_is_rejected_as_soon_as_fed(junk):
    reader = protocol.MessageReader(MAX)
    with pytest.raises(ProtocolError, match="tag"):
        reader.feed(junk)
    with pytest.raises(ProtocolError):
        protocol.decode(junk + b"\0" * 40, MAX)


def test_bad_tag_detected_after_a_valid_message():
    reader = protocol.MessageReader(MAX)
    reader.feed(protocol.encode(protocol.MSG_PING, 0, 0, 0, b"ok") + b"PYRX")
    assert reader.next_message().data == b"ok"
    with pytest.raises(ProtocolError):
        reader.feed(b"\0")


@pytest.mark.parametrize("version", [0, 501, 503, 4])
def test_wrong_version(version):
    header = raw_header(version=version)
    reader = protocol.MessageReader(MAX)
    reader.feed(header[:5])
    with pytest.raises(ProtocolError, match="version %d" % version):
        reader.feed(header[5:6])
    with pytest.raises(ProtocolError, match="version"):
        protocol.decode(header, MAX)


def test_bad_magic():
    reader = protocol.MessageReader(MAX)
    reader.feed(raw_header(magic=0x1234))
    with pytest.raises(ProtocolError, match="magic"):
        reader.next_message()
    with pytest.raises(ProtocolError, match="magic"):
        protocol.decode(raw_header(magic=0x4DC6), MAX)


@pytest.mark.parametrize("msgtype", [0, 7, 42, 255])
def test_unknown_message_type(msgtype):
    with pytest.raises(ProtocolError, match="unknown message type %d" % msgtype):
        protocol.decode(raw_header(msgtype=msgtype), MAX)


@pytest.mark.parametrize("data_size, ann_size", [(MAX + 1, 0), (0, MAX + 1), (MAX // 2 + 1, MAX // 2),
                                                 (0xFFFFFFFF, 0xFFFFFFFF)])
def test_declared_size_over_max_raises_from_the_header_alone(data_size, ann_size):
    reader = protocol.MessageReader(MAX)
    reader.feed(raw_header(data_size=data_size, ann_size=ann_size))  # the header only: no body at all
    with pytest.raises(MessageTooLargeError, match="too large"):
        reader.next_message()
    assert reader.buffered == 40


def test_declared_size_equal_to_max_waits_for_the_body():
    reader = protocol.MessageReader(MAX)
    reader.feed(raw_header(data_size=MAX - 10, ann_size=10))
    assert reader.next_message() is None
    assert reader.bytes_needed() == MAX


def test_parse_header_direct():
    header = raw_header(msgtype=protocol.MSG_RESULT, serializer_id=3, flags=protocol.FLAGS_CORR_ID, seq=77,
                        data_size=5, ann_size=9, corr_id=CORR)
    assert protocol.parse_header(header, MAX) == (protocol.MSG_RESULT, protocol.FLAGS_CORR_ID, 77, 3, 5, 9, CORR)
    for bad in (header[:39], header + b"\0"):
        with pytest.raises(ProtocolError, match="40 bytes"):
            protocol.parse_header(bad, MAX)
    with pytest.raises(MessageTooLargeError):
        protocol.parse_header(header, 13)


@pytest.mark.parametrize("cut", [1, 5, 39, 40, 41, 60])
def test_truncated_message_in_decode(cut):
    wire = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"d" * 30, {"ANNO": b"x" * 10})
    assert len(wire) == 88
    with pytest.raises(ProtocolError, match="truncated"):
        protocol.decode(wire[:len(wire) - cut], MAX)


@pytest.mark.parametrize("extra", [b"x", b"PYRO", protocol.encode(protocol.MSG_PING, 0, 0, 0, b"")])
def test_trailing_data_in_decode(extra):
    wire = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"data")
    with pytest.raises(ProtocolError, match="%d bytes of trailing data" % len(extra)):
        protocol.decode(wire + extra, MAX)


def test_decode_of_nothing():
    with pytest.raises(ProtocolError, match="truncated"):
        protocol.decode(b"", MAX)


@pytest.mark.parametrize("annotations, message", [
    (b"ABCD\0", "truncated annotation chunk header"),
    (b"ABCD\0\0\0", "truncated annotation chunk header"),
    (b"ABCD\0\0\0\x01x" + b"EFG", "truncated annotation chunk header"),
    (b"ABCD\0\0\0\x64" + b"only", "exceeds"),
    (b"ABCD\xff\xff\xff\xff", "exceeds"),
    (b"AB\xffD\0\0\0\0", "not ASCII"),
    (b"\x80\x81\x82\x83\0\0\0\x01z", "not ASCII"),
])
def test_bad_annotation_chunks(annotations, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.parse_annotations(annotations)
    wire = raw_header(data_size=4, ann_size=len(annotations)) + annotations + b"data"
    with pytest.raises(ProtocolError, match=message):
        protocol.decode(wire, MAX)
    reader = protocol.MessageReader(MAX)
    reader.feed(wire)
    with pytest.raises(ProtocolError, match=message):
        reader.next_message()


def test_parse_annotations_valid():
    assert protocol.parse_annotations(b"") == {}
    chunk = b"ABCD\0\0\0\x02hiEMPT\0\0\0\0LAST\0\0\0\x01!"
    assert protocol.parse_annotations(chunk) == {"ABCD": b"hi", "EMPT": b"", "LAST": b"!"}
    assert protocol.parse_annotations(memoryview(chunk)) == {"ABCD": b"hi", "EMPT": b"", "LAST": b"!"}


@pytest.mark.parametrize("key", ["abc", "abcde", "", b"abcd", 1234, "\xe4bcd", "ab\u20acd"])
def test_encode_rejects_bad_annotation_ids(key):
    with pytest.raises(ProtocolError, match="annotation id"):
        protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"", {key: b"value"})


@pytest.mark.parametrize("value", ["text", 42, None, [1, 2]])
def test_encode_rejects_non_bytes_annotation_values(value):
    with pytest.raises(ProtocolError, match="must be bytes"):
        protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"", {"ANNO": value})


def test_encode_oversize_counts_annotations_too():
    protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"d" * 82, {"ANNO": b"a" * 10}, max_size=100)
    with pytest.raises(MessageTooLargeError, match="too large"):
        protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"d" * 83, {"ANNO": b"a" * 10}, max_size=100)
    with pytest.raises(MessageTooLargeError):
        protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"d" * 101, max_size=100)
    assert issubclass(MessageTooLargeError, ProtocolError)


def compressed_message(compressed_payload):
    return raw_header(msgtype=protocol.MSG_RESULT, flags=protocol.FLAGS_COMPRESSED,
                      data_size=len(compressed_payload)) + compressed_payload


def test_zlib_bomb_is_refused():
    bomb = zlib.compress(b"\0" * (20 * MAX), 9)
    assert len(bomb) < 30000                         # small on the wire ...
    with pytest.raises(MessageTooLargeError, match="decompressed"):
        protocol.decode(compressed_message(bomb), MAX)   # ... but would inflate to 20x max_size
    reader = protocol.MessageReader(MAX)
    reader.feed(compressed_message(bomb))
    with pytest.raises(MessageTooLargeError):
        reader.next_message()


def test_decompress_limit_is_exact():
    packed = zlib.compress(b"x" * 1000)
    assert protocol.decompress(packed, 1000) == b"x" * 1000
    with pytest.raises(MessageTooLargeError):
        protocol.decompress(packed, 999)


@pytest.mark.parametrize("payload", [b"this is not zlib data", b"\x78\x9c\xff\xff\xff", b"",
                                     zlib.compress(b"hello world" * 20)[:-6]])
def test_invalid_or_truncated_zlib_is_a_protocol_error(payload):
    with pytest.raises(ProtocolError, match="invalid compressed payload") as info:
        protocol.decode(compressed_message(payload), MAX)
    assert not isinstance(info.value, MessageTooLargeError)


# ---------------------------------------------------------------- large payloads kept apart from their header

def test_encode_without_join_keeps_a_large_payload_apart():
    payload = bytes(range(256)) * (protocol.LARGE_BODY // 256)
    parts = protocol.encode(protocol.MSG_RESULT, 0, 7, 4, payload, {"XTRA": b"abc"}, CORR, join=False)
    assert isinstance(parts, tuple) and len(parts) == 2
    assert parts[1] is payload  # not copied
    assert b"".join(parts) == protocol.encode(protocol.MSG_RESULT, 0, 7, 4, payload, {"XTRA": b"abc"}, CORR)
    msg = protocol.decode(b"".join(parts), 2 * protocol.LARGE_BODY)
    assert_same(msg, protocol.MSG_RESULT, protocol.FLAGS_CORR_ID, 7, 4, payload, {"XTRA": b"abc"}, CORR)


def test_encode_without_join_gives_small_messages_in_one_piece():
    joined = protocol.encode(protocol.MSG_RESULT, 0, 7, 4, b"small", join=False)
    assert joined == protocol.encode(protocol.MSG_RESULT, 0, 7, 4, b"small")
