"""The blocking detector: names a method that held up the gevent hub, and says how to fix it.

A method that runs inline (in its connection's greenlet) and blocks without
yielding stops every other connection of the process. gevent's own monitor
thread notices when no greenlet switch happened for a while and emits an
``EventLoopBlocked`` event; inline calls register here while they run, so the
event can be pinned on a method. When the call ends, one WARNING per method
(per process) names it, says how long it held the loop and what to do.

Turned on by a server loop with ``watch_this_hub(BLOCKING_WARNING)``; 0 turns
it off. Cost while on: a monitor thread waking every threshold, a greenlet
switch tracer (C code in gevent), and a dict entry per inline call.
"""

import logging
import time
import warnings
import weakref

import gevent
import gevent.monkey
from gevent import events as gevent_events
from gevent._hub_local import get_hub_if_exists
from gevent.hub import get_hub
from greenlet import getcurrent

__all__ = ["watch_this_hub", "unwatch_this_hub", "enter", "leave", "active"]

log = logging.getLogger("geopyro.blockwatch")

_running = {}  # greenlet -> _InlineCall, for inline calls in progress
_warned = set()  # method labels already reported
_watchers = weakref.WeakKeyDictionary()  # hub -> [request loops watching it, whether we started its monitor]
_subscribed = False
_config_lock = gevent.monkey.get_original("_thread", "allocate_lock")()
_tuned = False  # gevent's max_blocking_time has been set from a threshold of ours
active = False  # True once a hub is watched: inline calls then register themselves


class _InlineCall:
    __slots__ = ("label", "started", "blocked")

    def __init__(self, label):
        self.label = label
        self.started = time.perf_counter()
        self.blocked = False


def _on_gevent_event(event):
    """(in gevent's monitor thread) Mark the inline call that is blocking the hub; nothing else, no logging."""
    if isinstance(event, gevent_events.EventLoopBlocked):
        call = _running.get(event.greenlet)
        if call is not None:
            call.blocked = True


def watch_this_hub(threshold):
    """Start watching the calling thread's hub for inline calls that block it longer than ``threshold`` s.

    Each call must be paired with ``unwatch_this_hub()`` in the same thread (a request loop does both).
    """
    global _subscribed, _tuned, active
    if not threshold or threshold <= 0:
        return
    hub = get_hub()
    watchers = _watchers.get(hub)
    if watchers is not None:
        watchers[0] += 1
        return
    if not _subscribed:
        gevent_events.subscribers.append(_on_gevent_event)
        _subscribed = True
    started = False
    with _config_lock:  # gevent's settings are global: another thread's loop may be starting too
        if hub.periodic_monitoring_thread is None:
            settings = gevent.config
            user_enabled = settings.monitor_thread
            if not user_enabled:
                # gevent's report would go to stderr; the warning logged here replaces it
                settings.print_blocking_reports = False
                settings.max_blocking_time = min(settings.max_blocking_time, threshold) if _tuned else threshold
                _tuned = True
            settings.monitor_thread = True
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "install psutil to monitor memory": not what we watch
                    started = hub.start_periodic_monitoring_thread() is not None
            finally:
                settings.monitor_thread = user_enabled  # hubs of other threads (pool workers) get no monitor
            if started and not user_enabled:
                _check_without_stacks(hub.periodic_monitoring_thread)
    _watchers[hub] = [1, started]
    active = True


def _check_without_stacks(monitor):
    """Swap gevent's blocking check for one that only notifies EventLoopBlocked, with an empty report.

    gevent's own check formats every thread's stack for its report, walking
    the frames of threads that are running meanwhile; on CPython 3.11+ that
    can crash the process (seen here, on a busy machine). We need only the
    event: which greenlet blocked.
    """
    tracer = monitor._greenlet_tracer

    def check_blocking(hub):
        did_block = tracer.did_block_hub(hub)
        if did_block:
            gevent_events.notify(gevent_events.EventLoopBlocked(did_block[1], gevent.config.max_blocking_time, []))
        return did_block

    monitor.add_monitoring_function(check_blocking, gevent.config.max_blocking_time)
    monitor.add_monitoring_function(monitor.monitor_blocking, None)  # ours is now first: it keeps the period


def unwatch_this_hub():
    """The request loop of this thread ends: stop the monitor we started once nothing else here needs it.

    A monitor left on a hub that no longer runs would see it 'blocked' forever.
    """
    hub = get_hub_if_exists()
    watchers = _watchers.get(hub) if hub is not None else None
    if watchers is None:
        return
    watchers[0] -= 1
    if watchers[0] > 0:
        return
    del _watchers[hub]
    monitor = hub.periodic_monitoring_thread
    if watchers[1] and monitor is not None:
        monitor.kill()
        hub.periodic_monitoring_thread = None


def enter(label):
    """An inline call starts in the current greenlet; returns a token for ``leave``."""
    current = getcurrent()
    call = _InlineCall(label)
    previous = _running.get(current)
    _running[current] = call
    return current, call, previous


def leave(token):
    """The inline call ended: warn (once per method) if the monitor saw it block the hub."""
    current, call, previous = token
    if previous is None:
        _running.pop(current, None)
    else:
        _running[current] = previous
    if call.blocked and call.label not in _warned:
        _warned.add(call.label)
        if gevent.monkey.is_module_patched("time"):  # patched already: what is left is CPU work or a C library
            cooperate = "or make it yield (gevent.sleep(0) now and then in a long loop)"
        else:
            cooperate = "or make it cooperate, by calling gevent.monkey.patch_all() at the very start of the program"
        message = ("method %s blocked the gevent event loop (the call took %.2f s): every other connection of "
                   "this process waited meanwhile. Run it on a thread, by marking it @blocking (geopyro.api) or "
                   "setting config.CALL_EXECUTION = 'thread'; %s." % (call.label, time.perf_counter() - call.started,
                                                                       cooperate))
        if logging_configured(log):
            log.warning("%s", message)
        else:  # geopyro's log is silent then; this is worth saying anyway (once per method)
            warnings.warn(message, BlockingCallWarning, stacklevel=2)


class BlockingCallWarning(RuntimeWarning):
    """An inline call blocked the event loop (shown when the program has not configured logging)."""


def logging_configured(logger):
    """True when a WARNING of ``logger`` reaches a handler that writes somewhere (not only NullHandlers).

    A logger that is configured but set above WARNING (as a Pyro5 program's "Pyro5" logger is, see
    geopyro.run) does not count: the warning would be lost there.
    """
    if not logger.isEnabledFor(logging.WARNING):
        return False
    while logger is not None:
        if any(not isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False
