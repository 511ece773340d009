"""Execution promises of the server types: where and when remote calls run.

Each check quotes the words of the servers chapter it verifies (the Pyro5 manual, Servers
chapter, section "Server types and Concurrency model"; its plain-text and reStructuredText
forms say the same there): ``catalogue.Citation.quote``.

Every check is deterministic: calls meet in the server on ``conformance.gate`` events that
only another call opens, never on a sleep being long enough. Every wait has a deadline (a
server-side timeout, a ``_pyroTimeout`` on the proxy, a join deadline here), so a server that
does not keep the promise makes the check fail with a message, never hang.
"""

import threading
import time

from . import objects as o
from .catalogue import PYRO5_SERVERS as MANUAL
from .catalogue import check, expect

CONCURRENCY_MODEL = MANUAL("Server types and Concurrency model")

THREADED_BLOCKING = MANUAL(
    CONCURRENCY_MODEL.section, "threaded server",
    quote="Every proxy on a client that connects to the daemon will be assigned to a thread to handle the remote "
          "method calls. This way multiple calls can potentially be processed concurrently. [...] With the "
          "threadpool server [...] you don't have to worry much about blocking I/O in your remote calls.")
THREADED_ACCEPT = MANUAL(
    CONCURRENCY_MODEL.section, "threaded server",
    quote="This server uses a dynamically adjusted thread pool to handle incoming proxy connections. [...] Every "
          "proxy on a client that connects to the daemon will be assigned to a thread")
ONEWAY_THREADED = MANUAL(
    CONCURRENCY_MODEL.section, "note: ONEWAY_THREADED",
    quote="If the ONEWAY_THREADED config item is enabled (it is by default), oneway method calls will be executed "
          "in a separate worker thread, regardless of the server type you're using.")
MULTIPLEX_SEQUENTIAL = MANUAL(
    CONCURRENCY_MODEL.section, "multiplexed server",
    quote="This server uses a connection multiplexer to process all remote method calls sequentially. [...] It "
          "means only one method call is running at a time, so if it takes a while to complete, all other calls "
          "are waiting for their turn (even when they are from different proxies).")

MEET_WAIT = 10.0        # seconds a call waits in the server for its partner (the window in which they must meet)
SEQUENTIAL_WAIT = 1.0   # the same on the multiplex server, where the partner can never come in time
BLOCKED_WAIT = 20.0     # seconds a gate.wait() blocks at most in the server when nobody opens it
CALL_TIMEOUT = 30.0     # _pyroTimeout of a proxy making a blocking call (longer than the server-side waits)
ANSWER_TIMEOUT = 10.0   # _pyroTimeout of a proxy whose calls must be answered while another call blocks
DEADLINE = 10.0         # seconds to wait for a state the server reports (status polls)
SLACK = 15.0            # beyond the server-side wait, for a caller thread to report back


class _Caller(threading.Thread):
    """One client connection on a thread of its own: it makes its proxy there (a Pyro5 proxy belongs to
    the thread that made it), connects, optionally waits for its partners, runs ``fn(proxy)`` and
    releases the proxy. ``outcome()`` waits for it with a deadline."""

    def __init__(self, ctx, uri, label, fn, proxy_timeout, barrier=None):
        super().__init__(name="conformance-" + label, daemon=True)
        self.ctx, self.uri, self.label, self.fn = ctx, uri, label, fn
        self.proxy_timeout, self.barrier = proxy_timeout, barrier
        self.result = self.error = None
        self.done = threading.Event()

    def run(self):
        try:
            proxy = self.ctx.c.Proxy(self.uri)
            proxy._pyroTimeout = self.proxy_timeout
            try:
                proxy._pyroBind()
                if self.barrier is not None:
                    self.barrier.wait(DEADLINE)
                self.result = self.fn(proxy)
            finally:
                proxy._pyroRelease()
        except Exception as exc:  # noqa: BLE001 - reported by outcome()
            self.error = exc
        finally:
            self.done.set()

    def outcome(self, timeout):
        if not self.done.wait(timeout):
            raise AssertionError("%s: expected the call to return within %.0fs; it is still running"
                                 % (self.label, timeout))
        if self.error is not None:
            raise AssertionError("%s: expected a result, got %s: %s"
                                 % (self.label, type(self.error).__name__, self.error)) from self.error
        return self.result


