"""Where a daemon runs user code: inline in the connection's greenlet, or on a bounded pool of OS threads.

Connections are always greenlets, so there is no connection ceiling; only
the code that may block moves. Each daemon has one ``CallRunner`` and every
server type asks it, so the rule lives here and nowhere else:

* CALL_EXECUTION "inline" or "thread" forces one place for every call.
* "auto" (the default) runs a method where its ``@cooperative`` /
  ``@blocking`` mark says, else inline when the program is monkey-patched
  (its blocking calls yield to gevent) and on a thread when it is not, or
  when SERVERTYPE is Pyro5's "thread". The multiplex server runs unmarked
  calls inline, on the thread that runs its loop (or calls ``events()``),
  as Pyro5's does: it serves one call at a time anyway, and programs rely
  on the thread (a GUI toolkit's main thread, an SQLite connection).

A call on a thread is waited for cooperatively, so the hub keeps serving.
After the call, the thread keeps its connection (it *lingers*) and answers
the next request itself: a connection's calls keep running on one thread, as
with Pyro5's thread per connection, and a sequential client pays no handoff
per call. A call that finds every thread taken takes back the thread that has
lingered longest, so threads still only bound calls in progress.

Oneway calls start in the background at once and never hold up the loop or
another connection (see _OnewayRunner for the limits).
"""

import collections
import contextlib
import logging
import os
import select
import time
import weakref

import gevent
import gevent.event
import gevent.monkey
import gevent.threadpool
from gevent._hub_local import get_hub_if_exists
from gevent.hub import get_hub

from . import program
from .exposure import get_execution_mark

__all__ = ["INLINE", "THREAD", "AUTO", "CallRunner", "default_mode"]

log = logging.getLogger("geopyro.execution")

AUTO, INLINE, THREAD = "auto", "inline", "thread"
MODES = (AUTO, INLINE, THREAD)

SLOW_THREAD_WARNING = 5.0  # seconds a call may wait for a pool thread before a warning says so
IDLE_THREAD_TIMEOUT = 10.0  # seconds an idle pool thread stays before it exits
POOL_EXIT_TIMEOUT = 1.0  # seconds an ending request loop waits for its pool threads' last tasks
ONEWAY_GREENLETS = 1024  # inline oneway calls running at once per daemon
ONEWAY_BACKLOG = 10000  # oneway calls that may wait for a free greenlet or thread; more are dropped
DROP_LOG_INTERVAL = 10.0  # seconds between two warnings about dropped oneway calls

_real_poll = getattr(select, "poll", None) and gevent.monkey.get_original("select", "poll")
_real_local = gevent.monkey.get_original("_thread", "_local")  # C thread-local: cleared when a thread ends
_real_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_real_start_thread = gevent.monkey.get_original("_thread", "start_new_thread")
_worker_state = _real_local()  # .runner is set while a pool thread runs a task of that runner


def default_mode(settings):
    """Where calls without a mark run: "inline" or "thread"."""
    mode = settings.CALL_EXECUTION
    if mode != AUTO:
        return mode
    if settings.SERVERTYPE == "thread":
        return THREAD
    return INLINE if program.is_patched() else THREAD


def in_pool_thread():
    """True inside a task of any CallRunner's thread pool (already off the hub)."""
    return getattr(_worker_state, "runner", None) is not None


def run_off_loop(func, *args):
    """Run ``func(*args)`` (work that cannot yield: inflating, parsing a large message) on a thread of this
    hub's own pool, the calling greenlet waiting cooperatively; right here when already off the loop."""
    hub = get_hub()
    if in_pool_thread() or gevent.getcurrent() is hub:
        return func(*args)
    return hub.threadpool.apply(func, args)


def take_outcome(holder, attribute):
    """Take the (ok, value) outcome stored in ``holder.attribute`` (clearing it): return the value, or raise
    the error. Nothing of this frame or the holder's keeps the error then, so no reference cycle keeps it
    and what its traceback refers to (a message's megabytes, say) alive until the next garbage collection."""
    ok, value = getattr(holder, attribute)
    setattr(holder, attribute, None)
    if ok:
        return value
    try:
        raise value
    finally:
        del value


def _run_guarded(runner, func, args, ticket=None):
    """Run ``func`` on a pool thread; never raise (gevent would print it), return (ok, value).

    ``ticket``: the call's place among the calls waiting for a thread, given up now that it has one."""
    if ticket is not None:
        ticket.started()
    _worker_state.runner = runner
    try:
        return True, func(*args)
    except BaseException as exc:  # handed back to the waiting greenlet, which re-raises it
        return False, exc
    finally:
        _worker_state.runner = None


