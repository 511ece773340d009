"""The default server type: one greenlet per connection, on gevent's StreamServer.

It stands in for Pyro5's thread pool: every connection has its own greenlet,
so there is no connection ceiling (set MAX_CONNECTIONS to refuse clients
beyond a limit with a readable error). Calls run where the daemon's
CallRunner says: inline in the greenlet when they cooperate with gevent, on
a pool thread when they may block. SERVERTYPE "thread" is this server with
every call on a thread.
"""

import contextlib
import logging
import os
import threading

import gevent
import gevent.pool
import gevent.socket as gsocket
from gevent.server import StreamServer

from .. import errors, program, socketutil
from . import common

log = logging.getLogger("geopyro.servers.greenlet")

CALLS_FINISH_TIMEOUT = 3.0  # seconds an ending request loop waits for calls in progress to send their replies


class GreenletServer:
    """Accepts connections and serves each in its own greenlet."""

    selector = None  # no selector: gevent's hub does the waiting

    def __init__(self, daemon, settings, host, port, unixsocket):
        self.daemon = daemon
        self.settings = settings
        self._type = "thread" if settings.SERVERTYPE == "thread" else "greenlet"
        self.sock, self.locationStr = common.listen(settings, host, port, unixsocket)
        self._sock_thread = common.os_thread_id()
        self._ssl_context = common.ssl_server_context(settings)
        self._connections = {}  # SocketConnection -> the greenlet serving it
        self._handlers = gevent.pool.Pool()
        self._server = None
        self._stop = None
        self._loop = common.LoopState()
        self._closed = False
        self._combined = []
        self._background = None  # the thread running the request loop that events() started
        self._given_away = None  # the listening socket an outside loop was given before that loop started
        self._accepting = True  # False once stop_accepting() was called (a retiring worker's)
        program.note_server_thread(self, self._sock_thread)
        log.info("greenlet server listening on %s", self.locationStr)

    def __repr__(self):
        return "<GreenletServer on %s; %d connections>" % (self.locationStr, len(self._connections))

    def __str__(self):
        return self._type

    @property
    def sockets(self):
        """The listening socket and every client's; none once events() has started the loop on a thread of
        its own (nothing is left for an outside loop to wait on: that loop serves everything)."""
        if self._background is not None:
            return []
        listening = [self.sock] if self.sock is not None else []
        return listening + [conn.sock for conn in self._connections]

    def _make_stream_server(self):
        if common.os_thread_id() != self._sock_thread:
            self.sock = socketutil.rewrap_for_this_thread(self.sock)
            self._sock_thread = common.os_thread_id()
            program.note_server_thread(self, self._sock_thread)
        # TLS is not left to StreamServer: its handshake has no timeout and failures end up as hub tracebacks
        return StreamServer(self.sock, self._handle, spawn=self._handlers)

    def _handle(self, sock, address):
        if self._ssl_context is not None:
            sock = common.tls_handshake(self._ssl_context, sock, address, self.settings)
            if sock is None:
                return
        conn = socketutil.SocketConnection(sock)
        conn._peer = address
        conn.limit_messages(self.settings.MAX_MESSAGE_SIZE)
        if self.daemon._accepts_protocol48():
            conn.accept_pyro4(self.daemon._pyroHmacKey)
        limit = self.settings.MAX_CONNECTIONS
        if limit and len(self._connections) >= limit:
            common.deny_connection(self.daemon, conn, "server is at its connection limit (%d), try again later"
                                   % limit)
            return
        sock.settimeout(self.settings.COMMTIMEOUT or None)
        conn.lingers = True
        self._connections[conn] = gevent.getcurrent()
        try:
            common.serve_connection(self.daemon, conn, self.settings)
        finally:
            self._connections.pop(conn, None)

    def loop(self, loopCondition=lambda: True):
        """Serve until shutdown() or until loopCondition() turns false (checked every POLLTIMEOUT)."""
        if self._closed:
            raise errors.DaemonError("this daemon has been closed")
        common.guard_thread(self._loop)
        if self._server is None:
            self._server = self._make_stream_server()
        self._stop = common.StopSignal()
        self._loop.started()
        self.daemon._loop_started()
        interval = common.housekeeping_interval(self.settings)
        keep_going = lambda: loopCondition() and not self._stop.is_set()  # noqa: E731
        others = [gevent.spawn(other.loop, keep_going) for other in self._combined]
        try:
            self._server.start()
            if not self._accepting:  # (told to stop accepting before the loop began)
                self._server.stop_accepting()
            while keep_going():
                if self._stop.wait(interval):
                    break
                self.daemon._housekeeping()
        finally:
            for other in self._combined:
                other.request_stop()
            gevent.joinall(others, timeout=5.0)
            if self._closed:
                self._close_now()
            elif self._server is not None:
                self._server.stop_accepting()
            if self._closed or self.daemon._shutting_down:
                self._finish_calls_in_progress()  # (when only loopCondition ended the loop, calls go on)
            self.daemon._loop_ended()
            self._loop.stopped()

    def events(self, eventsockets):
        """An outside event loop saw some of ``sockets`` ready (Pyro5's thread server accepts the connection and
        hands it to its pool). Here the first call starts the request loop on a thread of its own, which accepts
        that connection and serves every connection from then on, each in its greenlet; later calls find it
        running and leave the ready sockets to it."""
        if self._closed or self._loop.running or self._background is not None:
            return
        if not any(sock is self.sock for sock in eventsockets):
            return
        self._background = threading.Thread(target=self._serve_in_background, name="geopyro-greenlet-server",
                                            daemon=True)
        self._background.start()

    def _serve_in_background(self):
        # the loop takes a socket of its own thread's hub on a copy of the descriptor: the outside loop may be
        # waiting on the one it was given by ``sockets`` (closed with the server)
        self._given_away, self.sock = self.sock, gsocket.socket(fileno=os.dup(self.sock.fileno()))
        self._sock_thread = common.os_thread_id()
        try:
            self.daemon.requestLoop()
        except Exception:
            log.warning("the request loop started by events() failed", exc_info=True)

    def combine_loop(self, other):
        """Run ``other``'s loop in a greenlet beside this one, for as long as this loop runs.

        Pyro5's thread server cannot combine; with greenlets it costs nothing, so it works here too.
        A multiplex daemon's calls then leave its loop's thread, which it shares with this server.
        """
        calls = getattr(getattr(other, "daemon", None), "_calls", None)
        if calls is not None:
            calls.share_the_loop()
        self._combined.append(other)

    def request_stop(self):
        """Ask the request loop to end, closing nothing (a loop that combines this one stops it so)."""
        if self._stop is not None:
            self._stop.set()

    def stop_accepting(self):
        """Take no new connections (the listening socket stays open); the connections there are go on."""
        self._accepting = False
        if self._server is not None:
            self._server.stop_accepting()

    def shutdown(self):
        """Stop the request loop and close (from any greenlet or thread, or from inside a call)."""
        self.close()

    def close(self):
        """Stop accepting, close every client connection and the listening socket.

        Calls in progress finish and send their replies first (for up to
        CALLS_FINISH_TIMEOUT seconds), then their connections close too.
        """
        if self._closed:
            return
        self._closed = True
        if self._loop.running:
            self._stop.set()
            inside = self.daemon._in_own_call()
            if self._loop.wait_stopped(CALLS_FINISH_TIMEOUT + 5.0, handler_greenlets=self._handlers.greenlets,
                                       inside_call=inside):
                return  # the loop ended and closed everything in its own thread
            if common.os_thread_id() != self._loop.thread:
                return  # still running over there: the loop closes everything as it ends
        self._close_now()  # idempotent: the loop may have done it already

    def _close_now(self):
        if self.sock is None:
            return
        sock, self.sock = self.sock, None  # claim the work: no second run, from any greenlet or thread
        program.forget_server(self)
        if self._given_away is not None:
            with contextlib.suppress(OSError):
                self._given_away.close()
        if self._server is not None:
            self._server.stop_accepting()
        # (a daemon stand-in, as Pyro5's tests give a server, has no call bookkeeping)
        busy, executing = getattr(self.daemon, "_busy", ()), getattr(self.daemon, "_executing", ())
        current = gevent.getcurrent()
        idle = []
        for conn, handler in list(self._connections.items()):
            if conn in executing:
                continue  # its call finishes and replies; then the connection ends (the daemon is shutting down)
            if conn in busy:
                conn.shutdown()  # a pool thread lingers on it: wake it up, but keep the descriptor until it is back
            else:
                conn.close()
                if handler is not current:
                    idle.append(handler)
        if idle:
            gevent.killall(idle, block=False)
        common.close_listening(sock)
        log.debug("greenlet server on %s closed", self.locationStr)

    def _finish_calls_in_progress(self):
        """(the loop greenlet, as the loop ends) Let calls in progress send their replies, for a while;
        then cut the connections of those still running (a pool thread runs on, but cannot reply)."""
        current = gevent.getcurrent()
        handlers = {conn: handler for conn, handler in self._connections.items()
                    if conn in self.daemon._busy and handler is not current}
        if not handlers:
            return
        gevent.joinall(list(handlers.values()), timeout=CALLS_FINISH_TIMEOUT)
        for conn, handler in handlers.items():
            if not handler.dead:
                log.warning("a call on connection %s did not finish within %g s of shutdown: connection closed",
                            conn, CALLS_FINISH_TIMEOUT)
                self.daemon._cut.add(conn)  # the pool thread, if it runs the call, cleans up when it is done
                conn.shutdown()



class SocketServer_Threadpool(common.MadeAsPyro5Makes, GreenletServer):
    """Pyro5's name for this server type (Pyro5.svr_threads stands for this module under geopyro.run)."""