def _callers(ctx, fns, proxy_timeout):
    """Start one _Caller per (label, fn); they call together once every one of them is connected."""
    uri = ctx.uri(o.GATE)       # here, not in the threads: the server pool is not thread-safe
    barrier = threading.Barrier(len(fns))
    callers = [_Caller(ctx, uri, label, fn, proxy_timeout, barrier) for label, fn in fns]
    for caller in callers:
        caller.start()
    return callers


def _answered(ctx, fn, what, timeout):
    """fn()'s result; a communication error (a proxy timeout: the server did not answer) fails the check."""
    try:
        return fn()
    except ctx.c.errors.CommunicationError as exc:
        raise AssertionError("%s: expected an answer within %.0fs, got %s: %s"
                             % (what, timeout, type(exc).__name__, exc)) from exc


def _poll_status(ctx, proxy, token, wanted, what):
    """Poll gate.status(token) until it is ``wanted`` (or the deadline); fail saying what was seen."""
    deadline = time.monotonic() + DEADLINE
    while True:
        seen = _answered(ctx, lambda: proxy.status(token), what + " (gate.status)", proxy._pyroTimeout)
        if seen == wanted:
            return
        if time.monotonic() >= deadline:
            raise AssertionError("%s: expected status %r within %.0fs, last seen %r" % (what, wanted, DEADLINE, seen))
        time.sleep(0.02)


def _proxy(ctx, timeout):
    p = ctx.proxy(o.GATE)
    p._pyroTimeout = timeout
    return p


def _open_on_failure(ctx, tokens):
    """After a failed check: open the gates it may have left closed, so the shared server's calls end
    now rather than at their timeouts (best effort: a server that serves nobody stays blocked)."""
    try:
        p = ctx.c.Proxy(ctx.uri(o.GATE))
        p._pyroTimeout = 3.0
        try:
            for token in tokens:
                p.open(token)
        finally:
            p._pyroRelease()
    except Exception:  # noqa: BLE001 - best effort, the check's own failure is what counts
        pass


# ---------------------------------------------------------------- threaded server ---------

def _overlap(ctx, method):
    """Two connections each call ``method`` (open my gate, block until the other's gate opens)."""
    key = ctx.token()
    callers = _callers(ctx, [
        ("connection A: gate.%s(me='a', other='b')" % method, lambda p: getattr(p, method)(key, "a", "b", MEET_WAIT)),
        ("connection B: gate.%s(me='b', other='a')" % method, lambda p: getattr(p, method)(key, "b", "a", MEET_WAIT)),
    ], CALL_TIMEOUT)
    try:
        results = [c.outcome(MEET_WAIT + SLACK) for c in callers]
    except AssertionError:
        _open_on_failure(ctx, [key + ":a", key + ":b"])
        raise
    expect(results, [True, True],
           "two calls from two connections, each blocked in the server until the other one arrives (True = it "
           "arrived within %.0fs; one False means the server ran them one after the other)" % MEET_WAIT)
    expect(_proxy(ctx, ANSWER_TIMEOUT).max_active(key), 2, "gate.%s calls running at once" % method)


@check("execution.blocking-calls-overlap", THREADED_BLOCKING,
       "calls from different connections that block in a wait (threading.Event) run at the same time")
def _(ctx):
    _overlap(ctx, "meet")


@check("execution.sleeping-calls-overlap", THREADED_BLOCKING,
       "calls from different connections that block in time.sleep() (polling) run at the same time")
def _(ctx):
    _overlap(ctx, "meet_sleeping")


@check("execution.accepts-while-blocked", THREADED_ACCEPT,
       "a new connection is accepted and served while another connection's call blocks")
