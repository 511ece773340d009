"""Where calls run, inside one process: every feature on both paths (inline and on pool threads), the
marks and settings that choose, the thread pool's bound, oneway limits, the blocking detector, and the
client following the program it is used in.

This test process is not monkey-patched, so CALL_EXECUTION "auto" means threads here; the whole suite
also runs patched (tests/test_under_monkeypatch.py), where "auto" means inline.
"""

import itertools
import logging
import threading
import time
import uuid

import gevent
import gevent.monkey
import pytest

import geopyro.api as api
from geopyro import errors, execution, program, socketutil
from geopyro.callcontext import current_context
from support import wait_until

real_thread_id = gevent.monkey.get_original("_thread", "get_ident")


@pytest.fixture(params=["inline", "thread"])
def execution_mode(request, clean_config):
    """Run the test with every call forced inline, then forced onto pool threads."""
    clean_config.CALL_EXECUTION = request.param
    return request.param


def loop_thread(daemon):
    assert wait_until(lambda: daemon.transportServer._loop.running)
    return daemon.transportServer._loop.thread


@api.expose
class Probe:
    def where(self):
        return real_thread_id()

    def context(self):
        ctx = current_context
        ctx.response_annotations["RESP"] = b"from the method"
        return {"correlation_id": str(ctx.correlation_id), "annotation": bytes(ctx.annotations["XTRA"]).decode(),
                "client_sock_addr": list(ctx.client_sock_addr), "client_peer": list(ctx.client.getpeername()),
                "seq": ctx.seq}

    def identity(self):
        return {"id": self._pyroId, "daemon_location": self._pyroDaemon.locationStr}

    def child(self):
        child = Child()
        self._pyroDaemon.register(child)
        return child  # goes out as a proxy (autoproxy)

    def call_back(self, listener, value):
        return listener.answer(value) + 1

    def numbers(self, count):
        for number in range(count):
            yield number

    def fail(self):
        return self._failing_helper()

    def _failing_helper(self):
        raise ValueError("failed inside the server")

    def stop_daemon(self):
        self._pyroDaemon.shutdown()
        return "stopping"


@api.expose
class Child:
    def name(self):
        return "child"


@api.expose
class Listener:
    def answer(self, value):
        return value * 10


def test_calls_run_inline_or_on_threads(daemons, servertype, execution_mode):
    daemon = daemons.start()
    uri = daemon.register(Probe())
    with api.Proxy(uri) as probe:
        ran_on = probe.where()
    if execution_mode == "inline":
        assert ran_on == loop_thread(daemon)
    else:
        assert ran_on != loop_thread(daemon)


def test_call_context_both_ways(daemons, servertype, execution_mode):
    uri = daemons.serve(Probe())
    correlation = uuid.uuid4()
    with api.Proxy(uri) as probe:
        current_context.correlation_id = correlation
        current_context.annotations = {"XTRA": b"sent along"}
        seen = probe.context()
        assert bytes(current_context.response_annotations["RESP"]) == b"from the method"
        local = list(probe._pyroConnection.sock.getsockname())
    assert seen["correlation_id"] == str(correlation)
    assert seen["annotation"] == "sent along"
    assert seen["client_sock_addr"] == local == seen["client_peer"]


def test_instance_modes_and_creator(daemons, servertype, execution_mode):
    made = []

    def creator(clazz):
        instance = clazz()
        made.append((clazz.__name__, real_thread_id()))
        return instance

    serials = itertools.count()
    classes = {}
    for mode in ("session", "single", "percall"):
        @api.behavior(instance_mode=mode, instance_creator=creator)
        @api.expose
        class Counted:
            def __init__(self):
                self.serial = next(serials)  # not id(): a collected instance's id comes back

            def me(self):
                return self.serial
        Counted.__name__ = mode
        classes[mode] = Counted
    daemon = daemons.start()
    uris = {mode: daemon.register(clazz) for mode, clazz in classes.items()}
    seen = {}
    for mode, uri in uris.items():
        for _ in range(2):  # two proxies (sessions), two calls each
            with api.Proxy(uri) as proxy:
                seen.setdefault(mode, []).extend([proxy.me(), proxy.me()])
    assert len(set(seen["session"])) == 2 and seen["session"][0] == seen["session"][1]
    assert len(set(seen["single"])) == 1
    assert [name for name, _ in made].count("percall") == 4
    creating_threads = {thread for _, thread in made}
    if execution_mode == "inline":
        assert creating_threads == {loop_thread(daemon)}  # user code: made where the call runs
    else:
        assert loop_thread(daemon) not in creating_threads


def test_pyro_attributes_and_autoproxy(daemons, servertype, execution_mode):
    daemon = daemons.start()
    uri = daemon.register(Probe(), "probe")
    with api.Proxy(uri) as probe:
        assert probe.identity() == {"id": "probe", "daemon_location": daemon.locationStr}
        child = probe.child()
        assert isinstance(child, api.Proxy)
        with child:
            assert child.name() == "child"


