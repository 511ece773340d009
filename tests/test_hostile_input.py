"""Hostile and broken input against a live daemon in a subprocess, on both server types.

Every test runs a well-behaved client (``Watchdog``) beside the attack and checks that it is served
throughout. Each hostile connection must end with an error reply or a close by the server; the server
process must stay alive and small. ``GEOPYRO_SOAK=1`` runs 20x the random and mutated inputs.
"""

import os
import random
import resource
import socket
import struct
import threading
import zlib

import pytest

from certs import RawClient, ServerProcess, Watchdog
from geopyro import protocol, serializers
from support import wait_until

SERIALIZER_IDS = sorted(serializers.serializers_by_id)  # 1..4
SMALL_LIMIT = 8 * 1024 * 1024  # MAX_MESSAGE_SIZE of the server that gets the zlib bombs
SOAK = os.environ.get("GEOPYRO_SOAK") == "1"  # the long form: 20x the fuzzed inputs
RANDOM_INPUTS = 3000 if SOAK else 150
MUTATIONS = 6000 if SOAK else 300
SLOW_CLIENTS = 1000
SILENT_CLIENTS = 1000


def ensure_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs" % (hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.fixture
def server(tmp_path, servertype):
    """A daemon subprocess of the parametrized type; the attacks use short COMMTIMEOUT/POLLTIMEOUT."""
    with ServerProcess(tmp_path, {"SERVERTYPE": servertype, "COMMTIMEOUT": 2.0, "POLLTIMEOUT": 0.5},
                       nofile=SLOW_CLIENTS + SILENT_CLIENTS + 500) as proc:
        yield proc
        assert proc.alive, "the server died; stderr:\n" + proc.stderr()[-4000:]


@pytest.fixture
def watchdog(server):
    dog = Watchdog(server.info["service"]).start()
    yield dog
    dog.stop()


def raw_header(msgtype=protocol.MSG_INVOKE, serializer_id=1, flags=0, data_size=0, ann_size=0, tag=b"PYRO",
               version=protocol.PROTOCOL_VERSION, magic=protocol.MAGIC, seq=1):
    return struct.pack("!4sHBBHHII16sHH", tag, version, msgtype, serializer_id, flags, seq, data_size, ann_size,
                       b"\0" * 16, 0, magic)


def connect_message(serializer_id=1):
    payload = serializers.serializers_by_id[serializer_id].dumps({"handshake": "hi", "object": "service"})
    return protocol.encode(protocol.MSG_CONNECT, 0, 0, serializer_id, payload)


def invoke_message(method="echo", vargs=(1,), serializer_id=1, obj="service", flags=0):
    payload = serializers.serializers_by_id[serializer_id].dumpsCall(obj, method, list(vargs), {})
    return protocol.encode(protocol.MSG_INVOKE, flags, 1, serializer_id, payload)


def outcome(location, data, handshake=True, half_close=True, timeout=15.0):
    """Send ``data`` on a fresh connection (after a CONNECT if asked) and classify what the server does.

    Returns "error-reply" (an exception result or CONNECTFAIL, then anything), "closed" (no reply, closed),
    or "result" (a normal reply: the mutation happened to be a valid call). The server always ends the
    connection after the client half-closes, so every case terminates.
    """
    with RawClient(location, timeout=timeout) as client:
        if handshake:
            client.connect("service")
        try:
            client.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return "closed"
        if half_close:
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # already closed by the server: receive() sees it
        try:
            replies = []
            while True:
                msg = client.receive()
                if msg is None:
                    break
                replies.append(msg)
        except protocol.ProtocolError as exc:
            pytest.fail("server sent bytes that are not a valid message: %s" % exc)
        except socket.timeout:
            pytest.fail("the server neither answered nor closed the connection")
    if not replies:
        return "closed"
    first = replies[0]
    if first.type == protocol.MSG_CONNECTFAIL or first.flags & protocol.FLAGS_EXCEPTION:
        return "error-reply"
    return "result"


def stats(location):
    """The server's health report, over a fresh connection (an idle one would be reclaimed by COMMTIMEOUT)."""
    with RawClient(location) as probe:
        probe.connect("service")
        failed, result = probe.call("service", "stats")
        assert not failed, result
        return result


