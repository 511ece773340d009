"""Streamed results: iterators and generators returned by remote methods, and the clean-up of their streams."""

import threading
import time

import pytest

from geopyro import errors
from geopyro.client import Proxy
from geopyro.server import Daemon, expose
from support import wait_until


class Tracker:
    """What the server side generators did, visible to the test thread."""

    def __init__(self):
        self.produced = []
        self.finished = threading.Event()


@expose
class Streamer:
    tracker = None

    def generator(self, count):
        tracker = Streamer.tracker
        try:
            for i in range(count):
                tracker.produced.append(i)
                yield i
        finally:
            tracker.finished.set()

    def iterator(self):
        return iter(["a", "b", "c"])

    def failing_generator(self):
        yield 1
        yield 2
        raise ValueError("generator broke")

    def dict_keys(self):
        return iter({"x": 1}.keys())

    def plain_list(self):
        return [1, 2, 3]


@pytest.fixture
def tracker():
    Streamer.tracker = Tracker()
    yield Streamer.tracker
    Streamer.tracker = None


def serve_streamer(daemons):
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(Streamer)
    daemons.start(daemon)
    return daemon, uri


def test_generator_consumed_item_by_item(daemons, servertype, tracker):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        stream = p.generator(5)
        assert not isinstance(stream, (list, tuple))
        assert tracker.produced == []  # nothing produced before the first item is asked for
        assert len(daemon.streaming_responses) == 1
        assert next(stream) == 0
        assert tracker.produced == [0]
        assert next(stream) == 1
        assert tracker.produced == [0, 1]
        assert list(stream) == [2, 3, 4]
        assert tracker.finished.is_set()
        assert wait_until(lambda: len(daemon.streaming_responses) == 0)
        with pytest.raises(StopIteration):
            next(stream)
        assert p.plain_list() == [1, 2, 3]  # the proxy is still fine


def test_iterator_result(daemons, servertype):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        assert list(p.iterator()) == ["a", "b", "c"]
        assert [x for x in p.iterator()] == ["a", "b", "c"]
    assert wait_until(lambda: len(daemon.streaming_responses) == 0)


def test_error_inside_stream(daemons, servertype):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        stream = p.failing_generator()
        assert next(stream) == 1
        assert next(stream) == 2
        with pytest.raises(ValueError, match="generator broke"):
            next(stream)
        assert wait_until(lambda: len(daemon.streaming_responses) == 0)
        assert p.plain_list() == [1, 2, 3]


def test_lazy_dict_iterators_refused(daemons, servertype):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        with pytest.raises(errors.PyroError, match="dict"):
            p.dict_keys()
    assert daemon.streaming_responses == {}


def test_streaming_disabled(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAMING = False
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        with pytest.raises(errors.PyroError, match="iterator"):
            p.generator(3)
        assert daemon.streaming_responses == {}
        assert tracker.produced == []
        assert p.plain_list() == [1, 2, 3]


def test_stream_lifetime(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAM_LIFETIME = 0.3
    clean_config.POLLTIMEOUT = 0.1
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        stream = p.generator(100)
        assert next(stream) == 0
        assert len(daemon.streaming_responses) == 1
        assert wait_until(lambda: len(daemon.streaming_responses) == 0), "stream outlived ITER_STREAM_LIFETIME"
        assert tracker.finished.wait(5)  # the generator was closed
        with pytest.raises(errors.PyroError, match="terminated"):
            next(stream)


def test_stream_linger_zero_cleans_at_disconnect(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAM_LINGER = 0
    daemon, uri = serve_streamer(daemons)
    p = Proxy(uri)
    stream = p.generator(100)
    assert next(stream) == 0
    assert len(daemon.streaming_responses) == 1
    p._pyroRelease()  # the client goes away mid-stream
    assert wait_until(lambda: len(daemon.streaming_responses) == 0)
    assert tracker.finished.wait(5)
    with pytest.raises(errors.ConnectionClosedError):
        next(stream)


def test_stream_lingers_then_expires(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAM_LINGER = 0.4
    clean_config.POLLTIMEOUT = 0.1
    daemon, uri = serve_streamer(daemons)
    p = Proxy(uri)
    stream = p.generator(100)
    assert next(stream) == 0
    released_at = time.monotonic()
    p._pyroRelease()
    assert wait_until(lambda: len(daemon.streaming_responses) == 0)
    assert time.monotonic() - released_at >= 0.3  # it lingered first
    assert tracker.finished.wait(5)


def test_stream_resumed_within_linger(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAM_LINGER = 30
    daemon, uri = serve_streamer(daemons)
    p = Proxy(uri)
    stream = p.generator(5)
    assert next(stream) == 0
    p._pyroRelease()
    with pytest.raises(errors.ConnectionClosedError):
        next(stream)  # not connected
    p._pyroBind()
    assert len(daemon.streaming_responses) == 1  # kept for the returning client
    assert list(stream) == [1, 2, 3, 4]
    p._pyroRelease()


def test_vanished_client_stream_cleaned(daemons, servertype, clean_config, tracker):
    clean_config.ITER_STREAM_LINGER = 0
    daemon, uri = serve_streamer(daemons)
    p = Proxy(uri)
    stream = p.generator(100)
    assert next(stream) == 0
    p._pyroConnection.sock.close()  # the connection just dies, no clean release
    assert wait_until(lambda: len(daemon.streaming_responses) == 0)
    assert tracker.finished.wait(5)
    assert tracker.produced == [0]


def test_closing_stream_early_closes_generator(daemons, servertype, tracker):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        stream = p.generator(100)
        assert next(stream) == 0
        assert next(stream) == 1
        stream.close()
        assert tracker.finished.wait(5), "the server generator's finally did not run"
        assert wait_until(lambda: len(daemon.streaming_responses) == 0)
        assert tracker.produced == [0, 1]
        with pytest.raises(StopIteration):
            next(stream)
        assert p.plain_list() == [1, 2, 3]


def test_closing_stream_after_other_calls(daemons, servertype, tracker):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        stream = p.generator(100)
        assert next(stream) == 0
        assert p.plain_list() == [1, 2, 3]  # another call in between
        stream.close()
        assert tracker.finished.wait(5)
        assert wait_until(lambda: len(daemon.streaming_responses) == 0)
        assert p.plain_list() == [1, 2, 3]


def test_two_streams_interleaved(daemons, servertype, tracker):
    daemon, uri = serve_streamer(daemons)
    with Proxy(uri) as p:
        first = p.iterator()
        second = p.iterator()
        assert len(daemon.streaming_responses) == 2
        assert next(first) == "a"
        assert next(second) == "a"
        assert next(first) == "b"
        assert list(second) == ["b", "c"]
        assert list(first) == ["c"]
    assert wait_until(lambda: len(daemon.streaming_responses) == 0)


def test_daemon_shutdown_clears_streams(daemons, servertype, tracker):
    daemon, uri = serve_streamer(daemons)
    p = Proxy(uri)
    stream = p.generator(100)
    assert next(stream) == 0
    p._pyroRelease()
    daemon.shutdown()
    assert daemon.streaming_responses == {}
    assert tracker.finished.wait(5)
    del stream
