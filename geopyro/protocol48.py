"""Pyro4's wire protocol (version 48), without any I/O, in geopyro's message vocabulary.

Pyro4 clients and servers speak protocol 48; Pyro5 and geopyro speak 502. Both
start with ``b"PYRO"`` and the version, so a server can tell them apart from
the first six bytes of a connection (``version_of``).

A 48 message is a 24-byte header, zero or more annotation chunks, then the
payload. Header fields (big-endian ``!4sHHHHiHHHH``): ``b"PYRO"``, version 48,
message type, flags, sequence number, payload length (signed), serializer id,
total annotations length, reserved, and a checksum: the sum of type, version,
payload length, annotations length, serializer id, flags, sequence number and
``0x34E9``, modulo 2**16. An annotation chunk is a 4-letter ASCII id, a
2-byte length and the data. The correlation id travels in a ``CORR`` chunk.
With an HMAC key, every message carries an ``HMAC`` chunk: HMAC-SHA1 over the
payload and then the other chunks' data in the order of their ids.

This module translates at the boundary, so that the rest of geopyro handles
one kind of ``protocol.Message``: message types are the same in both versions;
flags and serializer ids are not, and are mapped to their 502 meaning when
read and back when written (``FLAGS_META_ON_CONNECT``, which 502 lacks, gets a
bit 502 does not use); the ``CORR`` chunk becomes the message's ``corr_id``
(and stays among the annotations, where Pyro4's server code sees it).
Serializer ids become ``PYRO4_SERIALIZER_BASE`` + the 48 id: ids no 502 header
can carry (its field has one byte), under which geopyro registers serializers
that write Pyro's own objects in Pyro4's shapes (``serializers.py``). So a
reply's serializer id alone says that it goes out in protocol 48.

Every malformed input raises ProtocolError (or MessageTooLargeError) as soon
as it can be detected; a wrong or one-sided HMAC raises SecurityError with
Pyro4's own texts.
"""

import hashlib
import hmac
import struct

from . import protocol
from .errors import MessageTooLargeError, ProtocolError, SecurityError

PROTOCOL_VERSION = 48

HEADER = struct.Struct("!4sHHHHiHHHH")
HEADER_SIZE = HEADER.size  # 24
CHECKSUM_MAGIC = 0x34E9
_ANNOTATION_HEAD = struct.Struct("!4sH")
_TAG = b"PYRO"
_PREFIX = _TAG + PROTOCOL_VERSION.to_bytes(2, "big")
MAX_ANNOTATION_SIZE = 0xFFFF  # a chunk's length field has two bytes

# flags: 48's bit -> the 502 flag it means
FLAGS_META_ON_CONNECT = 1 << 8  # (48's bit 4) the CONNECTOK should carry the object's metadata; 502 has no such flag
_FLAGS_TO_502 = {
    1 << 0: protocol.FLAGS_EXCEPTION,
    1 << 1: protocol.FLAGS_COMPRESSED,
    1 << 2: protocol.FLAGS_ONEWAY,
    1 << 3: protocol.FLAGS_BATCH,
    1 << 4: FLAGS_META_ON_CONNECT,
    1 << 5: protocol.FLAGS_ITEMSTREAMRESULT,
    1 << 6: protocol.FLAGS_KEEPSERIALIZED,
}
_FLAGS_TO_48 = {ours: theirs for theirs, ours in _FLAGS_TO_502.items()}

# serializer ids: 48's id w <-> geopyro's PYRO4_SERIALIZER_BASE + w
SERIALIZER_NAMES = {1: "serpent", 2: "json", 3: "marshal", 4: "pickle", 5: "dill", 6: "msgpack", 7: "cloudpickle"}
SERIALIZER_IDS = {name: wire_id for wire_id, name in SERIALIZER_NAMES.items()}
PYRO4_SERIALIZER_BASE = 256


def version_of(data):
    """48 or 502 when ``data`` (the first bytes of a connection, at least 6) starts a message of that
    version; None when it is too short to tell. Anything else raises ProtocolError."""
    if len(data) < 6:
        protocol.check_prefix(data)  # garbage is refused at once
        return None
    if bytes(data[:6]) == _PREFIX:
        return PROTOCOL_VERSION
    protocol.check_prefix(data)  # raises unless it is a 502 prefix
    return protocol.PROTOCOL_VERSION