def error_text(location, data):
    """The exception the server replies with to one INVOKE (after a good CONNECT)."""
    with RawClient(location) as client:
        client.connect("service")
        client.send(data)
        msg = client.receive()
        assert msg is not None, "the server closed instead of replying"
        assert msg.flags & protocol.FLAGS_EXCEPTION, "expected an error reply, got %r" % msg
        sid = msg.serializer_id
        return repr(serializers.serializers_by_id[sid].loads(msg.data))


# --- malformed framing ---

FRAMING_CASES = {
    "bad tag": raw_header(tag=b"PYRX"),
    "http request": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "bad magic": raw_header(magic=0x1234),
    "old version 4.x": raw_header(version=48),
    "newer version": raw_header(version=503),
    "unknown msg type": raw_header(msgtype=99),
    "RESULT sent to a server": protocol.encode(protocol.MSG_RESULT, 0, 1, 1, b"'x'"),
    "CONNECTOK sent to a server": protocol.encode(protocol.MSG_CONNECTOK, 0, 1, 1, b"{}"),
    "second CONNECT": connect_message(),
    "declared 4 GiB": raw_header(data_size=0xFFFFFFFF),
    "declared annotations 4 GiB": raw_header(ann_size=0xFFFFFFFF),
    "declared data+annotations over the limit": raw_header(data_size=0x80000000, ann_size=0x80000000),
    "truncated body": raw_header(data_size=100) + b"x" * 10,
    "truncated header": raw_header()[:25],
    "annotation shorter than its header": raw_header(ann_size=5, data_size=0) + b"ABCDE",
    "annotation length past the end": raw_header(ann_size=12) + b"CORR" + struct.pack("!I", 1000) + b"abcd",
    "annotation id not ascii": raw_header(ann_size=9) + b"\xff\xfe\xfd\xfc" + struct.pack("!I", 1) + b"x",
    "compressed flag, not zlib": raw_header(flags=protocol.FLAGS_COMPRESSED, data_size=20) + b"z" * 20,
    "compressed flag, truncated zlib": raw_header(flags=protocol.FLAGS_COMPRESSED, data_size=10)
    + zlib.compress(b"('service','echo',[1],{})")[:10],
}


def test_malformed_framing_is_refused(server, watchdog):
    for case in sorted(FRAMING_CASES):
        for handshake in (True,) if case == "second CONNECT" else (True, False):
            assert outcome(server.location, FRAMING_CASES[case], handshake) in ("closed", "error-reply"), case
        watchdog.progressing()


def test_invoke_before_connect_is_refused(server, watchdog):
    assert outcome(server.location, invoke_message(), handshake=False) in ("closed", "error-reply")
    watchdog.progressing()


# --- well-framed messages whose content is wrong ---

def test_unknown_serializer_ids(server, watchdog):
    for sid in (0, 5, 6, 7, 99, 255):
        for handshake in (True, False):
            data = protocol.encode(protocol.MSG_CONNECT if not handshake else protocol.MSG_INVOKE, 0, 1, sid,
                                   b"('service','echo',[1],{})")
            assert outcome(server.location, data, handshake) in ("closed", "error-reply"), sid
    with RawClient(server.location) as client:  # a CONNECT with an unknown serializer: CONNECTFAIL, readable
        client.send(protocol.encode(protocol.MSG_CONNECT, 0, 0, 42, b"whatever"))
        msg = client.receive()
        assert msg.type == protocol.MSG_CONNECTFAIL
        assert "unknown serializer id 42" in serializers.serializers_by_id[msg.serializer_id].loads(msg.data)
    watchdog.progressing()


UNDESERIALIZABLE = {
    1: [b"", b"(", b"import os", b"__import__('os').system('true')", b"\xff\xfe", b"lambda: 1", b"[1,2" * 50],
    2: [b"", b"\x00", b"\xff" * 10, b"c" + b"\0" * 20, b"[\x05\x00\x00\x00"],
    3: [b"", b"{", b"\xff", b'{"a": 1}', b"[1, 2, 3, 4, 5]", b'"just a string"'],
    4: [b"", b"\xc1", b"\x94", b"\xdd\xff\xff\xff\xff", b"\xc7\x05\x30abc"],
}