def _run_on_a_thread_of_its_own(runner, func, args):
    """_run_guarded on a thread started for it; the gevent hub the call may have made here goes with it."""
    try:
        _run_guarded(runner, func, args)
    finally:
        hub = get_hub_if_exists()
        if hub is not None:
            hub.destroy(destroy_loop=True)


class ThreadInterrupted(SystemExit):
    """KeyboardInterrupt raised by code on a pool thread, handed to the waiting greenlet.

    It can't be the user's Ctrl-C (Python raises that in the main thread only).
    As in Pyro5, where it ends the thread serving that client, it ends that
    client's connection, as SystemExit does, and not the server.
    """

    def __repr__(self):
        return repr(self.args[0])  # (what the method raised, for the log)


class CallRunner:
    """Runs one daemon's user code where it belongs and waits for it without blocking the hub."""

    def __init__(self, settings):
        if settings.CALL_EXECUTION not in MODES:
            raise ValueError("invalid CALL_EXECUTION %r (choose from %s)" % (settings.CALL_EXECUTION,
                                                                           ", ".join(MODES)))
        self.forced = settings.CALL_EXECUTION != AUTO
        self.default = default_mode(settings)  # for unmarked calls in the background (oneway)
        # unmarked calls in turn: the multiplex loop runs them on its own thread, as Pyro5's does
        self.call_default = INLINE if settings.SERVERTYPE == "multiplex" and not self.forced else self.default
        # there, in an unpatched program, a call holds the loop by design (as in Pyro5): the blocking detector
        # has nothing to point out
        self.loop_holds_calls = self.call_default == INLINE and self.default == THREAD
        self.size = settings.THREADPOOL_SIZE
        self.pool_size_error = _pool_size_error(settings)  # (type, args) of the error, or None
        if self.call_default == THREAD or not self.forced and settings.SERVERTYPE != "multiplex":
            self.check_pool_size()  # (when the daemon is made, as Pyro5's thread server checks its pool)
        # oneway calls of a multiplex daemon driven by an outside loop through events(): that loop never gives
        # the hub a turn, so they run on threads of their own, as Pyro5 runs each one (see start_oneway)
        self.oneway_threads_of_their_own = False
        self._pools = {}  # hub -> gevent ThreadPool for calls (a pool belongs to the hub that made it)
        self._in_flight = 0  # calls handed to threads and not yet back (counted on the hub)
        self._waiting = 0  # calls waiting for a free thread
        self._lingering = collections.OrderedDict()  # the threads lingering on their connection, longest first
        self._linger_lock = _real_lock()  # _lingering and _waiting, between the hub and pool threads
        self._settings = settings  # the daemon's: live, so a later COMMTIMEOUT counts too
        self._oneways = _OnewayRunner(self)
        self.closed = False

    def __repr__(self):
        return "<CallRunner default=%s%s; %d on threads, %d lingering>" % (
            self.default, " (forced)" if self.forced else "", self._in_flight, len(self._lingering))

    # --- the decision ---

    def where(self, clazz, method_name, background=False):
        """INLINE or THREAD for a call of ``method_name`` on (an instance of) ``clazz``; ``background``: a
        oneway call that runs beside the connection's next requests."""
        if self.forced:
            return self.default
        return get_execution_mark(clazz, method_name) or (self.default if background else self.call_default)

    @property
    def uses_threads(self):
        """True when calls without a mark go to the thread pool (an unpatched program, not multiplex; or "thread"
        forced): the daemon's hooks then run on a thread too."""
        return self.call_default == THREAD

    @property
    def idle_timeout(self):
        """Seconds a lingering thread waits for its connection's next request: COMMTIMEOUT, as the loop."""
        return self._settings.COMMTIMEOUT or None

    # --- running on a thread ---

    def share_the_loop(self):
        """This daemon's multiplex loop runs beside other servers on one hub (a greenlet daemon combined it):
        its unmarked calls go where the greenlet server's would, so that they do not hold the others up."""
        if not self.forced:
            self.call_default = self.default
            self.loop_holds_calls = False
            self.check_pool_size()

    def check_pool_size(self):
        """Raise the ValueError of a bad THREADPOOL_SIZE(_MIN) now that a call needs a thread (a multiplex
        daemon, as Pyro5's, takes any value while its calls need none)."""
        if self.pool_size_error is not None:
            raise self.pool_size_exception()

    def pool_size_exception(self):
        """A new exception for the bad pool size (one kept would gather every caller's frames)."""
        error_type, args = self.pool_size_error
        return error_type(*args)

    def _thread_pool(self):
        hub = get_hub()
        pool = self._pools.get(hub)
        if pool is None:
            self.check_pool_size()
            pool = self._pools[hub] = _make_pool(self.size, hub)
        return pool

    def call_in_thread(self, func, *args):
        """Run ``func(*args)`` on a pool thread and return its result (or raise its error) to the caller.

        The caller waits cooperatively. Called from one of our pool threads
        already, it simply runs the function there.
        """
        if in_pool_thread():
            return func(*args)
        pool = self._thread_pool()
        ticket = None
        if self._in_flight >= self.size:
            # every thread has a call or lingers on a connection: one must come back. The call counts as
            # waiting until its task starts on a thread (the pool queues it at once), so that no thread
            # starts lingering meanwhile, not even one that was between two calls just now.
            ticket = _WaitingCall(self)
            with self._linger_lock:
                self._waiting += 1
                self._take_threads_back(1)  # the thread that lingered longest gives its connection back
            ticket.warning = gevent.spawn_later(SLOW_THREAD_WARNING, _warn_no_thread, ticket, self.size)
        self._in_flight += 1
        try:
            try:
                result = pool.spawn(_run_guarded, self, func, args, ticket)
            except BaseException:
                if ticket is not None:
                    ticket.started()  # it never will: stop counting it
                raise
            ok, value = result.get()
        finally:
            self._in_flight -= 1
            if ticket is not None:
                ticket.warning.kill(block=False)
        if not ok:
            if isinstance(value, KeyboardInterrupt):
                value = ThreadInterrupted(value)
            try:
                raise value
            finally:
                del value  # (this frame, kept by the traceback, must not keep the error: a cycle)
        return value

    # --- lingering: a thread keeps its connection while nobody else needs a thread ---
    #
    # After a call, its pool thread waits on the connection for the next request, so that a connection's
    # calls keep running on the same thread (as with Pyro5's thread per connection: thread-bound state in
    # a session, an sqlite3 connection say, keeps working) and cost no handoff. A call that finds every
    # thread taken takes back the thread that has lingered longest: threads still bound calls in progress,
    # never connections.

    def start_lingering(self):
        """(on a pool thread) Linger: returns this thread's lingerer, or None when a call waits for a thread."""
        lingerer = _this_threads_lingerer()
        with self._linger_lock:
            if self.closed or self._waiting:
                return None
            self._lingering[lingerer] = True
        return lingerer

    def stop_lingering(self, lingerer, serving=False):
        """(on a pool thread) Stop lingering. ``serving``: a request came and this thread runs it; if a
        waiting call woke this thread meanwhile, the wake goes on to the next lingering thread (else the
        waiting call could wait for this request, however long it takes)."""
        with self._linger_lock:
            self._lingering.pop(lingerer, None)
            if serving and lingerer.woken and self._waiting:
                self._take_threads_back(1)
        lingerer.reset()

    def _take_threads_back(self, count=None):
        """(with _linger_lock) Wake ``count`` lingering threads (all when None), the longest lingering first."""
        while self._lingering and (count is None or count > 0):
            lingerer, _ = self._lingering.popitem(last=False)
            lingerer.wake()
            if count is not None:
                count -= 1

    def wait_readable(self, fd, lingerer, timeout):
        """(on a pool thread) Wait for ``fd`` to become readable; False when the wait ended otherwise: the
        time is up, or the thread was taken back (a call needs it, or the daemon closes)."""
        if _real_poll is not None:
            poller = lingerer.poller  # (this thread's own, its wake pipe registered once)
            poller.register(fd, select.POLLIN | select.POLLPRI)
            try:
                events = poller.poll(None if timeout is None else timeout * 1000.0)
            finally:
                poller.unregister(fd)
            readable = any(ready_fd == fd for ready_fd, _ in events)
        else:
            readable = fd in gevent.monkey.get_original("select", "select")([fd, lingerer.wake_fd], [], [],
                                                                          timeout)[0]
        return readable and not lingerer.woken

    # --- oneway calls ---

    def start_oneway(self, where, func, args, label, conn, may_wait):
        """Run ``func(*args)`` in the background (greenlet or thread as ``where`` says).

        ``may_wait``: the caller is the connection's own greenlet, which may be made to wait when that
        connection has too many oneway calls in progress (see _OnewayRunner).

        On a thread of its own instead, as Pyro5 runs every oneway call, where the
        pool cannot serve: the loop is an outside one (``oneway_threads_of_their_own``;
        the pool's bookkeeping needs the hub to turn), or THREADPOOL_SIZE is unusable
        on a multiplex daemon (which Pyro5's ignores).
        """
        if where == THREAD and (self.oneway_threads_of_their_own or self.pool_size_error is not None):
            _real_start_thread(_run_on_a_thread_of_its_own, (self, func, args))
            return
        self._oneways.start(where, func, args, label, conn, may_wait)

    def oneway_full(self, conn):
        """True when ``conn`` has all the oneway calls in progress it may have: a loop that cannot wait (the
        multiplex one) stops reading that connection until ``when_oneway_room`` calls back."""
        return conn in self._oneways.full

    def when_oneway_room(self, conn, callback):
        """Call ``callback()`` (on the hub) once ``conn`` may start oneway calls again."""
        self._oneways.full[conn][1].append(callback)

    def forget_connection(self, conn):
        """``conn`` is gone: drop what waits for its oneway room."""
        self._oneways.full.pop(conn, None)

    # --- ending ---

    def release_this_hub(self):
        """(a request loop of this thread ends) Let the pool threads made for this hub exit, and forget them.

        Threads in the middle of a call finish it first.
        """
        hub = get_hub_if_exists()
        released = [pools.pop(hub) for pools in (self._pools, self._oneways.pools) if hub in pools]
        if not released:
            return
        with self._linger_lock:
            self._take_threads_back()  # lingering threads give their connections back to their greenlets
        deadline = time.monotonic() + POOL_EXIT_TIMEOUT
        for pool in released:
            with gevent.Timeout(max(0.0, deadline - time.monotonic()), False):
                pool.join()  # tasks still queued or running (a disconnect hook, say) finish first
            hub.loop.run_callback(pool.kill)  # from the hub itself kill() does not wait for busy threads
        # wait (a little) for the threads to end: one still tearing down its own hub while the interpreter
        # exits can crash it
        pause = 0.001
        while any(pool.size for pool in released) and time.monotonic() < deadline:
            gevent.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self):
        """Stop lingering threads and let the pool threads exit once their current call is done."""
        if self.closed:
            return
        self.closed = True
        with self._linger_lock:
            self._take_threads_back()
        self._oneways.close()
        for pools in (self._pools, self._oneways.pools):
            for hub, pool in list(pools.items()):
                with contextlib.suppress(Exception):  # the hub's loop may be gone; its threads then idle out
                    hub.loop.run_callback_threadsafe(pool.kill)
            pools.clear()



