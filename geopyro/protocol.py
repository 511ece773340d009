"""Pyro wire protocol version 502, without any I/O.

This module turns messages into bytes and bytes into messages. It never
touches a socket or gevent: callers feed it whatever bytes they received,
in chunks of any size, and take complete messages out. That keeps the rules
of the wire in one place that can be tested and fuzzed on its own.

A message is a 40-byte header, then zero or more annotation chunks, then the
payload. Header fields (big-endian ``!4sHBBHHII16sHH``): ``b"PYRO"``, protocol
version, message type, serializer id, flags, sequence number, payload length,
total annotations length, 16-byte correlation id, reserved, magic ``0x4dc5``.
An annotation chunk is a 4-letter ASCII id, a 4-byte length and the data.

Every malformed input raises ProtocolError (or its subclass
MessageTooLargeError) as soon as it can be detected, and a declared size is
checked against the limit before anything of that size is kept.
"""

import struct
import zlib

from .errors import MessageTooLargeError, ProtocolError

PROTOCOL_VERSION = 502

MSG_CONNECT = 1
MSG_CONNECTOK = 2
MSG_CONNECTFAIL = 3
MSG_INVOKE = 4
MSG_RESULT = 5
MSG_PING = 6
MESSAGE_TYPES = frozenset((MSG_CONNECT, MSG_CONNECTOK, MSG_CONNECTFAIL, MSG_INVOKE, MSG_RESULT, MSG_PING))

FLAGS_EXCEPTION = 1 << 0
FLAGS_COMPRESSED = 1 << 1
FLAGS_ONEWAY = 1 << 2
FLAGS_BATCH = 1 << 3
FLAGS_ITEMSTREAMRESULT = 1 << 4
FLAGS_KEEPSERIALIZED = 1 << 5
FLAGS_CORR_ID = 1 << 6

MAGIC = 0x4DC5
HEADER = struct.Struct("!4sHBBHHII16sHH")
HEADER_SIZE = HEADER.size  # 40
_header_size = HEADER_SIZE  # Pyro5's private name for it, which its tests and some tools read
_ANNOTATION_HEAD = struct.Struct("!4sI")
EMPTY_CORR_ID = b"\0" * 16
_TAG = b"PYRO"
_VERSION_BYTES = PROTOCOL_VERSION.to_bytes(2, "big")
_MAGIC_BYTES = MAGIC.to_bytes(2, "big")
_PREFIX = _TAG + _VERSION_BYTES
COMPRESSION_THRESHOLD = 100  # payloads at most this long are never compressed (as Pyro5)
LARGE_BODY = 1 << 20  # encode(join=False) leaves payloads from this size on apart from their header
VIEWED_PAYLOAD = 64 * 1024  # a reader hands payloads from this size on as views of what it received, not copies


class Message:
    """One protocol message: what was parsed off the wire, or what is about to be sent."""

    __slots__ = ("type", "flags", "seq", "serializer_id", "data", "annotations", "corr_id", "decoded",
                 "hmac_pending")

    def __init__(self, msgtype, flags, seq, serializer_id, data=b"", annotations=None, corr_id=EMPTY_CORR_ID):
        self.type = msgtype
        self.flags = flags
        self.seq = seq
        self.serializer_id = serializer_id
        self.data = data
        self.annotations = annotations if annotations is not None else {}
        self.corr_id = corr_id
        self.decoded = None  # a server's (ok, value) of deserializing data, once done (maybe on a thread)
        self.hmac_pending = None  # (protocol 48) the key a large message's signature is still to be checked with

    def __repr__(self):
        return "<Message type=%d flags=0x%x seq=%d serializer=%d size=%d annotations=%s>" % (
            self.type, self.flags, self.seq, self.serializer_id, len(self.data), sorted(self.annotations))


