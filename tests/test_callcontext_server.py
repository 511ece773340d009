"""current_context as seen by server code during a call: client, address, seq, annotations, tracked resources."""

import threading
import uuid

import pytest

from geopyro import errors, protocol, serializers
from geopyro.callcontext import current_context
from geopyro.client import Proxy
from geopyro.server import Daemon, expose, oneway
from support import wait_until


class Resource:
    def __init__(self, name):
        self.name = name
        self.closed = threading.Event()

    def close(self):
        self.closed.set()


@expose
class ContextService:
    resources = []
    oneway_seen = []
    oneway_done = None

    def context(self):
        ctx = current_context
        return {
            "client_id": id(ctx.client),
            "client_peer": list(ctx.client.getpeername()),
            "client_sock_addr": list(ctx.client_sock_addr),
            "seq": ctx.seq,
            "annotations": {k: bytes(v).decode() for k, v in ctx.annotations.items()},
            "serializer_id": ctx.serializer_id,
            "correlation_id": str(ctx.correlation_id),
        }

    def track(self, name):
        resource = Resource(name)
        ContextService.resources.append(resource)
        current_context.track_resource(resource)
        return len(current_context.client.tracked_resources)

    def track_and_untrack(self, name):
        resource = Resource(name)
        ContextService.resources.append(resource)
        current_context.track_resource(resource)
        current_context.untrack_resource(resource)
        return len(current_context.client.tracked_resources)

    def respond_with_annotation(self, value):
        current_context.response_annotations["XSRV"] = value.encode()
        return "ok"

    @oneway
    def oneway_context(self):
        ContextService.oneway_seen.append((list(current_context.client_sock_addr), current_context.seq))
        ContextService.oneway_done.set()


@pytest.fixture(autouse=True)
def reset_service():
    ContextService.resources = []
    ContextService.oneway_seen = []
    ContextService.oneway_done = threading.Event()
    yield


