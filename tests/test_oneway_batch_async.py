"""Oneway calls, batched calls, asynchronous calls with futures, and SerializedBlob through a dispatcher."""

import threading
import time

import gevent
import pytest

from geopyro import errors
from geopyro.client import BatchProxy, Future, Proxy, SerializedBlob
from geopyro.server import Daemon, expose, oneway
from support import green_wait, wait_until


class State:
    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self.calls = []


@expose
class Worker:
    state = None

    @oneway
    def wait_for_release(self):
        state = Worker.state
        state.started.set()
        green_wait(state.release)
        state.done.set()

    @oneway
    def busy(self, seconds):
        gevent.sleep(seconds)  # real work taking a while (not synchronisation)
        Worker.state.done.set()

    @oneway
    def oneway_fail(self):
        Worker.state.calls.append("oneway_fail")
        raise ValueError("oneway failure")

    @oneway
    def record_oneway(self, value):
        Worker.state.calls.append(value)

    def is_done(self):
        return Worker.state.done.is_set()

    def record(self, value):
        Worker.state.calls.append(value)
        return value * 10

    def fail(self, message):
        Worker.state.calls.append("fail")
        raise ValueError(message)

    def add(self, a, b):
        return a + b

    def held(self, value):
        green_wait(Worker.state.release)
        return value


@pytest.fixture
def state():
    Worker.state = State()
    yield Worker.state
    Worker.state.release.set()
    Worker.state = None


# --- oneway ---

def test_oneway_returns_before_method_ends(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroBind()
        assert "wait_for_release" in p._pyroOneway
        assert p.wait_for_release() is None  # returns although the method is still waiting
        assert not state.done.is_set()
        assert state.started.wait(5), "the oneway method did not run"
        assert not state.done.is_set()
        assert p.is_done() is False  # and the connection serves other calls meanwhile
        state.release.set()
        assert state.done.wait(5)
        assert p.is_done() is True


def test_oneway_runs_in_own_greenlet(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p.busy(0.5)
        assert p.is_done() is False  # not held up by the oneway call still working
        assert state.done.wait(5)


def test_oneway_not_threaded_runs_inline(daemons, servertype, state, clean_config):
    clean_config.ONEWAY_THREADED = False
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        started = time.monotonic()
        p.busy(0.3)
        assert time.monotonic() - started < 0.25  # the client doesn't wait for a oneway call
        assert p.is_done() is True  # the next call on the connection waited for it


def test_oneway_exception_stays_on_server(daemons, servertype, state):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Worker)
    handled = threading.Event()
    seen = []

    def handler(daemon_arg, client_sock, method, vargs, kwargs, exception):
        seen.append(exception)
        handled.set()

    daemon.methodcall_error_handler = handler
    daemons.start(daemon)
    with Proxy(uri) as p:
        assert p.oneway_fail() is None
        assert handled.wait(5)
        assert isinstance(seen[0], ValueError)
        assert p.add(1, 2) == 3


def test_oneway_by_flag_on_normal_method(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroBind()
        p._pyroOneway.add("record")  # the client may choose to call any method oneway
        assert p.record(4) is None
        assert wait_until(lambda: state.calls == [4])


# --- batch ---

def test_batch(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        batch = p._pyroBatch()
        assert isinstance(batch, BatchProxy)
        assert batch.record(1) is None  # queued, not sent
        batch.add(2, 3)
        batch.record(2)
        assert state.calls == []
        results = batch()
        assert list(results) == [10, 5, 20]
        assert state.calls == [1, 2]
        with p._pyroBatch() as batch2:
            batch2.add(1, 1)
            assert list(batch2()) == [2]


def test_batch_exception_in_the_middle(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        batch = p._pyroBatch()
        batch.record(1)
        batch.fail("middle")
        batch.record(2)
        results = batch()
        assert next(results) == 10
        with pytest.raises(ValueError, match="middle"):
            next(results)
        assert state.calls == [1, "fail"]  # the rest of the batch was not run
        assert p.add(1, 1) == 2


def test_batch_oneway(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        batch = p._pyroBatch()
        batch.record(1)
        batch.record(2)
        batch.record_oneway(3)
        assert batch(oneway=True) is None
        assert wait_until(lambda: state.calls == [1, 2, 3])
        assert p.add(2, 2) == 4


def test_batch_asynchronous(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        batch = p._pyroBatch()
        batch.record(1)
        batch.add(4, 5)
        future = batch(asynchronous=True)
        assert isinstance(future, Future)
        assert future.wait(5)
        assert list(future.value) == [10, 9]


# --- asynchronous calls ---

def test_async_call_future(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroAsync()
        future = p.held(42)
        assert isinstance(future, Future)
        assert future.ready is False
        assert future.wait(0.05) is False
        state.release.set()
        assert future.wait(5) is True
        assert future.ready is True
        assert future.value == 42


def test_async_then_chain(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroAsync()
        future = p.add(1, 2).then(lambda v: v * 10).then(lambda v, extra: v + extra, 5)
        assert future.value == 35


def test_async_exception(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroAsync()
        future = p.fail("async failure")
        assert future.wait(5)
        with pytest.raises(ValueError, match="async failure"):
            future.value
        handled = p.fail("again").iferror(lambda exc: "handled: %s" % exc)
        assert handled.value == "handled: again"
        then_after_error = p.fail("chained").then(lambda v: "not reached")
        with pytest.raises(ValueError, match="chained"):
            then_after_error.value


def test_async_switched_off(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroAsync()
        future = p.add(1, 1)
        assert isinstance(future, Future)
        assert future.value == 2
        p._pyroAsync(False)
        assert p.add(1, 1) == 2  # the async call did not take the proxy away from its owner
    assert p._pyroConnection is None


def test_async_from_non_owner_thread(daemons, servertype, state):
    uri = daemons.serve(Worker)
    p = Proxy(uri)
    p._pyroAsync()
    outcome = []

    def other_thread():
        try:
            outcome.append(p.add(1, 2).value)
        except errors.PyroError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join(10)
    assert isinstance(outcome[0], errors.PyroError)
    assert p.add(1, 2).value == 3


def test_async_several_in_flight(daemons, servertype, state):
    uri = daemons.serve(Worker)
    with Proxy(uri) as p:
        p._pyroAsync()
        futures = [p.add(i, i) for i in range(5)]
        assert [f.value for f in futures] == [0, 2, 4, 6, 8]


# --- SerializedBlob through a dispatcher ---

@expose
class Receiver:
    def process(self, blob):
        return [type(blob).__name__, blob.info, blob.deserialized()]


@expose
class Dispatcher:
    target = None

    def dispatch(self, blob):
        assert isinstance(blob, SerializedBlob)
        with Proxy(Dispatcher.target) as receiver:
            return receiver.process(blob)


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal", "msgpack"])
def test_serialized_blob_dispatch(daemons, servertype, clean_config, serializer):
    clean_config.SERIALIZER = serializer
    Dispatcher.target = daemons.serve(Receiver)
    dispatcher_uri = daemons.serve(Dispatcher)
    data = ["payload", 42, {"key": "value"}]
    with Proxy(dispatcher_uri) as p:
        kind, info, deserialized = p.dispatch(SerializedBlob("blob-info", data))
    assert kind == "SerializedBlob"
    assert info == "blob-info"
    assert list(deserialized) == data


def test_serialized_blob_must_be_only_argument(daemons, servertype):
    Dispatcher.target = daemons.serve(Receiver)
    with Proxy(Dispatcher.target) as p:
        with pytest.raises(errors.SerializeError):
            p.process(SerializedBlob("info", [1]), 2)
