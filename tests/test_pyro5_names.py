"""Pyro5's half-public names that real programs and Pyro5's own tests use, checked against Pyro5 itself."""

import socket
import threading

import Pyro5.protocol
import Pyro5.serializers
import Pyro5.server
import Pyro5.socketutil
import pytest

import geopyro.api as api
from geopyro import errors, protocol, serializers, server, socketutil


class Thing:
    def __init__(self):
        self._v = 1

    @api.expose
    def method(self):
        return "m"

    @api.oneway
    @api.expose
    def fire(self):
        pass

    def plain(self):
        return "p"

    @api.expose
    @property
    def exposed(self):
        return self._v

    @exposed.setter
    def exposed(self, value):
        self._v = value

    @property
    def public(self):
        return self._v * 10

    @public.setter
    def public(self, value):
        self._v = value // 10

    def _private(self):
        return "x"


def outcome(func, *args):
    try:
        return "ok", func(*args)
    except Exception as exc:  # the type is what both must agree on
        return type(exc).__name__, None


def test_server_helpers_agree_with_pyro5():
    for only_exposed in (True, False):
        assert server._get_exposed_members(Thing, only_exposed) == \
            Pyro5.server._get_exposed_members(Thing, only_exposed)
        assert server._get_exposed_members(Thing(), only_exposed) == \
            Pyro5.server._get_exposed_members(Thing(), only_exposed)
        for name in ("exposed", "public", "_v", "method", "nosuch", "_private"):
            assert outcome(server._get_exposed_property_value, Thing(), name, only_exposed) == \
                outcome(Pyro5.server._get_exposed_property_value, Thing(), name, only_exposed), (name, only_exposed)
            ours, theirs = Thing(), Thing()
            assert outcome(server._set_exposed_property_value, ours, name, 30, only_exposed)[0] == \
                outcome(Pyro5.server._set_exposed_property_value, theirs, name, 30, only_exposed)[0], name
            assert ours._v == theirs._v
    for name in ("method", "plain", "_private", "__class__", "exposed", "nosuch", "method.__func__"):
        assert outcome(server._get_attribute, Thing(), name)[0] == outcome(Pyro5.server._get_attribute, Thing(),
                                                                             name)[0], name
    assert server._get_attribute(Thing(), "method")() == "m"
    plain = Thing()
    assert server._pyro_obj_to_auto_proxy(plain) is plain


def test_daemon_names(daemons):
    daemon = api.Daemon(host="127.0.0.1")
    try:
        assert daemon.transportServer.locationStr == daemon.locationStr
        with socketutil.SocketConnection(socket.socket()) as conn:
            first = daemon._getInstance(Thing, conn)
            assert isinstance(first, Thing) and daemon._getInstance(Thing, conn) is first  # a session instance
        assert conn.closed
    finally:
        daemon.close()


def test_all_exceptions_is_pyro5s_table():
    assert set(serializers.all_exceptions) == set(Pyro5.serializers.all_exceptions)
    assert serializers.all_exceptions["ValueError"] is ValueError
    assert serializers.all_exceptions["CommunicationError"] is errors.CommunicationError


def test_messages_are_pyro5s_byte_for_byte():
    for flags, payload, annotations in ((0, b"hello", None), (Pyro5.protocol.FLAGS_ONEWAY, b"x" * 500, {"XYZW": b"ab"})):
        ours = protocol.SendingMessage(protocol.MSG_INVOKE, flags, 7, 1, payload, annotations)
        theirs = Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_INVOKE, flags, 7, 1, payload, annotations)
        assert ours.data == theirs.data and ours.flags == theirs.flags
        for reader in (protocol.ReceivingMessage, Pyro5.protocol.ReceivingMessage):
            msg = reader(ours.data[:40], ours.data[40:])
            assert (msg.type, msg.flags, msg.seq, msg.serializer_id, bytes(msg.data)) == \
                (protocol.MSG_INVOKE, flags, 7, 1, payload)
            assert {key: bytes(value) for key, value in msg.annotations.items()} == (annotations or {})
    with pytest.raises(ValueError):
        protocol.ReceivingMessage.validate(b"PY")
    for bad in (b"HTTP/1.0", b"PYRO\x01\xf7"):
        with pytest.raises(errors.ProtocolError):
            protocol.ReceivingMessage.validate(bad)
        with pytest.raises(Pyro5.errors.ProtocolError):
            Pyro5.protocol.ReceivingMessage.validate(bad)