def test_callback_into_the_caller_from_the_call(daemons, servertype, execution_mode):
    """The method calls back to a listener object the client serves, while the client waits for the call."""
    uri = daemons.serve(Probe())
    listener_daemon = daemons.start()  # the client's own daemon
    listener_uri = listener_daemon.register(Listener())
    with api.Proxy(uri) as probe, api.Proxy(listener_uri) as listener:
        assert probe.call_back(listener, 4) == 41


def test_streamed_results_and_batches(daemons, servertype, execution_mode):
    uri = daemons.serve(Probe())
    with api.Proxy(uri) as probe:
        assert list(probe.numbers(5)) == [0, 1, 2, 3, 4]
        batch = probe._pyroBatch()
        batch.where()
        batch.identity()
        batch.fail()
        results = batch()
        assert isinstance(next(results), int)
        assert "id" in next(results)
        with pytest.raises(ValueError, match="failed inside the server"):
            next(results)


def test_errors_traceback_and_error_handler(daemons, servertype, execution_mode):
    daemon = daemons.start()
    uri = daemon.register(Probe())
    handled = []
    daemon.methodcall_error_handler = lambda d, client, method, vargs, kwargs, exc: handled.append(
        (method.__name__, type(exc).__name__, real_thread_id()))
    with api.Proxy(uri) as probe:
        with pytest.raises(ValueError, match="failed inside the server") as info:
            probe.fail()
    assert "_failing_helper" in "".join(info.value._pyroTraceback)
    assert handled and handled[0][:2] == ("fail", "ValueError")
    assert (handled[0][2] == loop_thread(daemon)) is (execution_mode == "inline")


def test_shutdown_from_inside_a_method(daemons, servertype, execution_mode):
    daemon = daemons.start()
    uri = daemon.register(Probe())
    loop = daemons.running[-1][1]
    with api.Proxy(uri) as probe:
        assert probe.stop_daemon() == "stopping"  # the caller still gets its reply
    loop.join(10)
    assert not loop.is_alive()
    assert daemon.transportServer is None


# --- what decides where a call runs ---

@api.expose
class Marked:
    def plain(self):
        return real_thread_id()

    @api.cooperative
    def cooperative(self):
        return real_thread_id()

    @api.blocking
    def blocking(self):
        return real_thread_id()


@api.behavior(execution="inline")
@api.expose
class InlineClass:
    def method(self):
        return real_thread_id()


def test_marks_override_the_automatic_choice(daemons, servertype):
    daemon = daemons.start()  # "auto" in an unpatched process: threads by default, the loop's thread on multiplex
    uri = daemon.register(Marked())
    inline_uri = daemon.register(InlineClass)
    loop = loop_thread(daemon)
    with api.Proxy(uri) as marked, api.Proxy(inline_uri) as inline_class:
        assert (marked.plain() == loop) is (servertype == "multiplex")
        assert marked.blocking() != loop
        assert marked.cooperative() == loop
        assert inline_class.method() == loop


@pytest.mark.parametrize("forced", ["inline", "thread"])
def test_call_execution_setting_overrides_the_marks(daemons, clean_config, forced):
    clean_config.CALL_EXECUTION = forced
    daemon = daemons.start()
    uri = daemon.register(Marked())
    loop = loop_thread(daemon)
    with api.Proxy(uri) as marked:
        for method in ("plain", "cooperative", "blocking"):
            assert (getattr(marked, method)() == loop) is (forced == "inline"), method


def test_decisions(clean_config):
    def runner(**items):
        settings = clean_config.copy()
        for name, value in items.items():
            setattr(settings, name, value)
        return execution.CallRunner(settings)
    assert runner().where(Marked, "plain") == "thread"  # this process is not patched
    assert runner().where(Marked, "cooperative") == "inline"
    assert runner(SERVERTYPE="thread").where(Marked, "plain") == "thread"
    assert runner(SERVERTYPE="thread").where(Marked, "cooperative") == "inline"
    assert runner(CALL_EXECUTION="inline").where(Marked, "blocking") == "inline"
    assert runner(CALL_EXECUTION="thread").where(InlineClass, "method") == "thread"
    for hostile_name in (None, 42, ["x"], {"a": 1}, "_private", "no such method"):
        assert runner().where(Marked, hostile_name) == "thread"
    with pytest.raises(ValueError, match="invalid CALL_EXECUTION 'greenlet'"):  # checked by the daemon's runner
        runner(CALL_EXECUTION="greenlet")
    with pytest.raises(ValueError):
        api.behavior(execution="sometimes")
    with pytest.raises(ValueError, match="threadpool"):
        runner(THREADPOOL_SIZE=0)
    # multiplex: unmarked calls on the loop's thread, as Pyro5's; oneway ones in the background on a thread
    assert runner(SERVERTYPE="multiplex").where(Marked, "plain") == "inline"
    assert runner(SERVERTYPE="multiplex").where(Marked, "plain", background=True) == "thread"
    assert runner(SERVERTYPE="multiplex").where(Marked, "blocking") == "thread"
    assert runner(SERVERTYPE="multiplex", CALL_EXECUTION="thread").where(Marked, "plain") == "thread"
    lenient = runner(SERVERTYPE="multiplex", THREADPOOL_SIZE=None)  # (as Pyro5's: its calls need no pool)
    with pytest.raises(TypeError):
        lenient.check_pool_size()  # but a call that needs a thread fails as Pyro5's pool would
    with pytest.raises(TypeError):
        runner(THREADPOOL_SIZE=None)


