"""What kind of program geopyro runs in, so that servers and proxies can follow it.

Two facts decide how geopyro behaves without being told:

- Whether the program is *monkey-patched* (``gevent.monkey.patch_all()``):
  then blocking calls in user code yield to gevent, and a server can run
  methods inline in the connection's greenlet.
- Whether the calling code *cooperates*: a proxy call made from a greenlet,
  or from a thread whose gevent hub serves a geopyro daemon, must wait
  through the hub; plain code in an unpatched program gets plain blocking
  sockets, as Pyro5's client does.
"""

import weakref

import gevent
import gevent.monkey
from gevent._hub_local import get_hub_if_exists
from gevent.hub import Hub
from greenlet import getcurrent

__all__ = ["is_patched", "client_cooperates", "sleep", "thread_id", "note_server_thread", "forget_server"]

# patch_all() patches these; a program that patched fewer may still block in them
PATCH_MODULES = ("socket", "time", "select", "threading")

thread_id = gevent.monkey.get_original("_thread", "get_ident")
_real_sleep = gevent.monkey.get_original("time", "sleep")


def is_patched():
    """True when gevent has patched every module that blocking user code typically waits in."""
    return all(gevent.monkey.is_module_patched(name) for name in PATCH_MODULES)


# thread id -> the servers whose sockets live on that thread's hub (their request loop runs, or will run, there)
_servers_by_thread = {}
_registry_lock = gevent.monkey.get_original("_thread", "allocate_lock")()  # a real lock, patched or not


def note_server_thread(server, thread):
    """Record that ``server`` now lives on the hub of ``thread`` (and no longer on any other)."""
    with _registry_lock:
        for servers in _servers_by_thread.values():
            servers.discard(server)
        _servers_by_thread.setdefault(thread, weakref.WeakSet()).add(server)


def forget_server(server):
    """The server is closed: it no longer needs its thread's hub."""
    with _registry_lock:
        for servers in _servers_by_thread.values():
            servers.discard(server)


def serves_on_this_thread():
    """True when a geopyro server lives on the calling thread's hub."""
    servers = _servers_by_thread.get(thread_id())
    return bool(servers)


def client_cooperates():
    """Whether a client call made here must wait through the gevent hub (else: a plain blocking socket).

    It must when the program is monkey-patched, when the caller is a greenlet
    run by a hub, or when the calling thread's hub serves a geopyro daemon
    (blocking the thread would stall that daemon, maybe on our own call).
    Plain code in an unpatched program, worker threads included, blocks as
    Pyro5's client does: that is faster, and it is what such code expects.
    """
    if gevent.monkey.is_module_patched("socket"):
        return True
    hub = get_hub_if_exists()
    if hub is None:
        return False
    if isinstance(getcurrent().parent, Hub):
        return True
    return serves_on_this_thread()


def sleep(seconds):
    """Sleep the way the caller should: through the hub when it cooperates, else a plain sleep."""
    if client_cooperates():
        gevent.sleep(seconds)
    else:
        _real_sleep(seconds)
