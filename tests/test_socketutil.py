"""gevent sockets: exact receives, whole messages, closing, timeouts, socket creation and address helpers."""

import ipaddress
import os
import socket
import threading
import tracemalloc

import gevent
import gevent.socket as gsocket
import pytest

import Pyro5.protocol

from geopyro import errors, protocol, socketutil
from geopyro.callcontext import current_context
from geopyro.socketutil import SocketConnection

MAX = 1024 * 1024


class TrickleSocket:
    """A real socket whose recv hands out at most ``limit`` bytes per call, and records the sizes asked for."""

    def __init__(self, sock, limit):
        self.sock = sock
        self.limit = limit
        self.requests = []

    def recv(self, size):
        self.requests.append(size)
        return self.sock.recv(min(size, self.limit))

    def __getattr__(self, name):
        return getattr(self.sock, name)


class Resource:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def pair():
    a, b = gsocket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def tcp_pair():
    """A connected pair of real TCP gevent sockets on 127.0.0.1, made with create_socket."""
    server = socketutil.create_socket(bind=("127.0.0.1", 0), cooperative=True)
    client = socketutil.create_socket(connect=("127.0.0.1", server.getsockname()[1]), cooperative=True)
    accepted, _ = server.accept()
    yield client, accepted
    for sock in (client, accepted, server):
        sock.close()


# ---------------------------------------------------------------- exact receives

def test_recv_exactly_n_bytes_across_several_sends(pair):
    a, b = pair
    trickle = TrickleSocket(b, 7)
    conn = SocketConnection(trickle)
    for chunk in (b"hello ", b"world", b", this arrives", b" in pieces", b"NEXT"):
        a.sendall(chunk)
    assert conn.recv(35) == b"hello world, this arrives in pieces"
    assert len(trickle.requests) == 5                     # 7 + 7 + 7 + 7 + 7
    assert conn.recv(4) == b"NEXT"                         # nothing was read beyond what was asked
    assert conn.recv(0) == b""


def test_recv_large_data_over_tcp(tcp_pair):
    client, accepted = tcp_pair
    data = os.urandom(3 * 1024 * 1024 + 17)
    sender = gevent.spawn(client.sendall, data)
    assert SocketConnection(accepted).recv(len(data)) == data
    sender.get()


def test_send_over_tcp(tcp_pair):
    client, accepted = tcp_pair
    SocketConnection(client).send(b"x" * 1000)
    assert SocketConnection(accepted).recv(1000) == b"x" * 1000


# ---------------------------------------------------------------- whole messages

def test_recv_message_across_chunked_sends(pair):
    a, b = pair
    conn = SocketConnection(TrickleSocket(b, 5))
    first = protocol.encode(protocol.MSG_INVOKE, 0, 1, 1, b"payload one" * 20, {"ANNO": b"a"})
    second = protocol.encode(protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION, 2, 3, b"two", corr_id=b"c" * 16)
    wire = first + second
    for pos in range(0, len(wire), 13):
        a.sendall(wire[pos:pos + 13])
    msg = conn.recv_message(MAX)
    assert (msg.type, msg.seq, msg.data, msg.annotations) == (protocol.MSG_INVOKE, 1, b"payload one" * 20,
                                                               {"ANNO": b"a"})
    msg = conn.recv_message(MAX)
    assert (msg.type, msg.flags, msg.seq, msg.serializer_id, msg.data, msg.corr_id) == \
        (protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION | protocol.FLAGS_CORR_ID, 2, 3, b"two", b"c" * 16)


def test_recv_message_keeps_bytes_of_the_next_message(pair):
    a, b = pair
    conn = SocketConnection(b)
    a.sendall(b"".join(protocol.encode(protocol.MSG_RESULT, 0, seq, 1, b"r%d" % seq) for seq in range(3)))
    assert [conn.recv_message(MAX).data for _ in range(3)] == [b"r0", b"r1", b"r2"]


def test_recv_message_from_pyro5_bytes(pair):
    a, b = pair
    a.sendall(Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_PING, 0, 7, 42, b"ping").data)
    msg = SocketConnection(b).recv_message(MAX, [protocol.MSG_PING])
    assert (msg.type, msg.seq, msg.data) == (protocol.MSG_PING, 7, b"ping")


def test_recv_message_unexpected_type(pair):
    a, b = pair
    a.sendall(protocol.encode(protocol.MSG_PING, 0, 0, 1, b"ping"))
    with pytest.raises(errors.ProtocolError, match="invalid msg type 6") as info:
        SocketConnection(b).recv_message(MAX, [protocol.MSG_RESULT, protocol.MSG_CONNECTOK])
    assert info.value.pyroMsg.type == protocol.MSG_PING