# --- the thread pool and oneway calls ---

class Gate:
    def __init__(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.done = 0
        self.release = threading.Event()

    def enter_and_wait(self):
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            self.release.wait(20)
        finally:
            with self.lock:
                self.inside -= 1
                self.done += 1


def gate_service(gate):
    @api.expose
    class GateService:
        def wait(self):
            gate.enter_and_wait()
            return "through"

        @api.oneway
        def wait_oneway(self):
            gate.enter_and_wait()

        def ping(self):
            return "pong"
    return GateService()


def test_calls_beyond_the_pool_wait_their_turn(daemons, clean_config):
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 3, 1
    gate = Gate()
    uri = daemons.serve(gate_service(gate))
    results = []
    callers = [threading.Thread(target=lambda: results.append(api.Proxy(uri).wait())) for _ in range(6)]
    for caller in callers:
        caller.start()
    assert wait_until(lambda: gate.inside == 3)
    with api.Proxy(uri) as other:  # connections are never refused for it; the pool is full, so this waits too
        other._pyroBind()
        gate.release.set()
        assert other.ping() == "pong"
    for caller in callers:
        caller.join(20)
    assert results == ["through"] * 6
    assert gate.peak == 3


def test_oneway_flood_waits_on_its_own_connection_only(daemons, clean_config):
    """Greenlet server: a client past its share of the oneway threads is no longer read; others are."""
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 2, 1  # one oneway thread per connection
    gate = Gate()
    daemon = daemons.start()
    uri = daemon.register(gate_service(gate))
    with api.Proxy(uri) as flood, api.Proxy(uri) as other:
        for _ in range(5):
            flood.wait_oneway()
        assert wait_until(lambda: gate.inside == 1)
        assert other.ping() == "pong"  # another connection is served meanwhile
        other.wait_oneway()  # and its oneway call gets the second thread
        assert wait_until(lambda: gate.inside == 2)
        gate.release.set()
        assert wait_until(lambda: gate.done == 6)  # none lost
        assert flood.ping() == "pong"


def test_oneway_flood_on_multiplex_sets_its_connection_aside(daemons, clean_config):
    """Multiplex server (its loop must never wait): a connection with all the oneway calls it may have in
    progress is not read until they make room; the loop serves the others meanwhile, and nothing is lost."""
    clean_config.SERVERTYPE = "multiplex"
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 2, 1  # room for one per connection
    gate = Gate()
    uri = daemons.serve(gate_service(gate))
    with api.Proxy(uri) as flood, api.Proxy(uri) as other:
        for _ in range(20):
            flood.wait_oneway()
        assert wait_until(lambda: gate.inside == 1)
        for _ in range(3):
            assert other.ping() == "pong"  # the loop goes on
        gate.release.set()
        assert wait_until(lambda: gate.done == 20)  # none dropped
        assert gate.peak == 1, gate.peak  # the flood never had more than its share running
        assert flood.ping() == "pong"


def test_oneway_calls_past_the_backlog_are_dropped_with_a_warning(daemons, clean_config, monkeypatch, caplog):
    """Multiplex server, many connections: past the running limit calls queue, past the queue they are
    dropped, and one warning says so; the loop never waits for room."""
    monkeypatch.setattr(execution, "ONEWAY_BACKLOG", 2)
    clean_config.SERVERTYPE = "multiplex"
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 2, 1
    gate = Gate()
    uri = daemons.serve(gate_service(gate))
    caplog.set_level(logging.WARNING, logger="geopyro.execution")
    senders = [api.Proxy(uri) for _ in range(5)]
    try:
        for number, sender in enumerate(senders):
            sender.wait_oneway()
            if number == 1:
                assert wait_until(lambda: gate.inside == 2)  # two run; the next two queue, the fifth is dropped
        with api.Proxy(uri) as other:
            assert other.ping() == "pong"  # the loop answers: it did not wait for room
            assert wait_until(lambda: any("dropped" in r.getMessage() for r in caplog.records))
            gate.release.set()
            assert wait_until(lambda: gate.done == 4)
            assert other.ping() == "pong"
    finally:
        for sender in senders:
            sender._pyroRelease()
    time.sleep(0.1)
    assert gate.done == 4  # the fifth was dropped
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and "GateService.wait_oneway" in dropped[0].getMessage()


# --- the blocking detector ---

def test_blocking_detector_never_formats_thread_stacks():
    """gevent's own check walks every running thread's frames for its report (which can crash CPython
    3.11+); the monitor we start runs a check that only notifies which greenlet blocked."""
    from geopyro import blockwatch
    seen = {}

    def in_a_thread():
        hub = gevent.get_hub()
        blockwatch.watch_this_hub(0.05)
        try:
            monitor = hub.periodic_monitoring_thread
            seen["functions"] = [entry.function for entry in monitor.monitoring_functions()]
            seen["gevent_check"] = monitor.monitor_blocking
        finally:
            blockwatch.unwatch_this_hub()

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(10)
    assert len(seen["functions"]) == 1
    assert seen["functions"][0] != seen["gevent_check"]


def test_blocking_detector_names_a_method_that_blocks_the_loop(daemons, clean_config, caplog):
    clean_config.CALL_EXECUTION = "inline"
    clean_config.BLOCKING_WARNING = 0.05

    @api.expose
    class Stalling:
        def stall(self):
            time.sleep(0.4)  # this process is not patched: the hub stops here

        def polite(self):
            gevent.sleep(0.4)  # yields: the hub keeps running

    caplog.set_level(logging.WARNING, logger="geopyro.blockwatch")
    uri = daemons.serve(Stalling())
    with api.Proxy(uri) as proxy:
        proxy.polite()
        proxy.stall()
        proxy.stall()
    warnings = [r.getMessage() for r in caplog.records if r.name == "geopyro.blockwatch"]
    assert len(warnings) == 1, warnings  # one per method
    assert "Stalling.stall" in warnings[0] and "blocked the gevent event loop" in warnings[0]
    assert "@blocking" in warnings[0] and "patch_all" in warnings[0]


def test_blocking_detector_off(daemons, clean_config, caplog):
    clean_config.CALL_EXECUTION = "inline"
    clean_config.BLOCKING_WARNING = 0

    @api.expose
    class StallingUnwatched:
        def stall(self):
            time.sleep(0.3)

    caplog.set_level(logging.WARNING, logger="geopyro.blockwatch")
    with api.Proxy(daemons.serve(StallingUnwatched())) as proxy:
        proxy.stall()
    assert not [r for r in caplog.records if r.name == "geopyro.blockwatch"]


# --- the client follows the program ---

def in_fresh_thread(func):
    """Run ``func`` in a new plain thread (no gevent hub there yet); return its result or raise its error."""
    outcome = {}

    def run():
        try:
            outcome["value"] = func()
        except BaseException as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_plain_code_gets_plain_blocking_sockets_and_greenlets_cooperative_ones(daemons, servertype):
    uri = daemons.serve(Probe())

    def plain_then_green():
        seen = {"plain_cooperates": program.client_cooperates()}
        with api.Proxy(uri) as probe:
            probe.where()
            seen["plain_socket"] = type(probe._pyroConnection.sock).__module__

            def in_greenlet():
                seen["green_cooperates"] = program.client_cooperates()
                probe._pyroClaimOwnership()
                probe.where()  # the same connection, now waited for through this thread's hub
                seen["green_socket"] = type(probe._pyroConnection.sock).__module__
            gevent.spawn(in_greenlet).get()
            probe._pyroClaimOwnership()
            probe.where()
            seen["plain_again"] = type(probe._pyroConnection.sock).__module__
        return seen

    seen = in_fresh_thread(plain_then_green)
    assert seen == {"plain_cooperates": False, "plain_socket": "socket", "green_cooperates": True,
                    "green_socket": "gevent._socket3", "plain_again": "socket"}


def test_a_thread_serving_a_daemon_cooperates(clean_config):
    """Plain code on a thread whose hub serves a daemon waits through the hub (else it could deadlock)."""
    def serve_and_call():
        daemon = api.Daemon(host="127.0.0.1")
        uri = daemon.register(Probe())
        gevent.spawn(daemon.requestLoop)
        try:
            with api.Proxy(uri) as probe:
                served_on = probe.where()
                return program.client_cooperates(), type(probe._pyroConnection.sock).__module__, served_on
        finally:
            daemon.shutdown()
    cooperates, socket_module, served_on = in_fresh_thread(serve_and_call)
    assert cooperates and socket_module == "gevent._socket3"
    assert isinstance(served_on, int)  # a blocking socket here would have stalled the daemon: no answer


def test_futures_of_plain_code_run_on_threads(daemons, servertype):
    """Made from plain code, an async call progresses while the caller never yields to gevent."""
    @api.expose
    class Slow:
        def slow(self, value):
            time.sleep(0.2)
            return value

    uri = daemons.serve(Slow())

    def use_future():
        with api.Proxy(uri) as proxy:
            proxy._pyroAsync()
            future = proxy.slow(7)
            deadline = time.monotonic() + 10
            while not future.ready and time.monotonic() < deadline:
                time.sleep(0.01)  # plain sleeps: a greenlet-based future would never run
            return future.ready, future.value, future.then(lambda value: value + 1).value
    assert in_fresh_thread(use_future) == (True, 7, 8)


def test_tls_client_in_plain_code(tmp_path, daemons, clean_config):
    """A TLS connection made from plain code uses the standard library's ssl (blocking), and works."""
    import certs
    paths = certs.make_certs(tmp_path)
    for name, value in certs.server_tls_config(paths, require_client_cert=False).items():
        setattr(clean_config, name, value)
    uri = daemons.serve(Probe())
    for name, value in certs.client_tls_config(paths, client=None).items():
        setattr(clean_config, name, value)

    def call():
        with api.Proxy(uri) as probe:
            probe.where()
            return type(probe._pyroConnection.sock).__module__
    assert in_fresh_thread(call) == "ssl"


def test_socket_conversion_keeps_the_timeout():
    import socket
    left, right = socket.socketpair()
    with left, right:
        conn = socketutil.SocketConnection(socketutil.to_gevent_socket(left))
        conn.timeout = 2.5
        conn.follow(cooperative=False)
        assert conn.timeout == 2.5
        conn.follow(cooperative=True)
        assert conn.timeout == 2.5


def test_errors_of_thread_calls_are_not_printed_by_gevent(daemons, clean_config, capfd):
    """A failing call on a pool thread goes to the client only; gevent's hub does not print it."""
    clean_config.CALL_EXECUTION = "thread"
    with api.Proxy(daemons.serve(Probe())) as probe:
        with pytest.raises(ValueError):
            probe.fail()
        with pytest.raises(AttributeError):
            probe._pyroInvoke("no_such_method", (), {})
    assert "Traceback" not in capfd.readouterr().err


# --- a connection's calls stay on one thread; what a session ties to its thread keeps working ---

def test_a_connection_keeps_its_thread_between_calls(daemons, clean_config, tmp_path):
    """As with Pyro5's thread per connection: an sqlite3 connection and a proxy made in a session's __init__
    work in the session's later calls, even with pauses between calls."""
    clean_config.CALL_EXECUTION = "thread"
    helper_uri = daemons.serve(Probe())

    @api.expose
    class ThreadBound:
        def __init__(self):
            import sqlite3
            self.db = sqlite3.connect(str(tmp_path / ("db%d.sqlite" % id(self))))  # usable by this thread only
            self.db.execute("create table t (x)")
            self.helper = api.Proxy(helper_uri)  # owned by this thread
            self.thread = real_thread_id()

        def use(self, value):
            self.db.execute("insert into t values (?)", (value,))
            self.helper.where()
            return real_thread_id() == self.thread, self.db.execute("select count(*) from t").fetchone()[0]

    uri = daemons.serve(ThreadBound)
    proxies = [api.Proxy(uri) for _ in range(3)]
    try:
        for round_number in range(1, 4):
            for proxy in proxies:
                assert proxy.use(round_number) == (True, round_number)
            time.sleep(0.3)
    finally:
        for proxy in proxies:
            proxy._pyroRelease()


def test_idle_threads_are_taken_back_for_waiting_calls(daemons, clean_config):
    """More connections than threads: each call still gets a thread, from a connection that waits idle.

    Many rounds, because the way this went wrong was a race: a call queued while both threads were between
    two calls, and both then lingered on their own connections for good."""
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 2, 1
    uri = daemons.serve(Probe())
    proxies = [api.Proxy(uri) for _ in range(5)]
    try:
        for proxy in proxies:
            proxy._pyroTimeout = 10  # a call nobody takes up fails here, instead of hanging the test
        for _ in range(40):
            for proxy in proxies:
                assert isinstance(proxy.where(), int)
    finally:
        for proxy in proxies:
            proxy._pyroRelease()


@api.expose
class Door:
    """wait() blocks until open() is called (or 20 s pass)."""

    def __init__(self):
        self.opened = threading.Event()

    def wait(self):
        return self.opened.wait(20)

    def open(self):
        self.opened.set()
        return True

    def ping(self):
        return "pong"


def _two_threads_lingering(daemons, clean_config):
    """A daemon with a pool of two threads, each lingering on its own client's connection; (daemon, gate,
    the two proxies, the longest lingering first)."""
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 2, 1
    gate = Door()
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(gate)
    daemons.start(daemon)
    runner = daemon._calls
    first, second = api.Proxy(uri), api.Proxy(uri)
    assert first.ping() == "pong"
    assert wait_until(lambda: len(runner._lingering) == 1)
    assert second.ping() == "pong"
    assert wait_until(lambda: len(runner._lingering) == 2)
    return daemon, gate, uri, (first, second)


def _in_thread(proxy, method):
    """Call ``proxy.method()`` on a thread of its own; (thread, results list)."""
    results = []

    def call():
        proxy._pyroClaimOwnership()
        proxy._pyroTimeout = 10  # a call nobody takes up fails the test instead of hanging it
        try:
            results.append(getattr(proxy, method)())
        except Exception as exc:  # noqa: BLE001 - the test reads it
            results.append(exc)
        finally:
            proxy._pyroRelease()

    thread = threading.Thread(target=call)
    thread.start()
    return thread, results


def test_a_thread_woken_while_it_takes_a_request_passes_the_wake_on(daemons, clean_config, monkeypatch):
    """A call that needs a thread wakes the longest lingering one just as a request of its own connection
    arrives: that thread serves its request, and the other lingering thread gives its connection back."""
    armed, took_request, proceed = threading.Event(), threading.Event(), threading.Event()
    real_wait_readable = execution.CallRunner.wait_readable

    def wait_readable(self, fd, lingerer, timeout):
        readable = real_wait_readable(self, fd, lingerer, timeout)
        if readable and armed.is_set() and not took_request.is_set():
            took_request.set()
            assert proceed.wait(10)  # the window: the waiting call wakes this thread now
        return readable

    monkeypatch.setattr(execution.CallRunner, "wait_readable", wait_readable)  # (before the threads linger)
    daemon, gate, uri, (first, second) = _two_threads_lingering(daemons, clean_config)
    runner = daemon._calls
    armed.set()
    waiter, waited = _in_thread(first, "wait")  # the longest lingering thread takes this request...
    assert took_request.wait(10)
    opener, opened = _in_thread(api.Proxy(uri), "open")  # ... while this call wakes it to get a thread
    try:
        assert wait_until(lambda: runner._waiting == 1)
    finally:
        proceed.set()
        opener.join(15)
        gate.opened.set()
        waiter.join(15)
    assert opened == [True], "the call that needed a thread: %r" % opened
    assert waited == [True]
    second._pyroRelease()


def test_threads_between_two_calls_do_not_linger_while_a_call_waits(daemons, clean_config, monkeypatch):
    """Both threads have answered and are about to linger when a third connection's call comes: neither
    may start lingering while it waits."""
    daemon, gate, uri, (first, second) = _two_threads_lingering(daemons, clean_config)
    runner = daemon._calls
    about_to_linger, proceed = threading.Semaphore(0), threading.Event()
    real_start_lingering = execution.CallRunner.start_lingering

    def start_lingering(self):
        about_to_linger.release()
        assert proceed.wait(10)
        return real_start_lingering(self)

    monkeypatch.setattr(execution.CallRunner, "start_lingering", start_lingering)
    calls = [_in_thread(proxy, "ping") for proxy in (first, second)]
    try:
        for _ in calls:
            assert about_to_linger.acquire(timeout=10)  # both threads answered, neither lingers yet
        for thread, _ in calls:
            thread.join(10)
        third, answered = _in_thread(api.Proxy(uri), "ping")
        assert wait_until(lambda: runner._waiting == 1)  # queued, and counted as waiting
    finally:
        proceed.set()
    third.join(15)
    assert answered == ["pong"], "the third connection's call: %r" % answered
    assert [results for _, results in calls] == [["pong"], ["pong"]]


@api.expose
class Holder:
    """Calls that block on an event of the test's until it lets them go."""

    def __init__(self):
        self.running = threading.Event()
        self.release = threading.Event()

    def hold(self):
        self.running.set()
        assert self.release.wait(20)
        return "held"


@pytest.fixture
def one_thread_holder(daemons, clean_config, monkeypatch, caplog):
    """A Holder served by a daemon with one pool thread, a 0.2 s slow-thread warning, and its log captured."""
    clean_config.CALL_EXECUTION = "thread"
    clean_config.THREADPOOL_SIZE, clean_config.THREADPOOL_SIZE_MIN = 1, 1
    monkeypatch.setattr(execution, "SLOW_THREAD_WARNING", 0.2)
    caplog.set_level(logging.WARNING, logger="geopyro.execution")
    holder = Holder()
    return holder, daemons.serve(holder)


def test_a_call_waiting_long_for_a_thread_is_warned_about(one_thread_holder, caplog):
    holder, uri = one_thread_holder
    results = []

    def call(method):
        with api.Proxy(uri) as proxy:
            results.append(getattr(proxy, method)())

    blocker = threading.Thread(target=call, args=("hold",))
    blocker.start()
    assert holder.running.wait(10)
    waiter = threading.Thread(target=call, args=("hold",))  # the only thread is busy: this call waits
    waiter.start()
    try:
        assert wait_until(lambda: any("pool threads" in r.getMessage() for r in caplog.records))
    finally:
        holder.release.set()
        blocker.join(10)
        waiter.join(10)
    assert results == ["held", "held"]
    warning = next(r.getMessage() for r in caplog.records if "pool threads" in r.getMessage())
    assert "THREADPOOL_SIZE" in warning


def test_a_long_call_that_got_its_thread_at_once_is_not_warned_about(one_thread_holder, caplog, monkeypatch):
    holder, uri = one_thread_holder
    timers_done = []
    real_warn = execution._warn_no_thread

    def warn_no_thread(ticket, size):
        real_warn(ticket, size)
        timers_done.append(ticket)

    monkeypatch.setattr(execution, "_warn_no_thread", warn_no_thread)
    def call_hold():
        with api.Proxy(uri) as busy:
            busy.hold()

    with api.Proxy(uri) as idle:
        holder.release.set()
        assert idle.hold() == "held"  # the only thread now lingers on `idle`'s connection
        holder.release.clear()
        holder.running.clear()
        caller = threading.Thread(target=call_hold)
        caller.start()  # takes the thread back from `idle` at once, then runs past the warning time
        try:
            assert holder.running.wait(10)
            assert wait_until(lambda: timers_done)  # the warning's timer ran while the call still ran...
        finally:
            holder.release.set()
            caller.join(10)
    assert not [r for r in caplog.records if "pool threads" in r.getMessage()]  # ... and said nothing


def test_loop_condition_ending_leaves_connections_alone(clean_config):
    """When loopCondition ends requestLoop, nothing is cut and a later requestLoop serves the same client."""
    clean_config.CALL_EXECUTION = "thread"
    clean_config.POLLTIMEOUT = 0.05
    stop = threading.Event()
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Probe())
    runs = []

    def serve_twice():
        for _ in range(2):
            began = time.monotonic()
            daemon.requestLoop(lambda: not stop.is_set())
            runs.append(time.monotonic() - began)
            stop.clear()

    loop = threading.Thread(target=serve_twice)
    loop.start()
    try:
        with api.Proxy(uri) as probe:
            probe.where()
            stop.set()
            assert wait_until(lambda: len(runs) == 1)
            assert isinstance(probe.where(), int)  # the same connection, served by the second requestLoop
            stop.set()
        loop.join(10)
        assert len(runs) == 2
    finally:
        daemon.close()
        loop.join(10)