class _Lingerer:
    """A pool thread's own way to be woken while it waits on a connection: a non-blocking pipe."""

    def __init__(self):
        self.wake_fd, self._write_fd = os.pipe()
        for fd in (self.wake_fd, self._write_fd):
            os.set_blocking(fd, False)
        self.woken = False
        self.poller = None
        if _real_poll is not None:
            self.poller = _real_poll()
            self.poller.register(self.wake_fd, select.POLLIN)
        weakref.finalize(self, _close_fds, self.wake_fd, self._write_fd)

    def wake(self):
        self.woken = True
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"x")

    def reset(self):
        if self.woken:
            self.woken = False
            _drain(self.wake_fd)


def _this_threads_lingerer():
    lingerer = getattr(_worker_state, "lingerer", None)
    if lingerer is None:
        lingerer = _worker_state.lingerer = _Lingerer()  # dropped, and its pipe closed, when the thread ends
    return lingerer


class _WaitingCall:
    """A call waiting for a pool thread: counted in the runner's ``_waiting`` until its task starts."""

    __slots__ = ("runner", "waiting", "warning")

    def __init__(self, runner):
        self.runner = runner
        self.waiting = True
        self.warning = None

    def started(self):
        runner = self.runner
        with runner._linger_lock:
            if self.waiting:
                self.waiting = False
                runner._waiting -= 1