def test_recv_message_garbage(pair):
    a, b = pair
    a.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(errors.ProtocolError):
        SocketConnection(b).recv_message(MAX)


def test_recv_message_too_large(pair):
    a, b = pair
    a.sendall(protocol.encode(protocol.MSG_RESULT, 0, 1, 1, b"x" * 200)[:40])
    with pytest.raises(errors.MessageTooLargeError):
        SocketConnection(b).recv_message(100)


def test_recv_message_does_not_allocate_the_declared_size(pair):
    a, b = pair
    declared = 200 * 1024 * 1024
    a.sendall(protocol.HEADER.pack(b"PYRO", 502, protocol.MSG_INVOKE, 1, 0, 1, declared, 0, b"\0" * 16, 0,
                                   protocol.MAGIC) + b"abc")
    a.close()
    conn = SocketConnection(b)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        with pytest.raises(errors.ConnectionClosedError):
            conn.recv_message(256 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, "peak traced allocation %d bytes" % peak


# ---------------------------------------------------------------- closing and timeouts

def test_connection_closed_by_peer(pair):
    a, b = pair
    a.sendall(b"abc")
    a.close()
    conn = SocketConnection(b)
    with pytest.raises(errors.ConnectionClosedError, match="closed"):
        conn.recv(10)


def test_connection_closed_by_peer_mid_message(pair):
    a, b = pair
    a.sendall(protocol.encode(protocol.MSG_RESULT, 0, 1, 1, b"x" * 100)[:60])
    a.close()
    with pytest.raises(errors.ConnectionClosedError):
        SocketConnection(b).recv_message(MAX)


def test_connection_closed_before_anything(pair):
    a, b = pair
    a.close()
    with pytest.raises(errors.ConnectionClosedError):
        SocketConnection(b).recv_message(MAX)


def test_send_after_close_is_connection_closed(pair):
    a, b = pair
    conn = SocketConnection(a)
    conn.close()
    with pytest.raises(errors.ConnectionClosedError):
        conn.send(b"data")


def test_send_to_a_closed_peer(pair):
    a, b = pair
    b.close()
    with pytest.raises(errors.ConnectionClosedError):
        SocketConnection(a).send(b"x" * 100000)


def test_timeout(pair):
    a, b = pair
    conn = SocketConnection(b)
    conn.setTimeout(0.05)
    assert conn.getTimeout() == conn.timeout == 0.05
    with pytest.raises(errors.TimeoutError):
        conn.recv(1)
    a.sendall(b"PYRO")
    with pytest.raises(errors.TimeoutError):
        conn.recv_message(MAX)
    conn.timeout = None
    assert conn.timeout is None


def test_close_closes_socket_and_tracked_resources(pair):
    a, b = pair
    conn = SocketConnection(b)
    conn.pyroInstances["cls"] = object()
    resources = [Resource(), Resource()]
    conn.tracked_resources.add(resources[0])
    current_context.client = conn
    try:
        current_context.track_resource(resources[1])
    finally:
        current_context.client = None
    conn.close()
    assert conn.closed
    assert all(resource.closed for resource in resources)
    assert len(conn.tracked_resources) == 0
    assert conn.pyroInstances == {}
    assert b.fileno() == -1
    with pytest.raises(errors.ConnectionClosedError):
        SocketConnection(a).recv(1)                        # the peer sees the close
    conn.close()  # twice is fine


def test_close_with_keep_open(pair):
    a, b = pair
    conn = SocketConnection(b, keep_open=True)
    resource = Resource()
    conn.tracked_resources.add(resource)
    conn.close()
    assert conn.closed and resource.closed
    assert b.fileno() != -1
    a.sendall(b"still open")
    assert SocketConnection(b).recv(10) == b"still open"


def test_resource_that_fails_to_close_does_not_stop_the_others(pair):
    class Broken(Resource):
        def close(self):
            raise RuntimeError("cannot close")

    _, b = pair
    conn = SocketConnection(b)
    broken, fine = Broken(), Resource()
    conn.tracked_resources.add(broken)
    conn.tracked_resources.add(fine)
    conn.close()
    assert fine.closed


def test_connection_information(tcp_pair):
    client, accepted = tcp_pair
    conn = SocketConnection(accepted, objectId="obj")
    assert conn.objectId == "obj"
    assert conn.fileno() == accepted.fileno()
    assert conn.family() == "IPv4"
    assert conn.getpeername() == client.getsockname()
    assert conn.getpeercert() is None
    assert "SocketConnection" in repr(conn)


# ---------------------------------------------------------------- create_socket

def test_create_socket_tcp_bind_and_connect():
    server = socketutil.create_socket(bind=("127.0.0.1", 0), reuseaddr=True, timeout=5, cooperative=True)
    try:
        assert isinstance(server, gsocket.socket)
        host, port = server.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert server.gettimeout() == 5
        client = socketutil.create_socket(connect=("127.0.0.1", port), cooperative=True)
        accepted, _ = server.accept()
        try:
            assert isinstance(client, gsocket.socket)
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert client.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            SocketConnection(client).send(b"over tcp")
            assert SocketConnection(accepted).recv(8) == b"over tcp"
        finally:
            client.close()
            accepted.close()
    finally:
        server.close()


def test_create_socket_options_off():
    server = socketutil.create_socket(bind=("127.0.0.1", 0), reuseaddr=False, nodelay=False, keepalive=False)
    try:
        assert not server.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert not server.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    finally:
        server.close()


def test_create_socket_connect_by_name():
    server = socketutil.create_socket(bind=("127.0.0.1", 0))
    try:
        client = socketutil.create_socket(connect=("localhost", server.getsockname()[1]), ipv6=None)
        client.close()
    except errors.CommunicationError:
        pytest.fail("connecting to 'localhost' should resolve to 127.0.0.1")
    finally:
        server.close()


def test_create_socket_connection_refused():
    unused = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        unused.bind(("127.0.0.1", 0))          # bound but not listening: connections are refused
        with pytest.raises(errors.CommunicationError, match="cannot connect"):
            socketutil.create_socket(connect=("127.0.0.1", unused.getsockname()[1]))
    finally:
        unused.close()


def test_create_socket_bind_and_connect_together():
    with pytest.raises(ValueError):
        socketutil.create_socket(bind=("127.0.0.1", 0), connect=("127.0.0.1", 1))


def test_create_socket_unix(tmp_path):
    path = str(tmp_path / "s.sock")
    server = socketutil.create_socket(bind=path)
    try:
        assert server.family == socket.AF_UNIX
        assert os.path.exists(path)
        assert socketutil.family_str(server) == "Unix"
        client = socketutil.create_socket(connect=path)
        accepted, _ = server.accept()
        try:
            SocketConnection(client).send(b"over unix")
            assert SocketConnection(accepted).recv(9) == b"over unix"
        finally:
            client.close()
            accepted.close()
    finally:
        server.close()


def test_create_socket_unix_replaces_a_stale_socket_file(tmp_path):
    path = str(tmp_path / "stale.sock")
    with open(path, "w") as f:
        f.write("left over")
    server = socketutil.create_socket(bind=path)
    try:
        client = socketutil.create_socket(connect=path)
        client.close()
    finally:
        server.close()


def test_create_socket_unix_connect_to_missing_path(tmp_path):
    with pytest.raises(errors.CommunicationError):
        socketutil.create_socket(connect=str(tmp_path / "missing.sock"))


# ---------------------------------------------------------------- addresses

def test_get_ip_address():
    assert socketutil.get_ip_address("127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")
    assert socketutil.get_ip_address("::1") == ipaddress.IPv6Address("::1")
    assert socketutil.get_ip_address("localhost").is_loopback
    assert socketutil.get_ip_address("localhost", version=4) == ipaddress.IPv4Address("127.0.0.1")


def test_get_ip_address_bad_version():
    with pytest.raises(ValueError):
        socketutil.get_ip_address("localhost", version=5)


def test_get_interface():
    interface = socketutil.get_interface("127.0.0.1")
    assert isinstance(interface, ipaddress.IPv4Interface)
    assert interface.ip == ipaddress.IPv4Address("127.0.0.1")
    assert socketutil.get_interface(ipaddress.ip_address("127.0.0.1")).ip == ipaddress.IPv4Address("127.0.0.1")


def test_bind_unused_port():
    sock = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        port = socketutil.bind_unused_port(sock, "127.0.0.1")
        assert sock.getsockname() == ("127.0.0.1", port) and port > 0
    finally:
        sock.close()


def test_send_of_header_and_payload_parts_arrives_as_one_message(tcp_pair):
    client, server = tcp_pair
    payload = os.urandom(protocol.LARGE_BODY + 12345)
    parts = protocol.encode(protocol.MSG_RESULT, 0, 3, 4, payload, join=False)
    assert isinstance(parts, tuple)
    sender = gevent.spawn(SocketConnection(client).send, parts)
    msg = SocketConnection(server).recv_message(2 * len(payload))
    sender.get(timeout=10)
    assert msg.seq == 3 and bytes(msg.data) == payload


def test_timeout_while_waiting_for_a_message_that_never_starts(pair):
    a, b = pair
    conn = SocketConnection(b)
    conn.setTimeout(0.05)
    with pytest.raises(errors.TimeoutError):
        conn.recv_message(MAX)
    a.sendall(protocol.encode(protocol.MSG_PING, 0, 1, 1, b"late"))
    assert conn.recv_message(MAX).data == b"late"  # the connection still works after a timeout


def test_messages_arriving_while_waiting_wake_the_receiver(pair):
    a, b = pair
    conn = SocketConnection(b)
    conn.setTimeout(5)
    late = gevent.spawn_later(0.01, a.sendall, protocol.encode(protocol.MSG_PING, 0, 1, 1, b"x"))
    assert conn.recv_message(MAX).data == b"x"
    late.get()


def test_peer_closing_while_a_receiver_waits(pair):
    a, b = pair
    conn = SocketConnection(b)
    closer = gevent.spawn_later(0.01, a.close)
    with pytest.raises(errors.ConnectionClosedError):
        conn.recv_message(MAX)
    closer.get()


def test_only_plain_gevent_sockets_are_read_and_written_directly():
    """The fast path relies on gevent's socket internals; this fails loudly if a gevent release renames them."""
    import gevent.ssl as gssl
    plain = gsocket.socket()
    stdlib = socket.socket()
    borrowed = socketutil.to_gevent_socket(stdlib)
    tls = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT).wrap_socket(gsocket.socket(), server_hostname="localhost")
    try:
        assert SocketConnection(plain)._plain
        assert SocketConnection(borrowed)._plain
        conn = SocketConnection(tls)
        assert not conn._plain  # TLS keeps decrypted bytes of its own: gevent's recv must handle it
        conn.sock = plain
        assert conn._plain  # replacing the socket re-decides
        conn.sock = tls
        assert not conn._plain
    finally:
        socketutil.release_borrowed(borrowed)
        for sock in (plain, stdlib, tls):
            sock.close()