def test_oneway_first_call_makes_its_instance_with_the_call_context(daemons, execution_mode):
    seen = []

    @api.expose
    class Remembers:
        def __init__(self):
            seen.append(("init", current_context.client is not None, current_context.client_sock_addr is not None))

        @api.oneway
        def fire(self):
            seen.append(("fire",))

    with api.Proxy(daemons.serve(Remembers)) as proxy:
        proxy.fire()
        assert wait_until(lambda: len(seen) == 2)
    assert seen == [("init", True, True), ("fire",)]


def test_stream_items_run_where_their_method_runs(daemons, clean_config):
    @api.expose
    class Streams:
        @api.cooperative
        def inline_numbers(self):
            for _ in range(3):
                yield real_thread_id()

        def thread_numbers(self):
            for _ in range(3):
                yield real_thread_id()

    daemon = daemons.start()
    uri = daemon.register(Streams())
    loop = loop_thread(daemon)
    with api.Proxy(uri) as proxy:
        assert set(proxy.inline_numbers()) == {loop}
        assert loop not in set(proxy.thread_numbers())


def test_sys_exit_in_a_method_ends_its_connection_not_the_server(daemons, servertype, execution_mode, caplog):
    import sys

    @api.expose
    class Quitter:
        def quit(self):
            sys.exit(3)

        def ping(self):
            return "pong"

    caplog.set_level(logging.WARNING, logger="geopyro.servers")
    uri = daemons.serve(Quitter())
    with api.Proxy(uri) as proxy:
        with pytest.raises(errors.ConnectionClosedError):
            proxy.quit()
    with api.Proxy(uri) as proxy:
        assert proxy.ping() == "pong"
    assert any("SystemExit" in r.getMessage() for r in caplog.records)