def _(ctx):
    token = ctx.token()
    observer = _proxy(ctx, ANSWER_TIMEOUT)
    observer._pyroBind()                    # connected before the blocking call starts
    blocked = _Caller(ctx, ctx.uri(o.GATE), "connection A: gate.wait(token, %.0f)" % BLOCKED_WAIT,
                      lambda p: p.wait(token, BLOCKED_WAIT), CALL_TIMEOUT)
    blocked.start()
    try:
        _poll_status(ctx, observer, token, "waiting",
                     "another connection asking whether connection A's gate.wait() is blocked in the server")
        newcomer = _proxy(ctx, ANSWER_TIMEOUT)  # a new connection, made while A's call is blocked
        opened = _answered(ctx, lambda: newcomer.open(token),
                           "a NEW connection, made while connection A's call blocks, calling gate.open()",
                           ANSWER_TIMEOUT)
        expect(opened, True, "gate.open() over the new connection")
        released = blocked.outcome(BLOCKED_WAIT + SLACK)
    except AssertionError:
        _open_on_failure(ctx, [token])
        raise
    expect(released, True, "connection A's gate.wait() (True = released by the new connection's open(); "
                           "False = it waited %.0fs in vain)" % BLOCKED_WAIT)


# ---------------------------------------------------------------- oneway, both types ------

@check("execution.oneway-background", ONEWAY_THREADED,
       "a oneway call returns at once and runs in a worker: the same proxy's next calls release it",
       servertypes=("concurrent", "multiplex"))
def _(ctx):
    token = ctx.token()
    p = _proxy(ctx, ANSWER_TIMEOUT)
    p._pyroBind()
    try:
        result = _answered(ctx, lambda: p.wait_oneway(token, BLOCKED_WAIT),
                           "oneway gate.wait_oneway(token) (blocks in the server until gate.open(token))",
                           ANSWER_TIMEOUT)
        expect(result, None, "return value of the oneway call gate.wait_oneway()")
        # the method cannot have finished (nobody opened the gate): the call returned while it runs or is queued
        _poll_status(ctx, p, token, "waiting",
                     "the same proxy asking, after the oneway call returned, whether the oneway method is blocked "
                     "in the server (a server that runs the oneway method in the connection's foreground, or blocks its loop with it, cannot answer)")
        expect(_answered(ctx, lambda: p.open(token), "gate.open(token) on the same proxy, while the oneway "
                         "method blocks", ANSWER_TIMEOUT), True, "gate.open() on the same proxy")
        _poll_status(ctx, p, token, "released", "the oneway method, after a later normal call on the same proxy "
                     "opened its gate (\"timed out\" = it never saw the open)")
    except AssertionError:
        _open_on_failure(ctx, [token])
        raise


# ---------------------------------------------------------------- multiplexed server ------

@check("execution.multiplex-one-at-a-time", MULTIPLEX_SEQUENTIAL,
       "on the multiplex server two calls from different connections never run at the same time",
       servertypes=("multiplex",))
def _(ctx):
    key = ctx.token()
    callers = _callers(ctx, [
        ("connection A: gate.meet(me='a', other='b')", lambda p: p.meet(key, "a", "b", SEQUENTIAL_WAIT)),
        ("connection B: gate.meet(me='b', other='a')", lambda p: p.meet(key, "b", "a", SEQUENTIAL_WAIT)),
    ], CALL_TIMEOUT)
    results = [c.outcome(SEQUENTIAL_WAIT * 2 + SLACK) for c in callers]
    expect(sorted(results), [False, True],
           "two calls from two connections, each waiting up to %.0fs in the server for the other (sorted; the "
           "one that runs first must time out, False, and the second finds the first's gate open, True; "
           "[True, True] means they ran at the same time)" % SEQUENTIAL_WAIT)
    active = _proxy(ctx, ANSWER_TIMEOUT).max_active(key)
    expect(active, 1, "gate.meet calls running at once on the multiplex server")