def _warn_no_thread(ticket, size):
    if not ticket.waiting:
        return
    log.warning("a call has waited %g s for one of the %d pool threads, all busy with calls; if those calls wait "
                "for this one (a call back into the same server, say), raise THREADPOOL_SIZE", SLOW_THREAD_WARNING,
                size)


class _OnewayRunner:
    """Starts oneway calls in greenlets or threads.

    A oneway call starts at once while the daemon has room (ONEWAY_GREENLETS
    greenlets, THREADPOOL_SIZE threads). One connection may hold at most half
    of that room; a client that sends more is made to wait: its connection is
    not read meanwhile (its own greenlet waits, or a multiplex loop sets the
    connection aside until ``full`` calls back). Past the room, calls queue
    (ONEWAY_BACKLOG), and past that they are dropped with a warning. Nothing
    here ever makes another connection, or a multiplex loop, wait.
    """

    def __init__(self, runner):
        self.runner = runner
        self.running = {INLINE: 0, THREAD: 0}
        self.limits = {INLINE: ONEWAY_GREENLETS, THREAD: runner.size}
        self.backlog = {INLINE: collections.deque(), THREAD: collections.deque()}
        self.per_connection = {}  # connection -> its oneway calls started or queued, not yet done
        self.room_for = {}  # connection -> Event set when it may start another oneway call
        self.full = {}  # connection that could not wait -> (its quota, callbacks for when it has room again)
        self.pools = {}  # hub -> thread pool for oneway calls (apart, so they never starve normal calls)
        self.dropped = 0
        self.last_drop_log = 0.0
        self.closed = False

    def start(self, where, func, args, label, conn, may_wait):
        quota = max(1, self.limits[where] // 2)
        while may_wait and self.per_connection.get(conn, 0) >= quota and not self.closed:
            room = self.room_for.get(conn)
            if room is None:
                room = self.room_for[conn] = gevent.event.Event()
            room.clear()
            room.wait()
        if self.closed:
            return
        if self.running[where] < self.limits[where]:
            self._launch(where, func, args, conn)
        elif len(self.backlog[where]) < ONEWAY_BACKLOG:
            self._count(conn, 1)
            self.backlog[where].append((func, args, conn))
        else:
            self._drop(label)
            return
        if not may_wait and self.per_connection.get(conn, 0) >= quota and conn not in self.full:
            self.full[conn] = (quota, [])

    def _count(self, conn, change):
        count = self.per_connection.get(conn, 0) + change
        if count > 0:
            self.per_connection[conn] = count
        else:
            self.per_connection.pop(conn, None)
        if change < 0:
            room = self.room_for.pop(conn, None)
            if room is not None:
                room.set()
            full = self.full.get(conn)
            if full is not None and count < full[0]:
                del self.full[conn]
                for callback in full[1]:
                    callback()

    def _launch(self, where, func, args, conn, counted=False):
        self.running[where] += 1
        if not counted:
            self._count(conn, 1)
        done = lambda _: self._finished(where, conn)  # noqa: E731
        if where == INLINE:
            gevent.spawn(func, *args).rawlink(done)
        else:
            self._pool().spawn(_run_guarded, self.runner, func, args).rawlink(done)

    def _pool(self):
        hub = get_hub()
        pool = self.pools.get(hub)
        if pool is None:
            pool = self.pools[hub] = _make_pool(self.limits[THREAD], hub)
        return pool

    def _finished(self, where, conn):
        self.running[where] -= 1
        self._count(conn, -1)
        backlog = self.backlog[where]
        if backlog and not self.closed:
            func, args, queued_conn = backlog.popleft()
            self._launch(where, func, args, queued_conn, counted=True)

    def _drop(self, label):
        self.dropped += 1
        now = time.monotonic()
        if now - self.last_drop_log >= DROP_LOG_INTERVAL:
            self.last_drop_log = now
            log.warning("oneway call %s dropped: %d oneway calls already wait their turn (%d dropped so far); the "
                        "server cannot keep up with its oneway callers", label, ONEWAY_BACKLOG, self.dropped)

    def close(self):
        self.closed = True
        for backlog in self.backlog.values():
            backlog.clear()
        for room in self.room_for.values():
            room.set()
        self.room_for.clear()
        self.full.clear()


def _pool_size_error(settings):
    """(type, args) of the error for THREADPOOL_SIZE / THREADPOOL_SIZE_MIN values no pool can have, else None."""
    size, minimum = settings.THREADPOOL_SIZE, settings.THREADPOOL_SIZE_MIN
    try:
        if size < 1 or minimum < 1:
            return ValueError, ("threadpool sizes must be greater than zero",)
        if minimum > size:
            return ValueError, ("minimum threadpool size must be less than or equal to max size",)
    except TypeError as exc:  # (None, say: as Pyro5's pool, which compares them too)
        return TypeError, exc.args
    return None


def _make_pool(size, hub):
    try:
        return gevent.threadpool.ThreadPool(size, hub, idle_task_timeout=IDLE_THREAD_TIMEOUT)
    except TypeError:  # an older gevent without idle_task_timeout
        return gevent.threadpool.ThreadPool(size, hub)


def _drain(fd):
    with contextlib.suppress(OSError):
        while os.read(fd, 512):
            pass


def _close_fds(*fds):
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