def test_execution_marks_of_unknown_names_are_not_remembered():
    from geopyro import exposure
    before = len(exposure._execution_marks)
    for number in range(1000):
        assert exposure.get_execution_mark(Marked, "no_such_method_%d" % number) is None
    assert len(exposure._execution_marks) <= before + 1


def test_connected_socket_proxy_moves_between_threads_and_leaves_the_fd_to_its_owner(daemons):
    import gc
    import socket
    left, right = socket.socketpair()
    daemon = api.Daemon(connected_socket=right)
    daemon.register(Probe(), "probe")
    daemons.start(daemon)
    loop = daemons.running[-1][1]
    proxy = api.Proxy("probe", connected_socket=left)
    try:
        assert isinstance(proxy.where(), int)

        def from_plain_thread():
            proxy._pyroClaimOwnership()
            return proxy.where()

        def from_greenlet_of_a_thread():
            def call():
                proxy._pyroClaimOwnership()
                return proxy.where()
            return gevent.spawn(call).get()

        assert isinstance(in_fresh_thread(from_plain_thread), int)
        assert isinstance(in_fresh_thread(from_greenlet_of_a_thread), int)
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()
        gc.collect()
        left.getsockname()  # still the user's, still open: no wrapper closed its descriptor
        assert left.fileno() >= 0
    finally:
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()
        left.close()
        loop.join(5)
        right.close()
    assert not loop.is_alive()