def test_client_address_and_seq(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as p:
        first = p.context()
        local = list(p._pyroLocalSocket)
        assert first["client_sock_addr"] == local
        assert first["client_peer"] == local
        assert first["seq"] == p._pyroSeq
        second = p.context()
        assert second["seq"] == p._pyroSeq == first["seq"] + 1
        assert second["client_id"] == first["client_id"]  # same connection object
        assert first["serializer_id"] == serializers.get_serializer("serpent").serializer_id
    with Proxy(uri) as other:
        ctx = other.context()
        assert ctx["client_sock_addr"] == list(other._pyroLocalSocket) != local


def test_context_per_connection_concurrently(daemons, servertype):
    uri = daemons.serve(ContextService)
    results = {}

    def worker(n):
        with Proxy(uri) as p:
            current_context.annotations = {"XNUM": str(n).encode()}
            ctxs = [p.context() for _ in range(5)]
            results[n] = (list(p._pyroLocalSocket), ctxs)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4
    for n, (local, ctxs) in results.items():
        for ctx in ctxs:
            assert ctx["client_sock_addr"] == local
            assert ctx["annotations"] == {"XNUM": str(n)}


def test_annotations_seen_by_server(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as p:
        assert p.context()["annotations"] == {}
        current_context.annotations = {"XABC": b"first", "XDEF": b"second"}
        assert p.context()["annotations"] == {"XABC": "first", "XDEF": "second"}
        current_context.annotations = {}
        assert p.context()["annotations"] == {}


def test_response_annotations_set_by_method(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as p:
        assert p.respond_with_annotation("value one") == "ok"
        assert bytes(current_context.response_annotations["XSRV"]) == b"value one"
        p.context()
        assert "XSRV" not in current_context.response_annotations  # not carried over to the next reply


def test_correlation_id_on_server(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as p:
        corr = uuid.uuid4()
        current_context.correlation_id = corr
        assert p.context()["correlation_id"] == str(corr)


def test_context_in_oneway_call(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as p:
        p.oneway_context()
        assert ContextService.oneway_done.wait(5)
        addr, seq = ContextService.oneway_seen[0]
        assert addr == list(p._pyroLocalSocket)
        assert seq == p._pyroSeq


def test_track_resource_closed_on_disconnect(daemons, servertype):
    uri = daemons.serve(ContextService)
    p = Proxy(uri)
    assert p.track("one") == 1
    assert p.track("two") == 2
    first, second = ContextService.resources
    assert not first.closed.is_set() and not second.closed.is_set()
    p._pyroRelease()
    assert first.closed.wait(5), "tracked resource was not closed when the client disconnected"
    assert second.closed.wait(5)


def test_resource_held_only_by_the_session_instance_is_closed(daemons, servertype):
    """The tracked set is weak: the session instance may be the resource's only owner."""
    closed = threading.Event()

    class Notebook:
        def close(self):
            closed.set()

    @expose
    class Session:
        def open(self):
            self.notebook = Notebook()  # no other reference than this instance's
            current_context.track_resource(self.notebook)
            return "open"

    uri = daemons.serve(Session)
    p = Proxy(uri)
    assert p.open() == "open"
    p._pyroRelease()
    assert closed.wait(5), "the resource held by the session instance was dropped without being closed"


def test_untracked_resource_not_closed(daemons, servertype):
    gone = threading.Event()

    class WatchingDaemon(Daemon):
        def clientDisconnect(self, conn):
            gone.set()

    daemon = WatchingDaemon(host="127.0.0.1")
    uri = daemon.register(ContextService)
    daemons.start(daemon)
    p = Proxy(uri)
    assert p.track_and_untrack("loose") == 0
    assert p.track("kept") == 1
    p._pyroRelease()
    assert gone.wait(5)
    loose, kept = ContextService.resources
    assert kept.closed.wait(5)
    assert not loose.closed.is_set()


def test_track_resource_other_connections_unaffected(daemons, servertype):
    uri = daemons.serve(ContextService)
    with Proxy(uri) as stays:
        stays.track("stays")
        leaves = Proxy(uri)
        leaves.track("leaves")
        leaves._pyroRelease()
        staying, leaving = ContextService.resources
        assert leaving.closed.wait(5)
        assert not staying.closed.is_set()
    assert staying.closed.wait(5)


def test_track_resource_outside_a_call():
    current_context.client = None
    with pytest.raises(errors.PyroError):
        current_context.track_resource(Resource("x"))
    with pytest.raises(errors.PyroError):
        current_context.untrack_resource(Resource("x"))


def test_context_client_is_connection_given_to_hooks(daemons, servertype):
    handshake_conns = []
    disconnect_conns = []
    gone = threading.Event()

    class HookDaemon(Daemon):
        def validateHandshake(self, conn, data):
            handshake_conns.append(id(conn))
            return super().validateHandshake(conn, data)

        def clientDisconnect(self, conn):
            disconnect_conns.append(id(conn))
            gone.set()

    daemon = HookDaemon(host="127.0.0.1")
    uri = daemon.register(ContextService)
    daemons.start(daemon)
    p = Proxy(uri)
    client_id = p.context()["client_id"]
    p._pyroRelease()
    assert gone.wait(5)
    assert handshake_conns == [client_id]
    assert disconnect_conns == [client_id]
    assert wait_until(lambda: len(daemon.sockets) == 1)


def test_reply_to_a_call_without_correlation_id_carries_a_fresh_one(daemons, servertype):
    uri = daemons.serve(ContextService)
    current_context.correlation_id = None
    with Proxy(uri) as p:
        p._pyroRawWireResponse = True
        first = p.context()
        second = p.context()
    for msg in (first, second):
        assert msg.flags & protocol.FLAGS_CORR_ID
        reply_id = uuid.UUID(bytes=bytes(msg.corr_id))
        assert reply_id.version == 4
        seen = serializers.get_serializer_by_id(msg.serializer_id).loads(msg.data)["correlation_id"]
        assert seen == str(reply_id)  # the method saw the id its reply carries
    assert first.corr_id != second.corr_id