def test_payloads_that_do_not_deserialize(server, watchdog):
    tried = 0
    for sid, payloads in UNDESERIALIZABLE.items():
        for payload in payloads:
            data = protocol.encode(protocol.MSG_INVOKE, 0, 1, sid, payload)
            assert outcome(server.location, data) == "error-reply", (sid, payload)
            tried += 1
    watchdog.progressing()
    assert tried >= 20


WRONG_TYPES = [
    ("service", "echo"),  # not 4 elements
    ("service", "echo", [1], {}, "extra"),
    (42, "echo", [1], {}),  # object id not a string
    ("service", 42, [1], {}),  # method not a string
    ("service", None, [1], {}),
    ("service", "echo", {"a": 1}, {}),  # vargs not a sequence
    ("service", "echo", [1], [1, 2]),  # kwargs not a dict
    ("service", "echo", [], {"value": 1, "extra": 2}),  # wrong arguments
    ("service", "echo", [1, 2, 3], {}),
    ("no such object", "echo", [1], {}),
    ("service", "no_such_method", [], {}),
    ("Pyro.Daemon", "get_next_stream_item", [["unhashable"]], {}),
    ("Pyro.Daemon", "get_metadata", [{"a": 1}], {}),
]


def test_wrong_types_in_the_call(server, watchdog):
    for sid in SERIALIZER_IDS:
        serializer = serializers.serializers_by_id[sid]
        for call in WRONG_TYPES:
            if sid == 3 and len(call) == 4:  # json calls are dicts
                call = dict(zip(["object", "method", "params", "kwargs"], call))
            data = protocol.encode(protocol.MSG_INVOKE, 0, 1, sid, serializer.dumps(call if sid == 3 else list(call)))
            assert outcome(server.location, data) == "error-reply", (sid, call)
        watchdog.progressing()


def nested(depth, sid):
    if sid == 1:
        return b"('service','echo',[" + b"[" * depth + b"]" * depth + b"],{})"
    if sid == 3:
        return b'{"object":"service","method":"echo","params":[' + b"[" * depth + b"]" * depth + b'],"kwargs":{}}'
    if sid == 4:
        return b"\x94\xa7service\xa4echo\x91" + b"\x91" * depth + b"\x90" + b"\x80"
    # marshal: a list holding a list holding ... built by hand (marshal.dumps itself refuses this depth)
    return b"\xa9\x04\xda\x07service\xda\x04echo[\x01\x00\x00\x00" + b"[\x01\x00\x00\x00" * depth + \
        b"[\x00\x00\x00\x00{0"


def test_deeply_nested_data(server, watchdog):
    for sid in SERIALIZER_IDS:
        for depth in (500, 5000, 200000):
            data = protocol.encode(protocol.MSG_INVOKE, 0, 1, sid, nested(depth, sid))
            assert outcome(server.location, data) in ("error-reply", "result"), (sid, depth)
            watchdog.progressing()
        deep = protocol.encode(protocol.MSG_INVOKE, 0, 1, sid, nested(200000, sid))
        assert outcome(server.location, deep) == "error-reply", sid


# --- fuzzing over real sockets ---

def test_random_bytes(server, watchdog):
    rng = random.Random(502)
    seen = {}
    for number in range(RANDOM_INPUTS):
        size = rng.choice([1, 7, 39, 40, 41, 100, 1000, 70000])
        blob = bytes(rng.getrandbits(8) for _ in range(size)) if size < 2000 else os.urandom(size)
        if number % 3 == 0:
            blob = b"PYRO" + struct.pack("!H", protocol.PROTOCOL_VERSION) + blob  # get past the first checks
        result = outcome(server.location, blob, handshake=number % 2 == 0)
        assert result in ("closed", "error-reply")
        seen[result] = seen.get(result, 0) + 1
        if number % 25 == 0:
            watchdog.progressing()
    assert sum(seen.values()) == RANDOM_INPUTS


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        elif op == 1:
            del data[rng.randrange(len(data) + 1):]
        elif op == 2:
            data += os.urandom(rng.randint(1, 60))
        elif op == 3 and len(data) >= 20:
            offset = rng.choice([12, 16])
            data[offset:offset + 4] = struct.pack("!I", rng.choice([0, 1, 39, 1000, 0xFFFFFFFF,
                                                                    rng.getrandbits(32)]))
        elif op == 4 and len(data) >= 40:
            position = rng.randint(40, len(data))
            data[position:position] = os.urandom(rng.randint(1, 16))
        elif op == 5 and len(data) >= 10:
            data[7] = rng.getrandbits(8)  # serializer id
    return bytes(data)