def encode(msgtype, flags, seq, serializer_id, data, annotations=None, corr_id=None,
           compress=False, max_size=None, join=True):
    """Return the bytes of one message, ready to send in a single write.

    ``annotations`` maps 4-letter ids to bytes. ``corr_id`` (16 bytes) sets the
    CORR_ID flag. With ``compress``, payloads over 100 bytes are zlib-compressed.
    With ``join=False`` a payload of LARGE_BODY bytes or more is not copied behind
    the header: the result is then a tuple (header and annotations, payload) to send in turn.
    """
    flags &= ~FLAGS_COMPRESSED
    if compress and len(data) > COMPRESSION_THRESHOLD:
        data = zlib.compress(data, 4)
        flags |= FLAGS_COMPRESSED
    chunks = []
    ann_size = 0
    if annotations:
        for key, value in annotations.items():
            if not isinstance(key, str) or len(key) != 4 or not key.isascii():
                raise ProtocolError("annotation id must be 4 ASCII characters, got %r" % (key,))
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise ProtocolError("annotation %r must be bytes, not %s" % (key, type(value).__name__))
            chunks.append(_ANNOTATION_HEAD.pack(key.encode("ascii"), len(value)))
            chunks.append(value)
            ann_size += 8 + len(value)
    if max_size is not None and ann_size + len(data) > max_size:
        raise MessageTooLargeError("message too large (%d bytes, max=%d)" % (ann_size + len(data), max_size))
    if corr_id:
        if not isinstance(corr_id, (bytes, bytearray, memoryview)) or len(corr_id) != 16:
            raise ProtocolError("correlation id must be 16 bytes, got %r" % (corr_id,))
        flags |= FLAGS_CORR_ID
    else:
        corr_id = EMPTY_CORR_ID
    header = HEADER.pack(_TAG, PROTOCOL_VERSION, msgtype, serializer_id, flags, seq & 0xFFFF,
                         len(data), ann_size, corr_id, 0, MAGIC)
    if not join and len(data) >= LARGE_BODY:
        return (b"".join([header] + chunks) if chunks else header), data
    if chunks:
        return b"".join([header] + chunks + [data])
    return header + data


def check_prefix(data):
    """Reject bytes that cannot be the start of a message, as early as possible."""
    n = len(data)
    if data[:min(n, 4)] != _TAG[:min(n, 4)]:
        raise ProtocolError("invalid data: not a Pyro message (bad tag)")
    if n >= 6 and data[4:6] != _VERSION_BYTES:
        raise ProtocolError("invalid protocol version %d (expected %d)" % (int.from_bytes(data[4:6], "big"),
                                                                           PROTOCOL_VERSION))


def parse_header(header, max_size):
    """Validate a 40-byte header; return (type, flags, seq, serializer_id, data_size, ann_size, corr_id)."""
    if not isinstance(header, (bytes, bytearray, memoryview)):
        raise TypeError("a message header is bytes, not %s" % type(header).__name__)
    if len(header) != HEADER_SIZE:
        raise ProtocolError("header must be %d bytes, got %d" % (HEADER_SIZE, len(header)))
    check_prefix(header)
    return _checked_header(header, max_size)


def _checked_header(buf, max_size):
    """Unpack and validate the header at the start of ``buf`` (its tag and version are already checked)."""
    (_, _, msgtype, serializer_id, flags, seq, data_size, ann_size, corr_id, _, magic) = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise ProtocolError("invalid magic number 0x%04x" % magic)
    if msgtype not in MESSAGE_TYPES:
        raise ProtocolError("unknown message type %d" % msgtype)
    if data_size + ann_size > max_size:
        raise MessageTooLargeError("message too large (%d bytes, max=%d)" % (data_size + ann_size, max_size))
    return msgtype, flags, seq, serializer_id, data_size, ann_size, corr_id


def check_type(msg, accepted_types):
    """Refuse a message of a type the receiver does not expect here (any type when none are given): a
    ProtocolError that carries the message as ``pyroMsg``, as Pyro5's does."""
    if accepted_types and msg.type not in accepted_types:
        exc = ProtocolError("invalid msg type %d received (expected: %s)"
                            % (msg.type, ",".join(str(t) for t in accepted_types)))
        exc.pyroMsg = msg
        raise exc


def parse_annotations(chunk, head=_ANNOTATION_HEAD):
    """Split the annotations part of a message into a dict of id -> bytes. ``head``: the struct of a chunk's
    id and length (4-byte lengths in 502; protocol48 passes its 2-byte one)."""
    result = {}
    view = memoryview(chunk)
    pos, end, head_size = 0, len(view), head.size
    while pos < end:
        if end - pos < head_size:
            raise ProtocolError("truncated annotation chunk header")
        key, length = head.unpack_from(view, pos)
        pos += head_size
        if length > end - pos:
            raise ProtocolError("annotation chunk length exceeds remaining data")
        try:
            name = key.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("annotation id is not ASCII: %r" % key) from None
        result[name] = bytes(view[pos:pos + length])
        pos += length
    return result


INFLATE_STEP = 1 << 20  # bytes inflated per step (what a message may cost beyond MAX_MESSAGE_SIZE)
INFLATE_AS_READ = 16 * 1024  # a server's reader inflates compressed bodies up to this size itself


