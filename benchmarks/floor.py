"""A FLOOR, not a product: the least work Python + gevent + serpent can do for one Pyro call.

This is a minimal Pyro wire protocol 502 echo server and a minimal blocking-socket client,
written from the protocol facts alone (it does not import geopyro or Pyro5), so that the
sequential benchmark (benchmarks/sequential.py) can show how far each real client and server
is from the fastest a Python program on this machine can answer ``echo("hello")``.

What it keeps of Pyro: the 40-byte header (``!4sHBBHHII16sHH``: b"PYRO", version 502, message
type, serializer id, flags, sequence number, payload size, annotations size, 16-byte
correlation id, reserved, magic 0x4dc5), the CONNECT handshake a real proxy sends first (its
CONNECTOK carries the object's metadata, so real Pyro5 and geopyro proxies bind to it), and
INVOKE answered by RESULT with the caller's sequence number. Payloads are serpent (id 1) or
msgpack (id 4): the call tuple ``(object, method, args, kwargs)`` is really deserialized and the
result really serialized on every call. Everything else is left out on purpose: no object
registry, no exposure checks, no exceptions sent back, no annotations answered, no oneway
bookkeeping, no timeouts. Do not use it for anything but measuring.

"Floor" means least work per call, not least CPU whatever the code: it calls serpent's own
``loads``/``dumps``, while geopyro reads and writes plain serpent data through its own fast path
(geopyro/serpent_fastpath.py), which costs less than serpent itself. So on serpent rows a geopyro
side may come close to, or below, this floor's side; on msgpack rows (C on every side) it may not.

The server offers two methods: ``echo(x)`` and ``cpu()``, the server process's CPU seconds
(``time.process_time()``), which the benchmark reads before and after each measured slice.

    python -m benchmarks.floor            # serve on 127.0.0.1, print "URI PYRO:obj@host:port"
"""

import argparse
import socket
import struct
import sys
import time

import msgpack
import serpent

HEADER = struct.Struct("!4sHBBHHII16sHH")
HEADER_SIZE = HEADER.size  # 40
VERSION = 502
MAGIC = 0x4DC5
CONNECT, CONNECTOK, CONNECTFAIL, INVOKE, RESULT, PING = 1, 2, 3, 4, 5, 6
FLAGS_ONEWAY = 1 << 2
NO_CORR_ID = b"\0" * 16
OBJECT_ID = "bench"
RECV_SIZE = 65536


def _serpent_dumps(value):
    return serpent.dumps(value, module_in_classname=True)


def _msgpack_loads(data):
    return msgpack.unpackb(data, raw=False)


def _msgpack_dumps(value):
    return msgpack.packb(value, use_bin_type=True)


# serializer id -> (loads, dumps); the ids are fixed by the protocol
SERIALIZERS = {1: (serpent.loads, _serpent_dumps), 4: (_msgpack_loads, _msgpack_dumps)}
SERIALIZER_IDS = {"serpent": 1, "msgpack": 4}
METHODS = {"echo": lambda value: value, "cpu": time.process_time}
METADATA = {"methods": sorted(METHODS), "oneway": [], "attrs": []}


def pack(msgtype, seq, serializer_id, data):
    """One message without annotations and without correlation id: header + payload."""
    return HEADER.pack(b"PYRO", VERSION, msgtype, serializer_id, 0, seq, len(data), 0, NO_CORR_ID, 0, MAGIC) + data


def split_message(buf):
    """(msgtype, flags, seq, serializer_id, payload, rest) when ``buf`` holds a whole message, else None."""
    if len(buf) < HEADER_SIZE:
        return None
    tag, version, msgtype, ser_id, flags, seq, size, ann_size, _, _, magic = HEADER.unpack_from(buf)
    if tag != b"PYRO" or version != VERSION or magic != MAGIC:
        raise ValueError("not a Pyro 502 message")
    end = HEADER_SIZE + ann_size + size
    if len(buf) < end:
        return None
    return msgtype, flags, seq, ser_id, bytes(buf[HEADER_SIZE + ann_size:end]), buf[end:]


def read_message(sock, buf):
    """Receive until ``buf`` holds a whole message; one recv per message when it comes in one piece."""
    while True:
        parsed = split_message(buf)
        if parsed is not None:
            return parsed
        chunk = sock.recv(RECV_SIZE)
        if not chunk:
            raise EOFError("peer closed the connection")
        buf = buf + chunk if buf else chunk


# --- the server: gevent StreamServer, one greenlet per connection --------------------------------

def answer(msgtype, flags, seq, ser_id, payload):
    """The bytes to send back for one request, or None (oneway)."""
    loads, dumps = SERIALIZERS[ser_id]
    if msgtype == INVOKE:
        _, method, args, kwargs = loads(payload)
        result = METHODS[method](*args, **(kwargs or {}))
        return None if flags & FLAGS_ONEWAY else pack(RESULT, seq, ser_id, dumps(result))
    if msgtype == CONNECT:
        return pack(CONNECTOK, seq, ser_id, dumps({"handshake": "hello", "meta": METADATA}))
    if msgtype == PING:
        return pack(PING, seq, ser_id, b"pong")
    raise ValueError("unexpected message type %d" % msgtype)


def handle(sock, address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            msgtype, flags, seq, ser_id, payload, buf = read_message(sock, buf)
            reply = answer(msgtype, flags, seq, ser_id, payload)
            if reply is not None:
                sock.sendall(reply)
    except (EOFError, OSError, ValueError, KeyError):
        return  # a floor: any surprise ends the connection
    finally:
        sock.close()


def serve(host="127.0.0.1", port=0, ready=None):
    """Serve forever; ``ready(uri)`` is called once it listens."""
    from gevent.server import StreamServer
    server = StreamServer((host, port), handle)
    server.start()
    uri = "PYRO:%s@%s:%d" % (OBJECT_ID, host, server.server_port)
    if ready:
        ready(uri)
    server.serve_forever()


# --- the client: one plain blocking socket -------------------------------------------------------

class FloorClient:
    """Calls methods over one blocking socket, one call at a time; does the CONNECT handshake first."""

    def __init__(self, uri, serializer="serpent"):
        location = uri.split("@", 1)[1]
        host, port = location.rsplit(":", 1)
        self.ser_id = SERIALIZER_IDS[serializer]
        self.loads, self.dumps = SERIALIZERS[self.ser_id]
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seq = 0
        reply = self._roundtrip(CONNECT, {"handshake": "hello", "object": OBJECT_ID}, CONNECTOK)
        if METADATA["methods"][0] not in reply["meta"]["methods"]:
            raise RuntimeError("floor server metadata: %r" % (reply,))

    def _roundtrip(self, msgtype, value, expected):
        self.seq = (self.seq + 1) & 0xFFFF
        self.sock.sendall(pack(msgtype, self.seq, self.ser_id, self.dumps(value)))
        got_type, _, seq, _, payload, rest = read_message(self.sock, b"")
        if got_type != expected or seq != self.seq or rest:
            raise RuntimeError("floor client: unexpected reply type %d seq %d" % (got_type, seq))
        return self.loads(payload)

    def call(self, method, *args):
        return self._roundtrip(INVOKE, (OBJECT_ID, method, args, {}), RESULT)

    def echo(self, value):
        return self.call("echo", value)

    def cpu(self):
        return self.call("cpu")

    def close(self):
        self.sock.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="the FLOOR echo server (not a product; see the docstring)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    from benchmarks import common  # only for die_with_parent (it imports no geopyro)
    common.die_with_parent()
    serve(args.host, args.port, ready=lambda uri: print("URI %s" % uri, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