def _map_flags(flags, table):
    mapped = 0
    for bit, meaning in table.items():
        if flags & bit:
            mapped |= meaning
    return mapped


def serializer_id_from_48(wire_id):
    """geopyro's id for the serializer a 48 message names."""
    return PYRO4_SERIALIZER_BASE + wire_id


def serializer_id_to_48(serializer_id):
    """The 48 id of one of geopyro's Pyro4 serializer ids."""
    if PYRO4_SERIALIZER_BASE <= serializer_id <= PYRO4_SERIALIZER_BASE + 0xFFFF:
        return serializer_id - PYRO4_SERIALIZER_BASE
    raise ProtocolError("serializer id %d is not one of Pyro4's" % serializer_id)


def is_pyro4_serializer(serializer_id):
    """True if ``serializer_id`` is one of geopyro's Pyro4 ids: a message with it goes out in protocol 48."""
    return serializer_id >= PYRO4_SERIALIZER_BASE


def checksum(msgtype, flags, seq, serializer_id, data_size, ann_size):
    """The header checksum of these wire values (48 flags and serializer id): their sum plus the version and
    ``CHECKSUM_MAGIC``, modulo 2**16."""
    return (msgtype + PROTOCOL_VERSION + data_size + ann_size + serializer_id + flags + seq + CHECKSUM_MAGIC) & 0xFFFF


def message_hmac(key, data, annotations):
    """Pyro4's HMAC of a message: SHA1 over the payload, then every other chunk's data by id."""
    mac = hmac.new(key, data, digestmod=hashlib.sha1)
    for name in sorted(annotations):
        if name != "HMAC":
            mac.update(annotations[name])
    return mac.digest()


def encode(msgtype, flags, seq, serializer_id, data, annotations=None, corr_id=None, hmac_key=None,
           max_size=None):
    """Return the bytes of one 48 message. ``flags`` are geopyro's (502) values, ``serializer_id`` one of
    its Pyro4 ids; ``corr_id`` (16 bytes) goes in a CORR chunk; with ``hmac_key`` an HMAC chunk is added
    last."""
    annotations = dict(annotations or {})
    annotations.pop("HMAC", None)
    if corr_id:
        if len(corr_id) != 16:
            raise ProtocolError("correlation id must be 16 bytes, got %r" % (corr_id,))
        annotations["CORR"] = bytes(corr_id)
    if hmac_key:
        annotations["HMAC"] = message_hmac(hmac_key, data, annotations)
    chunks = []
    for key, value in annotations.items():
        if not isinstance(key, str) or len(key) != 4 or not key.isascii():
            raise ProtocolError("annotation id must be 4 ASCII characters, got %r" % (key,))
        if len(value) > MAX_ANNOTATION_SIZE:
            raise ProtocolError("annotation %r is too long for protocol 48 (%d bytes, max %d)"
                                % (key, len(value), MAX_ANNOTATION_SIZE))
        chunks.append(_ANNOTATION_HEAD.pack(key.encode("ascii"), len(value)))
        chunks.append(bytes(value))
    ann_size = sum(len(chunk) for chunk in chunks)
    if len(data) > 0x7FFFFFFF:
        raise MessageTooLargeError("message too large for protocol 48 (%d bytes)" % len(data))
    if max_size is not None and ann_size + len(data) > max_size:
        raise MessageTooLargeError("message too large (%d bytes, max=%d)" % (ann_size + len(data), max_size))
    wire_flags = _map_flags(flags, _FLAGS_TO_48)
    wire_serializer = serializer_id_to_48(serializer_id)
    seq &= 0xFFFF
    header = HEADER.pack(_TAG, PROTOCOL_VERSION, msgtype, wire_flags, seq, len(data), wire_serializer, ann_size, 0,
                         checksum(msgtype, wire_flags, seq, wire_serializer, len(data), ann_size))
    return b"".join([header] + chunks + [bytes(data)])


def parse_annotations(chunk):
    """Split the annotations part of a 48 message into a dict of id -> bytes."""
    return protocol.parse_annotations(chunk, _ANNOTATION_HEAD)


