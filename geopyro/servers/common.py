"""Pieces every server type shares: the listening socket, the stop signal, serving one connection."""

import contextlib
import logging
import os
import socket as _stdlib_socket

import gevent
import gevent.event
import gevent.monkey
import gevent.socket as gsocket
from gevent.hub import get_hub

from .. import config, core, errors, socketutil

log = logging.getLogger("geopyro.servers")

os_thread_id = gevent.monkey.get_original("_thread", "get_ident")
_RealEvent = gevent.monkey.get_original("threading", "Event")


_adopted = {}  # port -> a listening socket made elsewhere (a worker's, inherited from geopyro.workers' arbiter)


def adopt_listening_socket(sock):
    """Have the next daemon made for this socket's port listen on ``sock`` (already bound and listening)
    instead of binding the port itself."""
    _adopted[sock.getsockname()[1]] = sock


def listen(settings, host, port, unixsocket):
    """Bind the listening socket (or take the adopted one for ``port``); return (gevent socket, location string)."""
    adopted = _adopted.pop(port, None) if port and not unixsocket else None
    if adopted is not None:
        sock = gsocket.socket(adopted.family, adopted.type, fileno=adopted.detach())
        host = settings.HOST if host is None else str(host)
        return sock, "%s:%d" % (core.host_for_uri(host or sock.getsockname()[0]), port)
    if unixsocket:
        sock = socketutil.create_socket(bind=unixsocket, reuseaddr=settings.SOCK_REUSE, noinherit=True,
                                        nodelay=False, timeout=None, cooperative=True)
        return sock, core.UNIX_PREFIX + unixsocket
    host = settings.HOST if host is None else str(host)
    sock = socketutil.create_socket(bind=(host, port), reuseaddr=settings.SOCK_REUSE, noinherit=True,
                                    nodelay=settings.SOCK_NODELAY, timeout=None,
                                    ipv6=True if ":" in host else None, cooperative=True)
    bound = sock.getsockname()
    return sock, "%s:%d" % (core.host_for_uri(host or bound[0]), port or bound[1])


def close_listening(sock):
    """Close a listening socket; for a Unix domain socket also remove its file (as Pyro5 does)."""
    try:
        sockname = sock.getsockname()
    except OSError:
        sockname = None
    with contextlib.suppress(OSError):
        sock.close()
    if isinstance(sockname, str) and sockname and os.path.exists(sockname):
        with contextlib.suppress(OSError):
            os.remove(sockname)
            log.debug("removed unix socket file %s", sockname)


def ssl_server_context(settings):
    """The server TLS context when SSL is on, else None."""
    if not settings.SSL:
        return None
    return socketutil.get_ssl_context(servercert=settings.SSL_SERVERCERT, serverkey=settings.SSL_SERVERKEY,
                                      keypassword=settings.SSL_SERVERKEYPASSWD, cacerts=settings.SSL_CACERTS)


TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS handshake may take when COMMTIMEOUT is 0 (no limit)


def tls_handshake(context, sock, address, settings):
    """Wrap an accepted socket in TLS, bounded by COMMTIMEOUT; None (socket closed) when it fails."""
    sock.settimeout(settings.COMMTIMEOUT or TLS_HANDSHAKE_TIMEOUT)
    try:
        wrapped = context.wrap_socket(sock, server_side=True)
    except (OSError, ValueError) as exc:
        log.warning("TLS handshake with %s failed: %s", address, exc)
        with contextlib.suppress(OSError):
            sock.close()
        return None
    wrapped.settimeout(settings.COMMTIMEOUT or None)
    return wrapped


def housekeeping_interval(settings):
    """How often the daemon's housekeeping runs (as Pyro5: POLLTIMEOUT, bounded by COMMTIMEOUT or 5 s)."""
    return max(0.05, min(settings.POLLTIMEOUT or 2.0, max(settings.COMMTIMEOUT or 0, 5)))