def test_mutated_messages(server, watchdog):
    results = {}
    for sid in SERIALIZER_IDS:
        mutate_for(server, watchdog, sid, results)
    assert set(results) <= {"closed", "error-reply", "result"}
    assert sum(results.values()) == MUTATIONS // len(SERIALIZER_IDS) * len(SERIALIZER_IDS)


def peak_rss_kib(server):
    with open("/proc/%d/status" % server.proc.pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_marshal_declared_element_counts_allocate_nothing(server, watchdog):
    before = peak_rss_kib(server)
    for container in (b"(", b"["):  # TYPE_TUPLE, TYPE_LIST with 16M elements declared, none sent
        data = protocol.encode(protocol.MSG_INVOKE, 0, 1, serializers.MarshalSerializer.serializer_id,
                               container + struct.pack("<I", 0x01000000))
        assert outcome(server.location, data) == "error-reply"
        watchdog.progressing()
    growth_mib = (peak_rss_kib(server) - before) / 1024
    assert growth_mib < 64, "a 45-byte message raised the server's peak RSS by %.0f MiB" % growth_mib


def mutate_for(server, watchdog, sid, results):
    rng = random.Random(sid)
    seeds = [invoke_message("echo", ["text", 1.5, [1, 2], {"k": "v" * 200}], sid),
             invoke_message("get_metadata", ["service"], sid, obj="Pyro.Daemon"),
             protocol.encode(protocol.MSG_INVOKE, 0, 1, sid,
                             serializers.serializers_by_id[sid].dumpsCall("service", "echo", [1], {}),
                             {"CORR": b"x" * 16, "XTRA": b"y" * 30}, compress=False),
             protocol.encode(protocol.MSG_INVOKE, 0, 1, sid,
                             serializers.serializers_by_id[sid].dumpsCall("service", "echo", ["z" * 500], {}),
                             compress=True),
             connect_message(sid)]
    for number in range(MUTATIONS // len(SERIALIZER_IDS)):
        data = mutate(rng, rng.choice(seeds))
        result = outcome(server.location, data, handshake=number % 4 != 0)
        results[result] = results.get(result, 0) + 1
        if number % 25 == 0:
            watchdog.progressing()


# --- sizes: declared, compressed ---

def test_declared_900_mb_message_allocates_nothing(server, watchdog):
    """A client declares a 900 MB message (under the 1 GiB default limit), sends 1 MB of it and stalls."""
    before = server.rss_kib()
    clients = []
    for _ in range(4):
        client = RawClient(server.location)
        client.connect("service")
        client.send(raw_header(data_size=900 * 1024 * 1024) + b"\0" * (1024 * 1024))
        clients.append(client)
    watchdog.progressing()
    during = server.rss_kib()
    for client in clients:  # the server drops each stalled sender after COMMTIMEOUT
        assert client.closed_by_server()
        client.close()
    watchdog.progressing()
    after = server.rss_kib()
    growth_mib = (max(during, after) - before) / 1024
    print("900 MB declared x4: server RSS %d -> %d -> %d KiB" % (before, during, after))
    assert growth_mib < 64, "server RSS grew %.1f MiB" % growth_mib


@pytest.fixture(scope="module")
def zlib_bomb():
    """About 64 KB of zlib that inflates to 64 MiB of zeros (8x the small server's limit)."""
    compressor = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    return b"".join([compressor.compress(block) for _ in range(64)] + [compressor.flush()])


def test_zlib_bombs(tmp_path, servertype, zlib_bomb):
    config = {"SERVERTYPE": servertype, "COMMTIMEOUT": 2.0, "MAX_MESSAGE_SIZE": SMALL_LIMIT}
    with ServerProcess(tmp_path, config, tracemalloc=True) as server:
        dog = Watchdog(server.info["service"]).start()
        with RawClient(server.location) as probe:
            probe.connect("Pyro.Daemon")
            probe.call("service", "reset_peak")
        before = server.rss_kib()
        for flags in (protocol.FLAGS_COMPRESSED, protocol.FLAGS_COMPRESSED | protocol.FLAGS_ONEWAY):
            for sid in SERIALIZER_IDS:
                data = raw_header(flags=flags, serializer_id=sid, data_size=len(zlib_bomb)) + zlib_bomb
                assert outcome(server.location, data) in ("closed", "error-reply")
                dog.progressing()
        # a bomb inside the annotations of a message that is otherwise fine
        ann = b"BOMB" + struct.pack("!I", len(zlib_bomb)) + zlib_bomb
        data = raw_header(flags=protocol.FLAGS_COMPRESSED, ann_size=len(ann), data_size=len(zlib_bomb)) + ann + \
            zlib_bomb
        assert outcome(server.location, data) in ("closed", "error-reply")
        dog.progressing()
        with RawClient(server.location) as probe:
            probe.connect("Pyro.Daemon")
            stats = probe.call("service", "stats")[1]
        growth_mib = (server.rss_kib() - before) / 1024
        print("zlib bombs (64 KiB -> 64 MiB, limit 8 MiB): traced peak %.1f MiB, RSS growth %.1f MiB"
              % (stats["traced_peak"] / 2 ** 20, growth_mib))
        assert stats["traced_peak"] < 4 * SMALL_LIMIT, stats["traced_peak"]  # the limit, not the 64 MiB
        assert growth_mib < 64
        dog.stop()
        assert server.alive


# --- slow and silent clients ---

def test_slow_and_silent_clients(server, watchdog, servertype):
    """1,000 clients dribble a header byte by byte, 1,000 connect and say nothing; COMMTIMEOUT reclaims all."""
    ensure_nofile(SLOW_CLIENTS + SILENT_CLIENTS + 500)
    host, port = server.location.rsplit(":", 1)
    baseline = stats(server.location)
    baseline_fds = server.fd_count()
    silent, slow = [], []
    try:
        for _ in range(SILENT_CLIENTS):
            silent.append(socket.create_connection((host, int(port))))
        for _ in range(SLOW_CLIENTS):
            slow.append(socket.create_connection((host, int(port))))
        header = connect_message()[:protocol.HEADER_SIZE]
        pacing = threading.Event()
        peak_sockets = 0
        for position in range(protocol.HEADER_SIZE - 1):  # never the last byte
            for sock in slow:
                sock.send(header[position:position + 1])
            if position % 8 == 0:
                watchdog.progressing()
                peak_sockets = max(peak_sockets, stats(server.location)["sockets"])
            pacing.wait(0.03)  # the dribble rate, well inside COMMTIMEOUT: not a synchronisation
        watchdog.progressing()
        assert peak_sockets >= baseline["sockets"] + SLOW_CLIENTS
        for sock in silent + slow:  # every one is closed by the server after COMMTIMEOUT
            sock.settimeout(30)
            assert sock.recv(10) == b""
        watchdog.progressing()
        assert wait_until(lambda: stats(server.location)["sockets"] == baseline["sockets"], 15)
        # a pool thread keeps a wake pipe (2 fds) while it lives, which is not a leak
        assert wait_until(lambda: server.fd_count() - 2 * stats(server.location)["wake_pipes"]
                          <= baseline_fds - 2 * baseline["wake_pipes"], 15), (server.fd_count(), baseline_fds)
        print("%s: %d slow + %d silent clients, peak server sockets %d, baseline %d; server fds %d -> %d"
              % (servertype, len(slow), len(silent), peak_sockets, baseline["sockets"], baseline_fds,
                 server.fd_count()))
    finally:
        for sock in silent + slow:
            sock.close()