def test_a_multiplex_daemon_combined_into_a_greenlet_one_holds_up_none_of_its_connections(clean_config):
    """Its loop then shares a hub with the greenlet daemon: its calls leave that thread, as the greenlet
    daemon's do, so a blocked one does not stop the other daemon's clients."""
    release, waiting = threading.Event(), threading.Event()

    @api.expose
    class Blocker:
        def block(self):
            waiting.set()
            return release.wait(20)  # True: released by the test, not by the timeout

    @api.expose
    class Pinger:
        def ping(self):
            return "pong"

    clean_config.SERVERTYPE = "multiplex"
    multiplex = api.Daemon(host="127.0.0.1")
    clean_config.SERVERTYPE = "greenlet"
    greenlet = api.Daemon(host="127.0.0.1")
    greenlet.combine(multiplex)
    blocked_uri, ping_uri = multiplex.register(Blocker), greenlet.register(Pinger)
    loop = threading.Thread(target=greenlet.requestLoop, daemon=True)
    loop.start()
    outcome = []
    try:
        def blocked_call():
            with api.Proxy(blocked_uri) as proxy:
                outcome.append(proxy.block())

        caller = threading.Thread(target=blocked_call)
        caller.start()
        assert waiting.wait(10)
        with api.Proxy(ping_uri) as pinger:
            pinger._pyroTimeout = 15
            assert pinger.ping() == "pong"  # while block() still waits
        release.set()
        caller.join(20)
        assert outcome == [True]
    finally:
        release.set()
        greenlet.shutdown()
        loop.join(10)
        greenlet.close()
        multiplex.close()