def test_local_close_by_another_greenlet_ends_a_waiting_receive(pair):
    a, b = pair
    conn = SocketConnection(b)
    closer = gevent.spawn_later(0.01, conn.close)
    with pytest.raises(errors.ConnectionClosedError):
        conn.recv_message(MAX)
    closer.get()
    with pytest.raises(errors.ConnectionClosedError):
        conn.send(b"after close")


def _send_from_a_thread(conn, data):
    """conn.send_from_thread(data) on a real OS thread; returns the exception it raised, or None."""
    outcome = []

    def send():
        try:
            conn.send_from_thread(data)
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)
    thread = threading.Thread(target=send)
    thread.start()
    thread.join(30)
    assert outcome, "send_from_thread did not return"
    return outcome[0]


def test_send_from_thread_waits_for_room_and_sends_every_byte():
    left, right = gsocket.socketpair()
    conn = SocketConnection(left)
    data = os.urandom(4 * 1024 * 1024)  # far more than the socket buffers take at once
    received = bytearray()

    def drain():
        raw = right._sock  # read by a plain blocking thread, slower than the sender
        raw.setblocking(True)
        with right:
            while len(received) < len(data):
                received.extend(raw.recv(65536))
    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert _send_from_a_thread(conn, data) is None
        reader.join(30)
        assert bytes(received) == data
    finally:
        conn.close()