def decompress(data, max_size):
    """Inflate a compressed payload, refusing to grow past ``max_size`` (no zip bombs).

    Inflated in steps into one growing buffer, so the peak is about
    ``max_size`` (zlib's one-shot output would be built in blocks and then
    joined: twice that).
    """
    inflater = zlib.decompressobj()
    out = bytearray()
    try:
        while True:
            room = max_size + 1 - len(out)
            chunk = inflater.decompress(data, min(INFLATE_STEP, room))
            out += chunk
            if len(out) > max_size:
                raise MessageTooLargeError("decompressed message larger than max=%d" % max_size)
            data = inflater.unconsumed_tail
            if not data and len(chunk) < min(INFLATE_STEP, room):
                break  # all input used and zlib had no more output to give
    except zlib.error as exc:
        raise ProtocolError("invalid compressed payload: %s" % exc) from None
    if not inflater.eof:
        raise ProtocolError("invalid compressed payload: truncated")
    return out


def inflate(msg, max_size):
    """Inflate ``msg``'s data in place if a reader left it compressed (see MessageReader's inflate_limit)."""
    if msg.flags & FLAGS_COMPRESSED:
        msg.data = decompress(msg.data, max_size)
        msg.flags &= ~FLAGS_COMPRESSED


class BufferedReader:
    """What the incremental readers of both protocols (502 here, 48 in protocol48) share: a buffer of received
    bytes and the parsed header of the message in progress, whose items 4 and 5 are its payload and
    annotations sizes."""

    __slots__ = ("max_size", "_buf", "_header", "_header_size")

    def __init__(self, max_size, header_size):
        self.max_size = max_size
        self._buf = bytearray()
        self._header = None
        self._header_size = header_size

    @property
    def buffered(self):
        """How many received bytes are waiting to become a message."""
        return len(self._buf)

    @property
    def in_message(self):
        """True when part of a message has arrived but not all of it."""
        return bool(self._buf)

    def bytes_needed(self):
        """How many more bytes complete the current message (at least 1)."""
        if self._header is None:
            return max(1, self._header_size - len(self._buf))
        total = self._header_size + self._header[4] + self._header[5]
        return max(1, total - len(self._buf))

    def _take_body(self, body_size):
        """Remove the current message from the buffer; return its annotations and payload as a memoryview.
        When the buffer holds just this message (as it does for a large one) it is handed over, not copied."""
        buf, header_size = self._buf, self._header_size
        if len(buf) == header_size + body_size:
            self._buf = bytearray()
            body = memoryview(buf)[header_size:]
        else:
            body = memoryview(bytes(buf[header_size:header_size + body_size]))
            del buf[:header_size + body_size]
        self._header = None
        return body


class MessageReader(BufferedReader):
    """Incremental parser: ``feed`` it bytes as they arrive, take complete messages with ``next_message``.

    The buffer only ever holds bytes that were actually received, so a header
    that declares a huge size costs nothing until the data really comes.
    """

    __slots__ = ("inflate_limit",)

    def __init__(self, max_size, inflate_limit=None):
        super().__init__(max_size, HEADER_SIZE)
        self.inflate_limit = inflate_limit  # larger compressed bodies stay compressed (flag kept): see inflate()

    def feed(self, data):
        """Add received bytes. Raises ProtocolError as soon as the bytes cannot be a message."""
        buf = self._buf
        buf += data
        if self._header is None and (len(buf) < HEADER_SIZE or buf[:6] != _PREFIX):
            check_prefix(buf)  # early: garbage is refused before a whole header has come

    def next_message(self):
        """Return the next complete Message, or None when more bytes are needed."""
        buf = self._buf
        header = self._header
        if header is None:
            if len(buf) < HEADER_SIZE:
                return None
            if buf[:6] != _PREFIX:
                check_prefix(buf)  # raises: this says what is wrong
            header = self._header = _checked_header(buf, self.max_size)
        msgtype, flags, seq, serializer_id, data_size, ann_size, corr_id = header
        body_size = ann_size + data_size
        if len(buf) < HEADER_SIZE + body_size:
            return None
        body = self._take_body(body_size)
        annotations = parse_annotations(body[:ann_size]) if ann_size else {}
        data = body[ann_size:] if ann_size else body
        if flags & FLAGS_COMPRESSED:
            if self.inflate_limit is None or len(data) <= self.inflate_limit:
                data = decompress(data, self.max_size)
                flags &= ~FLAGS_COMPRESSED
            # else a server inflates it later, where it does not hold up other clients
        else:
            data = bytes(data) if len(data) < VIEWED_PAYLOAD else data
        return Message(msgtype, flags, seq, serializer_id, data, annotations, corr_id)


