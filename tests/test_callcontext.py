"""The call context is per greenlet and per thread."""

import threading
import uuid
import weakref

import gevent
import gevent.event
import pytest

from geopyro import errors
from geopyro.callcontext import current_context


@pytest.fixture(autouse=True)
def fresh_context():
    saved = current_context.to_global()
    current_context.from_global({"client": None, "client_sock_addr": None, "seq": 0, "msg_flags": 0,
                                 "serializer_id": 0, "annotations": {}, "response_annotations": {},
                                 "correlation_id": None})
    yield
    current_context.from_global(saved)


def test_defaults():
    assert current_context.client is None
    assert current_context.seq == 0
    assert current_context.annotations == {} and current_context.response_annotations == {}
    assert current_context.correlation_id is None


def test_separate_per_greenlet():
    current_context.seq = 1
    current_context.annotations = {"MAIN": b"m"}
    ready = gevent.event.Event()
    proceed = gevent.event.Event()
    seen = {}

    def worker(seq):
        seen[seq, "start"] = (current_context.seq, dict(current_context.annotations))
        current_context.seq = seq
        current_context.annotations = {"WORK": b"%d" % seq}
        if seq == 2:
            ready.set()
            proceed.wait()           # let the other greenlet run while this one holds its values
        seen[seq, "end"] = (current_context.seq, dict(current_context.annotations))

    first = gevent.spawn(worker, 2)
    ready.wait()
    second = gevent.spawn(worker, 3)
    second.join()
    proceed.set()
    first.join()
    assert seen[2, "start"] == (0, {}) and seen[3, "start"] == (0, {})
    assert seen[2, "end"] == (2, {"WORK": b"2"})
    assert seen[3, "end"] == (3, {"WORK": b"3"})
    assert current_context.seq == 1
    assert current_context.annotations == {"MAIN": b"m"}


def test_separate_per_thread():
    current_context.seq = 11
    current_context.correlation_id = uuid.uuid4()
    seen = []

    def worker():
        seen.append((current_context.seq, current_context.correlation_id))
        current_context.seq = 99
        seen.append(current_context.seq)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [(0, None), 99]
    assert current_context.seq == 11


def test_to_global_and_from_global_carry_values_into_a_greenlet():
    corr = uuid.uuid4()
    current_context.seq = 5
    current_context.msg_flags = 3
    current_context.serializer_id = 4
    current_context.annotations = {"ANNO": b"x"}
    current_context.correlation_id = corr
    values = current_context.to_global()
    assert values["seq"] == 5 and values["correlation_id"] == corr
    assert set(values) == {"client", "client_sock_addr", "seq", "msg_flags", "serializer_id", "annotations",
                           "response_annotations", "correlation_id"}

    def worker():
        before = current_context.seq
        current_context.from_global(values)
        return before, current_context.seq, current_context.msg_flags, current_context.serializer_id, \
            current_context.annotations, current_context.correlation_id

    assert gevent.spawn(worker).get() == (0, 5, 3, 4, {"ANNO": b"x"}, corr)


class Resource:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class FakeClient:
    def __init__(self):
        self.tracked_resources = weakref.WeakSet()


def test_track_resource_without_client():
    with pytest.raises(errors.PyroError, match="connectionless"):
        current_context.track_resource(Resource())
    with pytest.raises(errors.PyroError, match="connectionless"):
        current_context.untrack_resource(Resource())


def test_track_and_untrack_resource():
    client = FakeClient()
    current_context.client = client
    resource = Resource()
    current_context.track_resource(resource)
    assert resource in client.tracked_resources
    current_context.untrack_resource(resource)
    assert resource not in client.tracked_resources
    current_context.untrack_resource(resource)  # untracking twice is harmless


def test_client_of_one_greenlet_is_not_seen_by_another():
    current_context.client = FakeClient()

    def worker():
        with pytest.raises(errors.PyroError):
            current_context.track_resource(Resource())
        return current_context.client

    assert gevent.spawn(worker).get() is None


def test_correlation_id_kept_as_wire_bytes_reads_as_a_uuid():
    corr = uuid.uuid4()
    current_context.correlation_id = corr.bytes  # how the server stores a received id
    assert current_context.correlation_bytes() == corr.bytes
    assert current_context.correlation_id == corr
    assert current_context.correlation_bytes() == corr.bytes
    current_context.correlation_id = corr
    assert current_context.correlation_bytes() == corr.bytes
    current_context.correlation_id = None
    assert current_context.correlation_bytes() is None and current_context.correlation_id is None


def test_correlation_id_of_other_bytes_is_left_as_it_is():
    current_context.correlation_id = b"short"
    assert current_context.correlation_id == b"short"