def test_compressed_messages_both_ways(clean_config):
    import Pyro5.api
    clean_config.COMPRESSION = True
    Pyro5.api.config.COMPRESSION = True
    try:
        ours = protocol.SendingMessage(protocol.MSG_RESULT, 0, 1, 1, b"a" * 1000)
        theirs = Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_RESULT, 0, 1, 1, b"a" * 1000)
        assert ours.flags & protocol.FLAGS_COMPRESSED and ours.data == theirs.data
        assert bytes(protocol.ReceivingMessage(theirs.data[:40], theirs.data[40:]).data) == b"a" * 1000
    finally:
        Pyro5.api.config.COMPRESSION = False


def test_recv_stub_and_data_helpers():
    left, right = socket.socketpair()
    with left, right:
        message = protocol.SendingMessage(protocol.MSG_PING, 0, 3, 1, b"ping")
        socketutil.send_data(left, message.data)
        received = protocol.recv_stub(socketutil.SocketConnection(right), [protocol.MSG_PING])
        assert (received.type, received.seq, bytes(received.data)) == (protocol.MSG_PING, 3, b"ping")
        socketutil.send_data(left, b"abc")
        assert socketutil.receive_data(right, 3) == b"abc"
        left.sendall(b"xy")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(errors.ConnectionClosedError) as caught:
            socketutil.receive_data(right, 5)
        assert bytes(caught.value.partialData) == b"xy"
    assert socketutil.USE_MSG_WAITALL == hasattr(socket, "MSG_WAITALL")


def test_ping_through_sendingmessage(daemons):
    """Pyro5's SendingMessage.ping on a proxy's connection: the server answers the PING."""
    daemon = api.Daemon(host="127.0.0.1")
    daemons.start(daemon)
    with api.Proxy("PYRO:Pyro.Daemon@" + daemon.locationStr) as proxy:
        proxy._pyroBind()
        protocol.SendingMessage.ping(proxy._pyroConnection)
        assert proxy.ping() is None  # and the connection is still in step


@api.expose
class Echo:
    def echo(self, value):
        return value


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal", "msgpack"])
def test_an_unserializable_argument_raises_what_pyro5_raises(daemons, serializer):
    """serpent: its TypeError (not a CommunicationError that retry code would take for a network failure);
    the others: SerializeError, as Pyro5's own serializers raise."""
    import Pyro5.api
    daemon = api.Daemon(host="127.0.0.1")
    uri = str(daemon.register(Echo, "echo"))
    daemons.start(daemon)
    for proxy_class in (api.Proxy, Pyro5.api.Proxy):
        with proxy_class(uri) as proxy:
            proxy._pyroSerializer = serializer
            with pytest.raises(TypeError if serializer == "serpent" else Exception) as caught:
                proxy.echo(threading.Lock())
            assert type(caught.value).__name__ == ("TypeError" if serializer == "serpent" else "SerializeError")
            assert proxy.echo([1, "two"]) == [1, "two"]  # the connection is fine


def test_more_half_public_names_as_pyro5s():
    """socketutil's interrupt_socket / set_noinherit and a connection's settimeout / gettimeout;
    serialize_pyro_object_to_dict and SerializerBase.make_exception; svr_existingconn's class, made as Pyro5 does."""
    import Pyro5.core
    import Pyro5.socketutil
    from geopyro.servers import existing
    uri = "PYRO:obj@localhost:4444"
    assert serializers.serialize_pyro_object_to_dict(api.URI(uri)) == \
        Pyro5.serializers.serialize_pyro_object_to_dict(Pyro5.core.URI(uri))
    data = {"args": ("boom",), "attributes": {"detail": 42}}
    for base in (serializers.SerializerBase, Pyro5.serializers.SerializerBase):
        exc = base.make_exception(ValueError, data)
        assert (type(exc), exc.args, exc.detail) == (ValueError, ("boom",), 42)
    for util in (socketutil, Pyro5.socketutil):
        listener = util.create_socket(bind=("127.0.0.1", 0), timeout=5)
        try:
            util.set_noinherit(listener)
            assert not listener.get_inheritable()
            util.interrupt_socket(listener.getsockname())  # connects and closes: the accept returns
            accepted, _ = listener.accept()
            with util.SocketConnection(accepted) as conn:
                conn.settimeout(2.5)
                assert conn.gettimeout() == 2.5 == conn.timeout
        finally:
            listener.close()
    a, b = socket.socketpair()
    try:
        server = existing.SocketServer_ExistingConnection()
        with api.Daemon(connected_socket=a) as daemon:
            server.init(daemon, b)
            assert server.daemon is daemon and server.conn is not None
            server.close()
    finally:
        a.close()
        b.close()