def decode(data, max_size):
    """Parse exactly one complete message from ``data``; anything missing or left over is an error."""
    reader = MessageReader(max_size)
    reader.feed(data)
    msg = reader.next_message()
    if msg is None:
        raise ProtocolError("truncated message: %d more bytes expected" % reader.bytes_needed())
    if reader.buffered:
        raise ProtocolError("%d bytes of trailing data after the message" % reader.buffered)
    return msg


# --- Pyro5's message classes, for code that builds or reads messages with them --------------------------------

class SendingMessage:
    """A message to send, as Pyro5 makes it: ``data`` holds all its bytes. Compression, the size limit and
    the correlation id come from the global config and the call context, as in Pyro5."""

    def __init__(self, msgtype, flags, seq, serializer_id, payload, annotations=None):
        from . import config
        from .callcontext import current_context
        self.type, self.seq, self.serializer_id = msgtype, seq, serializer_id
        self.corr_id = current_context.correlation_bytes() or EMPTY_CORR_ID
        self.data = encode(msgtype, flags, seq, serializer_id, payload, annotations,
                           self.corr_id if self.corr_id != EMPTY_CORR_ID else None, config.COMPRESSION,
                           config.MAX_MESSAGE_SIZE)
        self.flags = HEADER.unpack_from(self.data)[4]

    def __repr__(self):
        return "<%s.%s at 0x%x; type=%d flags=%d seq=%d size=%d>" % (
            self.__module__, type(self).__name__, id(self), self.type, self.flags, self.seq, len(self.data))

    @staticmethod
    def ping(pyroConnection):
        """Send a PING on a connection and wait for its answer."""
        pyroConnection.send(SendingMessage(MSG_PING, 0, 0, 42, b"ping").data)
        recv_stub(pyroConnection, [MSG_PING])


class ReceivingMessage:
    """A received message, as Pyro5 reads it: made from its header, then given its payload."""

    def __init__(self, header, payload=None):
        from . import config
        (self.type, self.flags, self.seq, self.serializer_id, self.data_size, self.annotations_size,
         self.corr_id) = parse_header(header, config.MAX_MESSAGE_SIZE)
        self.data = None
        self.annotations = {}
        if payload is not None:
            self.add_payload(payload)

    def __repr__(self):
        return "<%s.%s at 0x%x; type=%d flags=%d seq=%d size=%d>" % (
            self.__module__, type(self).__name__, id(self), self.type, self.flags, self.seq, len(self.data or b""))

    @staticmethod
    def validate(data):
        """Raise if ``data`` cannot be the start of a message (ValueError below 4 bytes, as Pyro5)."""
        if len(data) < 4:
            raise ValueError("data must be at least 4 bytes to be able to identify")
        check_prefix(data)
        if len(data) >= HEADER_SIZE and bytes(data[38:40]) != _MAGIC_BYTES:
            raise ProtocolError("invalid magic number")

    def add_payload(self, payload):
        """The annotations and data that follow the header (inflated if compressed)."""
        if len(payload) != self.data_size + self.annotations_size:
            raise ProtocolError("payload length doesn't match message header")
        if self.annotations_size:
            payload = memoryview(payload)  # (as Pyro5) the data after the annotations is not copied
            self.annotations = parse_annotations(payload[:self.annotations_size])
            self.data = payload[self.annotations_size:]
        else:
            self.annotations = {}
            self.data = payload
        if self.flags & FLAGS_COMPRESSED:
            from . import config
            self.data = bytes(decompress(self.data, config.MAX_MESSAGE_SIZE))
            self.flags &= ~FLAGS_COMPRESSED
            self.data_size = len(self.data)


def recv_stub(connection, accepted_msgtypes=None):
    """Read one ReceivingMessage from a connection (anything with ``recv(size)``), as Pyro5 does."""
    header = connection.recv(6)
    ReceivingMessage.validate(header)
    header += connection.recv(HEADER_SIZE - 6)
    msg = ReceivingMessage(header)
    check_type(msg, accepted_msgtypes)
    msg.add_payload(connection.recv(msg.annotations_size + msg.data_size))
    return msg


def log_wiredata(logger, text, msg):
    """Log a message's fields and data at DEBUG level (Pyro5's LOGWIRE format)."""
    import uuid
    logger.debug("%s: msgtype=%d flags=0x%x ser=%d seq=%d num_annotations=%s corr_id=%s\ndata=%r", text, msg.type,
                 msg.flags, msg.serializer_id, msg.seq, len(getattr(msg, "annotations", ())),
                 uuid.UUID(bytes=bytes(getattr(msg, "corr_id", EMPTY_CORR_ID))), bytes(msg.data))