class StopSignal:
    """A stop request that may come from any greenlet or any OS thread.

    ``wait(timeout)`` is used by the loop greenlet; ``set()`` can be called
    from anywhere: from another thread it is delivered through the loop's hub.
    """

    def __init__(self):
        self._event = gevent.event.Event()
        self._hub = get_hub()
        self._thread = os_thread_id()

    def set(self):
        """Request the stop; from another thread the loop's hub sets it, soon after."""
        if os_thread_id() == self._thread:
            self._event.set()
        else:
            self._hub.loop.run_callback_threadsafe(self._event.set)

    def is_set(self):
        """True once a stop has been requested (and, from another thread, delivered)."""
        return self._event.is_set()

    def wait(self, timeout):
        """Wait cooperatively up to ``timeout`` seconds for a stop request; True if one came."""
        return self._event.wait(timeout)


class LoopState:
    """Tracks whether a request loop runs, so shutdown() can wait for it from any thread."""

    def __init__(self):
        self.thread = None
        self.greenlet = None
        self._stopped_green = gevent.event.Event()
        self._stopped_green.set()
        self._stopped_real = _RealEvent()
        self._stopped_real.set()

    def started(self):
        """Note that the request loop runs, in the calling thread and greenlet."""
        self.thread = os_thread_id()
        self.greenlet = gevent.getcurrent()
        self._stopped_green.clear()
        self._stopped_real.clear()

    def stopped(self):
        """Note that the request loop ended, and wake whoever waits in ``wait_stopped``."""
        self.thread = self.greenlet = None  # first: a waiter woken by the events must see the loop gone
        self._stopped_green.set()
        self._stopped_real.set()

    @property
    def running(self):
        """True while a request loop runs (from its start until ``stopped``)."""
        return self.thread is not None

    def wait_stopped(self, timeout, handler_greenlets=(), inside_call=False):
        """Wait (cooperatively, or blocking when called from another thread) for the loop to end.

        Never from inside a call the loop serves (``inside_call``): the loop may be waiting for that call.
        """
        if self.thread is None:
            return True
        if inside_call:
            return False
        if os_thread_id() != self.thread:
            return self._stopped_real.wait(timeout)
        current = gevent.getcurrent()
        if current is self.greenlet or current in handler_greenlets:
            return False  # the loop cannot end while we sit inside it
        return self._stopped_green.wait(timeout)


def serve_connection(daemon, conn, settings):
    """Handshake, then handle requests until the client leaves or misbehaves."""
    accepted = False
    try:
        if not daemon._handshake(conn):
            return
        accepted = True
        while not daemon._shutting_down:
            daemon.handleRequest(conn)
    except (errors.ConnectionClosedError, _stdlib_socket.error):
        log.debug("client disconnected: %s", conn)
    except errors.TimeoutError as exc:
        log.debug("closing connection %s: %s", conn, exc)
    except errors.SecurityError as exc:
        log.warning("closing connection %s after a security error: %s", conn, exc)
    except errors.ProtocolError as exc:
        log.warning("closing connection %s after a protocol error: %s", conn, exc)
    except gevent.GreenletExit:
        pass
    except SystemExit as exc:
        # a method called sys.exit(): with Pyro5 it ends the thread serving this client, not the server
        log.warning("closing connection %s: a method raised %r", conn, exc)
    except Exception:
        log.warning("closing connection %s after an error in request handling", conn, exc_info=True)
    finally:
        if accepted:  # (as Pyro5: a client refused at the handshake was never connected)
            with contextlib.suppress(Exception):
                daemon._clientDisconnect(conn)
        conn.close()


def deny_connection(daemon, conn, reason):
    """Answer a client's CONNECT with CONNECTFAIL and close the connection."""
    log.warning("client connection denied: %s", reason)
    with contextlib.suppress(Exception):
        daemon._handshake(conn, denied_reason=reason)
    conn.close()


def guard_thread(loop_state):
    """Refuse to run a second request loop while one is active."""
    if loop_state.running:
        raise errors.DaemonError("the request loop of this daemon is already running")


class MadeAsPyro5Makes:
    """Mixin for a server type under Pyro5's class name: it can be made as Pyro5 makes its server classes,
    with no arguments and then ``init(daemon, host, port, unixsocket=None)``, as well as the geopyro way."""

    def __init__(self, daemon=None, settings=None, host=None, port=0, unixsocket=None):
        self.sock = None
        if daemon is not None:
            super().__init__(daemon, settings if settings is not None else config, host, port, unixsocket)

    def init(self, daemon, host, port, unixsocket=None):
        """Pyro5's second step: set the server up for ``daemon`` (listening socket included), with the global config."""
        super().__init__(daemon, config, host, port, unixsocket)