def test_send_from_thread_gives_up_after_the_socket_timeout():
    left, right = gsocket.socketpair()
    left.settimeout(0.2)
    conn = SocketConnection(left)
    try:
        exc = _send_from_a_thread(conn, b"x" * (16 * 1024 * 1024))  # nobody reads: the buffers fill up
        assert isinstance(exc, errors.TimeoutError) and "sending: timeout" in str(exc)
        right.close()
        exc = _send_from_a_thread(conn, b"y" * (1024 * 1024))
        assert isinstance(exc, errors.ConnectionClosedError)
    finally:
        conn.close()
        right.close()


def test_create_socket_follows_the_calling_code():
    """Plain code gets a plain socket (as Pyro5's), a greenlet a gevent one; either may be asked for."""
    plain = socketutil.create_socket(bind=("127.0.0.1", 0))
    in_greenlet = gevent.spawn(socketutil.create_socket, bind=("127.0.0.1", 0)).get()
    asked = socketutil.create_socket(bind=("127.0.0.1", 0), cooperative=True)
    udp_plain = socketutil.create_bc_socket()
    udp_green = gevent.spawn(socketutil.create_bc_socket).get()
    try:
        assert not isinstance(plain, gsocket.socket) and not isinstance(udp_plain, gsocket.socket)
        assert isinstance(in_greenlet, gsocket.socket) and isinstance(udp_green, gsocket.socket)
        assert isinstance(asked, gsocket.socket)
    finally:
        for sock in (plain, in_greenlet, asked, udp_plain, udp_green):
            sock.close()
