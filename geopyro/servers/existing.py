"""A daemon serving one socket that is already connected (a socketpair, an accepted socket, a pipe-like link).

There is no listening socket and no handshake (the proxy on the other end,
made with ``connected_socket=``, skips it too, as in Pyro5). The request loop
ends when that one connection closes. The socket itself stays the caller's.
"""

import logging
import socket as _stdlib_socket

from .. import config, core, errors, program, socketutil
from . import common

log = logging.getLogger("geopyro.servers.existing")


class ExistingConnectionServer:
    """Serves requests arriving on one connected socket."""

    def __init__(self, daemon, settings, connected_socket):
        connected_socket.getpeername()  # raises if the socket is not connected
        self.daemon = daemon
        self.settings = settings
        self.sock = socketutil.to_gevent_socket(connected_socket)
        name = self.sock.getsockname()
        if self.sock.family == _stdlib_socket.AF_UNIX:
            self.locationStr = core.UNIX_PREFIX + (name or "<<not-bound>>")
        else:
            self.locationStr = "%s:%d" % (core.host_for_uri(name[0]), name[1])
        self.conn = socketutil.SocketConnection(self.sock, keep_open=True)
        self._sock_thread = common.os_thread_id()
        self._loop = common.LoopState()
        self._stop = None
        program.note_server_thread(self, self._sock_thread)
        log.info("starting server on user-supplied connected socket %s", self.locationStr)  # Pyro5's words

    def __str__(self):
        return "existing connection"

    @property
    def selector(self):
        """Not there: one connection needs no selector (raises TypeError, as Pyro5's server does)."""
        raise TypeError("single-connection server doesn't have multiplexing selector")

    @property
    def sockets(self):
        """The one connected socket while it is open, for an outside loop to wait on."""
        return [self.sock] if self.conn is not None else []

    def combine_loop(self, other):
        """Refused (PyroError): a server of one connected socket serves no other daemon, as in Pyro5."""
        raise errors.PyroError("cannot combine servers when using user-supplied connected socket")

    def events(self, eventsockets):
        """Refused (PyroError): this server cannot be driven by an outside event loop, as in Pyro5."""
        raise errors.PyroError("cannot combine events when using user-supplied connected socket")

    def _serve_one(self):
        """Handle one request; False when the connection is gone."""
        try:
            self.daemon.handleRequest(self.conn)
            return True
        except (errors.ConnectionClosedError, errors.SecurityError, _stdlib_socket.error) as exc:
            log.debug("connected socket finished: %s", exc)
        except errors.CommunicationError as exc:
            log.warning("error on connected socket: %s", exc)
        except SystemExit as exc:
            log.warning("connected socket finished: a method raised %r", exc)
        except Exception:
            log.warning("error during handleRequest on connected socket", exc_info=True)
        self._finish()
        return False

    def _finish(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            program.forget_server(self)
            self.daemon._clientDisconnect(conn)
            conn.close()

    def _adopt_socket(self):
        """Move the socket to this thread's hub when the loop runs in another thread than the one that made it."""
        if self.conn is not None and common.os_thread_id() != self._sock_thread:
            self.sock = self.conn.sock = socketutil.rewrap_for_this_thread(self.sock)
            self._sock_thread = common.os_thread_id()
            program.note_server_thread(self, self._sock_thread)

    def loop(self, loopCondition=lambda: True):
        """Serve until the connection closes, shutdown() is called or loopCondition() is false."""
        common.guard_thread(self._loop)
        self._adopt_socket()
        self._stop = common.StopSignal()
        self._loop.started()
        self.daemon._loop_started()
        try:
            while self.conn is not None and loopCondition() and not self._stop.is_set():
                if not self._serve_one():
                    break
                self.daemon._housekeeping()
        finally:
            self.daemon._loop_ended()
            self._loop.stopped()

    def shutdown(self):
        """End the request loop and close the connection (the socket itself stays open: it is the caller's)."""
        if self._stop is not None:
            self._stop.set()
        self.close()

    def close(self):
        """Let go of the connection: the daemon is told the client left, and the socket stays the caller's."""
        self._finish()


class SocketServer_ExistingConnection(ExistingConnectionServer):
    """Pyro5's name for this server type (Pyro5.svr_existingconn stands for this module under geopyro.run): it can
    be made as Pyro5 makes it, with no arguments and then ``init(daemon, connected_socket)``."""

    def __init__(self, daemon=None, settings=None, connected_socket=None):
        self.sock = self.daemon = self.locationStr = self.conn = None
        if daemon is not None:
            super().__init__(daemon, settings if settings is not None else config, connected_socket)

    def init(self, daemon, connected_socket):
        """Pyro5's second step: serve ``connected_socket`` for ``daemon``, with the global config."""
        super().__init__(daemon, config, connected_socket)