class MessageReader48(protocol.BufferedReader):
    """Incremental parser of 48 messages: ``feed`` it bytes, take ``protocol.Message`` objects (in geopyro's
    vocabulary) from ``next_message``. ``hmac_key``: the key every message must be signed with (None: none
    may be signed, as Pyro4 requires). With ``defer_large_hmac`` (a server's reader) the signature of a
    payload of DEFERRED_HMAC_FROM bytes or more is left in ``msg.hmac_pending`` for ``verify`` to check
    where hashing it holds up nobody; whoever reads such a message must call it before trusting the data."""

    __slots__ = ("hmac_key", "defer_large_hmac")

    def __init__(self, max_size, hmac_key=None, defer_large_hmac=False):
        super().__init__(max_size, HEADER_SIZE)
        self.hmac_key = hmac_key
        self.defer_large_hmac = defer_large_hmac

    def feed(self, data):
        """Add received bytes. Raises ProtocolError as soon as the buffer cannot start a 48 message."""
        buf = self._buf
        buf += data
        if self._header is None and buf[:len(_PREFIX)] != _PREFIX[:len(buf)]:
            raise ProtocolError("invalid data or unsupported protocol version")

    def _parse_header(self):
        _, _, msgtype, flags, seq, data_size, serializer_id, ann_size, _, check = HEADER.unpack_from(self._buf)
        if check != checksum(msgtype, flags, seq, serializer_id, data_size, ann_size):
            raise ProtocolError("header checksum mismatch")
        if msgtype not in protocol.MESSAGE_TYPES:
            raise ProtocolError("unknown message type %d" % msgtype)
        if data_size < 0:
            raise ProtocolError("invalid message size %d" % data_size)
        if data_size + ann_size > self.max_size:
            raise MessageTooLargeError("max message size exceeded (%d where max=%d)"
                                       % (data_size + ann_size, self.max_size))
        return msgtype, flags, seq, serializer_id, data_size, ann_size

    def next_message(self):
        """The next complete message, or None when more bytes are needed."""
        buf = self._buf
        if self._header is None:
            if len(buf) < HEADER_SIZE:
                return None
            if buf[:len(_PREFIX)] != _PREFIX:  # (a message that follows another in the buffer was not checked)
                raise ProtocolError("invalid data or unsupported protocol version")
            self._header = self._parse_header()
        msgtype, flags, seq, serializer_id, data_size, ann_size = self._header
        if len(buf) < HEADER_SIZE + ann_size + data_size:
            return None
        body = self._take_body(ann_size + data_size)
        annotations = parse_annotations(body[:ann_size]) if ann_size else {}
        data = body[ann_size:]
        if data_size < protocol.VIEWED_PAYLOAD:
            data = bytes(data)
        corr_id = annotations.get("CORR")
        mapped_flags = _map_flags(flags, _FLAGS_TO_502)
        if corr_id is not None and len(corr_id) == 16:
            mapped_flags |= protocol.FLAGS_CORR_ID
        else:
            corr_id = protocol.EMPTY_CORR_ID
        msg = protocol.Message(msgtype, mapped_flags, seq, serializer_id_from_48(serializer_id), data, annotations,
                               corr_id)
        signature = annotations.get("HMAC")
        if (signature is not None) != bool(self.hmac_key):
            raise SecurityError("hmac key config not symmetric")
        if signature is not None:
            msg.hmac_pending = self.hmac_key
            if not (self.defer_large_hmac and data_size >= DEFERRED_HMAC_FROM):
                verify(msg)
        return msg


DEFERRED_HMAC_FROM = protocol.VIEWED_PAYLOAD  # see MessageReader48's defer_large_hmac


def verify(msg):
    """Check the signature a reader left pending on ``msg`` (SecurityError if it is wrong). Hashing releases
    the GIL, so a pool thread may do it for a large message."""
    key, msg.hmac_pending = msg.hmac_pending, None
    if key and not hmac.compare_digest(msg.annotations["HMAC"], message_hmac(key, msg.data, msg.annotations)):
        raise SecurityError("message hmac mismatch")