def test_a_multiplex_daemon_takes_an_unusable_pool_size_until_a_call_needs_the_pool(clean_config):
    """As Pyro5's multiplex server, which has no pool: its calls run; a @blocking one gets the pool's error as
    its reply (the connection stays), a oneway one runs on a thread of its own (as Pyro5 runs each)."""
    ran = threading.Event()

    @api.expose
    class Marked:
        def plain(self):
            return "plain"

        @api.blocking
        def blocking(self):
            return "blocking"

        @api.oneway
        def fire(self):
            ran.set()

    clean_config.SERVERTYPE = "multiplex"
    clean_config.THREADPOOL_SIZE = None
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Marked)
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    try:
        with api.Proxy(uri) as proxy:
            proxy._pyroTimeout = 10
            assert proxy.plain() == "plain"
            with pytest.raises(TypeError):
                proxy.blocking()
            proxy.fire()
            assert ran.wait(10)
            assert proxy.plain() == "plain"  # the same connection
    finally:
        daemon.shutdown()
        loop.join(10)
        daemon.close()
    clean_config.SERVERTYPE = "greenlet"
    with pytest.raises(TypeError):
        api.Daemon(host="127.0.0.1")  # a server whose calls need the pool checks it when made, as Pyro5's


def test_oneway_threads_of_their_own_take_their_gevent_hub_with_them(clean_config):
    """A oneway call that uses gevent on a thread started for it (an outside events() loop drives the daemon)
    leaves no hub, and so no descriptors, behind."""
    import os
    import select

    @api.expose
    class Touch:
        def __init__(self):
            self.done = []

        @api.oneway
        def fire(self, n):
            gevent.sleep(0)  # this thread's own hub
            self.done.append(n)

    def descriptors():
        return len(os.listdir("/proc/self/fd"))

    clean_config.SERVERTYPE = "multiplex"
    touch = Touch()
    with api.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(touch)
        before = descriptors()

        def call():
            with api.Proxy(uri) as proxy:
                for n in range(100):
                    proxy.fire(n)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 60
        while (caller.is_alive() or len(touch.done) < 100) and time.monotonic() < deadline:
            ready, _, _ = select.select(daemon.sockets, [], [], 0.05)
            if ready:
                daemon.events(ready)
        caller.join(10)
        assert len(touch.done) == 100
        assert wait_until(lambda: descriptors() <= before + 10, timeout=10)  # (each hub left behind held 2)
