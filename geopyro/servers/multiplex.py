"""The multiplex server type: one greenlet handles every call in turn.

It waits on the kernel's selector through one hub watcher (no busy loop), reads
whatever bytes are ready into each connection's incremental parser, and runs
each complete request before looking at the next. Exactly one call runs at a
time; a client that sends half a message holds up nobody. As in Pyro5, a
call runs on the thread that runs the loop (or calls ``events()``), unless
its ``@blocking`` mark or CALL_EXECUTION sends it to a pool thread while the
loop greenlet waits (the daemon's CallRunner decides). Oneway calls still run
in the background when ONEWAY_THREADED is on.

Because everything goes through ``sockets``, ``selector`` and ``events()``,
the daemon can also be driven by someone else's loop, and ``combine()`` lets
one request loop serve several daemons.
"""

import collections
import contextlib
import errno
import logging
import os
import selectors
import socket as _stdlib_socket
import ssl
import time

import gevent
import gevent.monkey
import gevent.socket
from gevent.selectors import GeventSelector

from .. import errors, execution, program, protocol, server, socketutil
from . import common

log = logging.getLogger("geopyro.servers.multiplex")

_READ, _WRITE = 1, 2  # selectors.EVENT_READ, EVENT_WRITE
_NOT_YET = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_PAUSE_MIN, ACCEPT_PAUSE_MAX = 0.05, 1.0  # seconds accepting pauses when out of descriptors (doubling)
_EXPECTED = (protocol.MSG_INVOKE, protocol.MSG_PING)


_original_select = gevent.monkey.get_original("select", "select")
_original_poll = getattr(__import__("select"), "poll", None) and gevent.monkey.get_original("select", "poll")


_KernelSelector = gevent.monkey.get_original("selectors", "DefaultSelector")


class _WatchedSelector(selectors.BaseSelector):
    """The kernel's selector (epoll, kqueue), waited on through one gevent watcher on its own descriptor.

    gevent's GeventSelector keeps a watcher per socket; while the loop greenlet
    waits for a call on a pool thread, the hub turns and every readable socket's
    watcher fires on each turn: a cost per call that grows with the connections.
    Here the hub watches one descriptor, and only while select() waits.
    """

    def __init__(self):
        self._kernel = _KernelSelector()

    def register(self, fileobj, events, data=None):
        return self._kernel.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._kernel.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._kernel.modify(fileobj, events, data)

    def get_key(self, fileobj):
        return self._kernel.get_key(fileobj)

    def get_map(self):
        return self._kernel.get_map()

    def fileno(self):
        return self._kernel.fileno()

    def select(self, timeout=None):
        if self._kernel.select(0):
            gevent.sleep(0)  # other greenlets of this hub (oneway calls, say) get their turn in every round
            return self._kernel.select(0)
        if timeout is not None and timeout <= 0:
            return []
        try:
            gevent.socket.wait_read(self._kernel.fileno(), timeout)
        except _stdlib_socket.timeout:
            return []
        return self._kernel.select(0)

    def close(self):
        self._kernel.close()


def _new_selector():
    """A _WatchedSelector where the kernel's selector has a descriptor to watch, else gevent's own."""
    if hasattr(_KernelSelector, "fileno"):
        return _WatchedSelector()
    return GeventSelector()


def _readable(sock):
    """True when bytes wait on ``sock`` (a zero-timeout check that never blocks or switches greenlets)."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    try:
        if _original_poll is not None:
            poller = _original_poll()
            poller.register(sock.fileno(), 1)  # POLLIN
            return bool(poller.poll(0))
        return bool(_original_select([sock.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return False


class _BufferedConnection(socketutil.SocketConnection):
    """A multiplex client's connection, whose socket never blocks: sending takes what the socket accepts
    now and keeps the rest in ``unsent``, for the loop to send when the client reads again."""

    __slots__ = ("unsent",)

    def __init__(self, sock):
        super().__init__(sock)
        self.unsent = collections.deque()  # memoryviews not sent yet, in order

    def send(self, data):
        for part in data if type(data) is tuple else (data,):
            if self.unsent:
                self.unsent.append(memoryview(part))
                continue
            sent = self._send_now(part)
            if sent < len(part):
                self.unsent.append(memoryview(part)[sent:])

    def flush(self):
        """Send what was kept back, as far as the socket takes it; True once nothing is left."""
        unsent = self.unsent
        while unsent:
            part = unsent[0]
            sent = self._send_now(part)
            if sent < len(part):
                unsent[0] = part[sent:]
                return False
            unsent.popleft()
        return True

    def _send_now(self, data):
        sock = self.sock
        try:
            if self._plain:
                return sock._sock.send(data)
            return sock.send(data)  # TLS with timeout 0: 0 when the record cannot go yet
        except _NOT_YET:
            return 0
        except (OSError, ValueError) as exc:
            raise errors.ConnectionClosedError("sending: connection lost: %s" % exc) from None


# why a client is not being read (None: it is)
_ONEWAY_FULL = "oneway"   # it has all the oneway calls in progress it may have
_DECODING = "decoding"    # its message is being deserialized on a thread
_WRITING = "writing"      # it does not read its replies fast enough: they wait in its connection


class _Client:
    """A connection and where it is in the conversation."""

    __slots__ = ("conn", "handshaken", "last_activity", "aside", "ready")

    def __init__(self, conn):
        self.conn = conn
        self.handshaken = False
        self.last_activity = time.monotonic()
        self.aside = None  # why it is not read for now (see above)
        self.ready = None  # a message deserialized while the client was aside, to handle first


class MultiplexServer:
    """Serves all connections of a daemon (and of combined daemons) from one loop."""

    def __init__(self, daemon, settings, host, port, unixsocket):
        self.daemon = daemon
        self.settings = settings
        self.sock, self.locationStr = common.listen(settings, host, port, unixsocket)
        self._sock_thread = common.os_thread_id()
        self._ssl_context = common.ssl_server_context(settings)
        self._clients = {}  # socket -> _Client
        self._handshakes = {}  # greenlet doing a TLS handshake -> its socket
        self._decoders = set()  # greenlets waiting for a message to be deserialized on a thread
        self._writing = set()  # clients whose replies wait to be sent
        self._accepting = True  # False once stop_accepting() was called (a retiring worker's)
        self._accept_pause = 0.0  # seconds accepting pauses next time descriptors run out (0: accepting)
        self._accept_resume = None  # the timer that starts accepting again
        self._selector = None
        self._selector_thread = None
        self._owner = self  # the server whose selector and loop we live in (see combine_loop)
        self._combined = []
        self._wake_r = self._wake_w = None
        self._returning = collections.deque()  # (server, client) set aside, whose oneway calls left room again
        self._stop = None
        self._loop = common.LoopState()
        self._closed = False
        program.note_server_thread(self, self._sock_thread)
        log.info("multiplex server listening on %s", self.locationStr)

    def __repr__(self):
        return "<MultiplexServer on %s; %d connections>" % (self.locationStr, len(self._clients))

    def __str__(self):
        return "multiplex"

    # --- what an external event loop sees ---

    @property
    def selector(self):
        """The selector every socket of this server is registered in (its select() waits through gevent)."""
        return self._ensure_selector()

    @property
    def sockets(self):
        """The sockets to wait on for reading: the listening one (unless accepting pauses) and the clients
        being read (not those set aside)."""
        listening = [self.sock] if self.sock is not None and self._accept_resume is None else []
        return listening + [sock for sock, client in self._clients.items() if client.aside is None]

    def events(self, eventsockets):
        """Handle the given ready sockets (listening or client) of this server or of combined ones."""
        selector = self._ensure_selector()
        self._owner._take_back_set_aside()
        for each in [self._owner] + self._owner._combined:
            each._flush_all()  # an outside loop waits for reading only: replies that wait go out here
            # that loop gives the hub no turn, on which the oneway pool's bookkeeping depends
            each.daemon._calls.oneway_threads_of_their_own = True
        for sock in eventsockets:
            try:
                key = selector.get_key(sock)
            except (KeyError, ValueError):
                continue  # closed meanwhile, or not ours
            key.data()

    # --- setup ---

    def _ensure_selector(self):
        """The selector, made in (and for) the calling thread: gevent watchers belong to one hub."""
        owner = self._owner
        if owner is not self:
            return owner._ensure_selector()
        here = common.os_thread_id()
        if self._selector is not None and self._selector_thread != here and not self._loop.running:
            self._discard_selector()
        if self._selector is None:
            for server in [self] + self._combined:
                server._move_to_this_thread()
            self._selector = _new_selector()
            self._selector_thread = here
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            self._selector.register(self._wake_r, _READ, self._drain_wakeup)
            for server in [self] + self._combined:
                server._register_all(self._selector)
        return self._selector

    def _discard_selector(self):
        self._selector.close()
        self._selector = None
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = None

    def _move_to_this_thread(self):
        if common.os_thread_id() == self._sock_thread:
            return
        if self.sock is not None:
            self.sock = socketutil.rewrap_for_this_thread(self.sock)
        moved = {}
        for client in self._clients.values():
            client.conn.sock = socketutil.rewrap_for_this_thread(client.conn.sock)
            moved[client.conn.sock] = client
        self._clients = moved
        self._sock_thread = common.os_thread_id()
        program.note_server_thread(self, self._sock_thread)

    def _register_all(self, selector):
        if self.sock is not None and self._accepting:
            selector.register(self.sock, _READ, self._accept)
        for sock, client in self._clients.items():
            if client.aside is None:  # a client set aside is registered again when it is taken back
                selector.register(sock, _READ, lambda c=client: self._read(c))
            elif client.aside == _WRITING:
                selector.register(sock, _WRITE, lambda c=client: self._flush(c))

    def combine_loop(self, other):
        """Serve ``other`` (another multiplex server) from this server's selector and loop."""
        if not isinstance(other, MultiplexServer):
            raise errors.PyroError("a multiplex daemon can only combine with another multiplex daemon (make both "
                                   "with SERVERTYPE='multiplex'), got %s" % other)
        other._owner = self
        self._combined.append(other)
        if self._selector is not None:
            other._move_to_this_thread()
            other._register_all(self._selector)

    # --- the loop ---

    def loop(self, loopCondition=lambda: True):
        """Serve until shutdown() or loopCondition() is false."""
        if self._closed:
            raise errors.DaemonError("this daemon has been closed")
        common.guard_thread(self._loop)
        selector = self._ensure_selector()
        self._stop = common.StopSignal()
        self._loop.started()
        self.daemon._loop_started()
        interval = common.housekeeping_interval(self.settings)
        next_housekeeping = time.monotonic() + interval
        try:
            while loopCondition() and not self._stop.is_set():
                for key, _ in selector.select(interval):
                    key.data()
                    if self._stop.is_set():
                        break
                self._take_back_set_aside()
                now = time.monotonic()
                if now >= next_housekeeping:
                    next_housekeeping = now + interval
                    self._housekeeping(now)
        finally:
            if self._closed:
                self._close_now()
            self.daemon._loop_ended()
            self._loop.stopped()

    def _housekeeping(self, now):
        for each in [self] + self._combined:
            each._expire_idle(now)
            each.daemon._housekeeping()

    def _expire_idle(self, now):
        timeout = self.settings.COMMTIMEOUT
        if not timeout:
            return
        for client in list(self._clients.values()):
            if now - client.last_activity <= timeout or client.aside in (_ONEWAY_FULL, _DECODING):
                continue
            if client.aside == _WRITING:
                log.debug("closing connection %s: it did not read its replies for %g s", client.conn, timeout)
            elif _readable(client.conn.sock):
                continue  # it did send; the loop was busy (a long call), so read it instead
            else:
                log.debug("closing idle or stalled connection %s", client.conn)
            self._drop(client)

    def _wake(self):
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    def _drain_wakeup(self):
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    # --- connections ---

    def _accept(self):
        try:
            self.sock.settimeout(0.0)
            sock, address = self.sock.accept()
        except (BlockingIOError, _stdlib_socket.timeout, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in _OUT_OF_DESCRIPTORS:
                self._pause_accepting(exc)
            else:
                log.warning("accept failed on %s: %s", self.locationStr, exc)
            return
        if self._accept_pause:
            log.info("accepting connections on %s again", self.locationStr)
            self._accept_pause = 0.0
        if self._ssl_context is not None:
            # handshake in its own greenlet: a silent or slow TLS peer must not stall the loop
            handshake = gevent.spawn(self._tls_accept, sock, address)
            self._handshakes[handshake] = sock
            handshake.link(lambda done: self._handshakes.pop(done, None))
            return
        self._add_client(sock, address)

    def _pause_accepting(self, exc):
        """Out of descriptors: stop watching the listening socket for a while (the pending connection would
        make every select() return at once), doubling the pause while it lasts; one warning, not a flood."""
        if not self._accept_pause:
            log.warning("accept failed on %s: %s; pausing new connections until descriptors are free",
                        self.locationStr, exc)
        self._accept_pause = min(ACCEPT_PAUSE_MAX, max(ACCEPT_PAUSE_MIN, self._accept_pause * 2))
        with contextlib.suppress(KeyError, ValueError):
            self._owner._selector.unregister(self.sock)
        self._accept_resume = gevent.spawn_later(self._accept_pause, self._resume_accepting)

    def _resume_accepting(self):
        self._accept_resume = None
        selector = self._owner._selector
        if self.sock is not None and selector is not None and self._accepting:
            with contextlib.suppress(KeyError, ValueError):
                selector.register(self.sock, _READ, self._accept)

    def stop_accepting(self):
        """Take no new connections (the listening socket stays open); the connections there are go on."""
        self._accepting = False
        if self._accept_resume is not None:
            self._accept_resume.kill(block=False)
            self._accept_resume = None
        selector = self._owner._selector
        if self.sock is not None and selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(self.sock)

    def _tls_accept(self, sock, address):
        sock = common.tls_handshake(self._ssl_context, sock, address, self.settings)
        if sock is None:
            return
        if self.sock is None:  # closed meanwhile
            sock.close()
            return
        self._add_client(sock, address)
        self._wake()  # the loop's select() started before this socket was registered

    def _add_client(self, sock, address):
        sock.settimeout(0.0)  # never wait in the loop: not for the rest of a TLS record, not to send
        conn = _BufferedConnection(sock)
        conn._peer = address
        conn.limit_messages(self.settings.MAX_MESSAGE_SIZE)
        if self.daemon._accepts_protocol48():
            conn.accept_pyro4(self.daemon._pyroHmacKey)
        limit = self.settings.MAX_CONNECTIONS
        client = _Client(conn)
        if limit and len(self._clients) >= limit:
            client.handshaken = None  # answer its CONNECT with a refusal, then drop it
        self._clients[sock] = client
        self._owner._ensure_selector().register(sock, _READ, lambda: self._read(client))

    def _read(self, client):
        self._serve(client, receive=True)

    def _serve(self, client, receive, msg=None):
        """Receive what is ready (when ``receive``), then handle ``msg`` and every complete message buffered."""
        conn = client.conn
        try:
            reader = conn.reader
            if receive:
                try:
                    data = conn.sock.recv(socketutil.RECV_CHUNK)
                except _NOT_YET:
                    return  # part of a TLS record: the rest comes later
                if not data:
                    raise errors.ConnectionClosedError("connection closed by peer")
                pending = getattr(conn.sock, "pending", None)
                while pending is not None and pending():
                    data += conn.sock.recv(socketutil.RECV_CHUNK)
                client.last_activity = time.monotonic()
                reader.feed(data)
            if msg is None:
                msg = reader.next_message()
            outside = not self._owner._loop.running  # driven by someone else's loop through events()
            while msg is not None:
                if server.decodes_off_loop(msg) and (client.handshaken or client.handshaken is False
                                                     and msg.type == protocol.MSG_CONNECT):
                    if outside:  # nothing would take the client back: decode now (the outside loop waits)
                        execution.run_off_loop(server.decode_payload, msg, self.settings.MAX_MESSAGE_SIZE,
                                               self.daemon._serializer_for)
                    else:
                        self._decode_aside(client, msg)  # a large message: deserialized on a thread meanwhile
                        return
                if not self._process(client, msg):
                    return
                if conn.closed:
                    return
                client.last_activity = time.monotonic()  # a long call is not idleness
                if conn.unsent:
                    if outside:  # (an outside loop waits for reading only): send it all now, within COMMTIMEOUT
                        self._flush_now(client)
                    else:
                        self._wait_writable(client)  # its replies wait: read nothing more from it until sent
                        return
                if self.daemon._calls.oneway_full(conn):
                    self._set_aside(client)  # the rest waits in its reader, and in the kernel's buffers
                    return
                msg = reader.next_message()
        except (errors.ConnectionClosedError, _stdlib_socket.error) as exc:
            log.debug("client %s gone: %s", conn, exc)
            self._drop(client)
        except errors.CommunicationError as exc:
            log.warning("dropping connection %s: %s", conn, exc)
            self._drop(client)
        except errors.SecurityError as exc:  # a Pyro4 client's HMAC was wrong or missing
            try:
                if client.handshaken is False:
                    self.daemon._refuse_unsigned_connect(conn, exc)
                else:
                    log.warning("dropping connection %s after a security error: %s", conn, exc)
            except Exception as refusal_error:  # (the client may be gone already)
                log.debug("could not tell %s why it was refused: %s", conn, refusal_error)
            finally:
                self._drop(client)
        except SystemExit as exc:
            log.warning("dropping connection %s: a method raised %r", conn, exc)
            self._drop(client)
        except Exception:
            log.warning("dropping connection %s after an error in request handling", conn, exc_info=True)
            self._drop(client)

    def _process(self, client, msg):
        """Handle one complete message; False when the connection was dropped."""
        conn = client.conn
        if client.handshaken is None:
            if msg.type == protocol.MSG_CONNECT:
                self.daemon._handshake_reply(conn, msg, "server is at its connection limit (%d), try again later"
                                             % self.settings.MAX_CONNECTIONS)
            self._drop(client)
            return False
        if not client.handshaken:
            if msg.type != protocol.MSG_CONNECT:
                raise errors.ProtocolError("expected a CONNECT message first, got type %d" % msg.type)
            if not self.daemon._handshake_reply(conn, msg):
                self._drop(client)
                return False
            client.handshaken = True
            return True
        if msg.type not in _EXPECTED:
            raise errors.ProtocolError("invalid msg type %d received" % msg.type)
        self.daemon._dispatch(conn, msg)
        if self.daemon._shutting_down:
            self._drop(client)
            return False
        return True

    def _set_aside(self, client):
        """Stop reading a client that sends oneway calls faster than they run, until some of them are done:
        the loop goes on with everyone else, and TCP makes the sender wait."""
        client.aside = _ONEWAY_FULL
        with contextlib.suppress(KeyError, ValueError):
            self._owner._selector.unregister(client.conn.sock)
        self.daemon._calls.when_oneway_room(client.conn, lambda: self._owner._return_later(self, client))

    def _decode_aside(self, client, msg):
        """Deserialize a large message on a thread while the loop serves everyone else; then handle it."""
        client.aside = _DECODING
        with contextlib.suppress(KeyError, ValueError):
            self._owner._selector.unregister(client.conn.sock)

        def decode():
            try:
                execution.run_off_loop(server.decode_payload, msg, self.settings.MAX_MESSAGE_SIZE,
                                       self.daemon._serializer_for)
            except Exception as exc:  # (the thread pool failed us; decode_payload itself never raises)
                msg.decoded = (False, errors.ProtocolError("the request could not be read: %r" % exc))
            finally:
                client.ready = msg
                self._decoders.discard(decoder)
                self._owner._return_later(self, client)

        decoder = gevent.spawn(decode)
        self._decoders.add(decoder)

    def _wait_writable(self, client):
        """Stop reading a client whose replies wait to be sent; send them as its socket takes them."""
        client.aside = _WRITING
        self._writing.add(client)
        with contextlib.suppress(KeyError, ValueError):
            self._owner._selector.modify(client.conn.sock, _WRITE, lambda: self._flush(client))

    def _flush(self, client):
        """(the socket can take more) Send waiting replies; once all are out, read the client again."""
        if self._clients.get(client.conn.sock) is not client or client.aside != _WRITING:
            return
        try:
            if not client.conn.flush():
                client.last_activity = time.monotonic()  # progress: it reads, slowly
                return
        except errors.CommunicationError as exc:
            log.debug("client %s gone: %s", client.conn, exc)
            self._drop(client)
            return
        client.aside = None
        self._writing.discard(client)
        client.last_activity = time.monotonic()
        with contextlib.suppress(KeyError, ValueError):
            self._owner._selector.modify(client.conn.sock, _READ, lambda: self._read(client))
        if self.daemon._calls.oneway_full(client.conn):
            self._set_aside(client)
            return
        self._serve(client, receive=False)

    def _flush_now(self, client):
        """Send the waiting replies, waiting for the socket (up to COMMTIMEOUT without progress)."""
        conn = client.conn
        while not conn.flush():
            try:
                gevent.socket.wait_write(conn.sock.fileno(), self.settings.COMMTIMEOUT or None)
            except _stdlib_socket.timeout:
                raise errors.TimeoutError("sending: timeout") from None

    def _flush_all(self):
        for client in list(self._writing):
            self._flush(client)

    def _return_later(self, server, client):
        """(on the hub, from the oneway runner) Have the loop take ``client`` of ``server`` back."""
        self._returning.append((server, client))
        self._wake()

    def _take_back_set_aside(self):
        """(the owner's loop) Read again the clients whose oneway calls left room, their buffered ones first."""
        while self._returning:
            server, client = self._returning.popleft()
            server._take_back(client)

    def _take_back(self, client):
        sock = client.conn.sock
        if self._clients.get(sock) is not client or client.aside not in (_ONEWAY_FULL, _DECODING):
            return  # dropped meanwhile
        client.aside = None
        client.last_activity = time.monotonic()
        ready, client.ready = client.ready, None
        self._owner._ensure_selector().register(sock, _READ, lambda: self._read(client))
        self._serve(client, receive=False, msg=ready)

    def _drop(self, client):
        conn = client.conn
        sock = conn.sock
        if self._clients.pop(sock, None) is None:
            return
        self._writing.discard(client)
        self.daemon._calls.forget_connection(conn)
        selector = self._owner._selector
        if selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
        if client.handshaken:
            try:
                self.daemon._clientDisconnect(conn)
            except Exception:
                log.warning("error in clientDisconnect", exc_info=True)
        conn.close()

    # --- ending ---

    def request_stop(self):
        """Ask the request loop to end and wake its selector, closing nothing and waiting for nothing."""
        if self._stop is not None:
            self._stop.set()
            self._wake()

    def shutdown(self):
        """Stop the request loop (from any greenlet or thread) and wait for it to end."""
        if self._stop is not None:
            self._stop.set()
            self._wake()
        self._loop.wait_stopped(5.0, inside_call=self.daemon._in_own_call())

    def close(self):
        """Close every connection and the listening socket."""
        if self._closed:
            return
        self._closed = True
        if self._loop.running:
            # the loop closes everything as it ends, in its own thread; from inside a call
            # (the loop's own greenlet) that happens right after the call has been answered
            self._stop.set()
            self._wake()
            if not self._loop.wait_stopped(5.0, inside_call=self.daemon._in_own_call()):
                return  # we are inside the loop (or it is stuck): it closes everything as it ends
        self._close_now()  # idempotent: the loop may have done it already

    def _close_now(self):
        if self.sock is None:
            return
        listening, self.sock = self.sock, None  # claim the work: no second run, from any greenlet or thread
        program.forget_server(self)
        for handshake, sock in list(self._handshakes.items()):
            handshake.kill(block=False)
            with contextlib.suppress(OSError):
                sock.close()
        self._handshakes.clear()
        for decoder in list(self._decoders):
            decoder.kill(block=False)
        if self._accept_resume is not None:
            self._accept_resume.kill(block=False)
            self._accept_resume = None
        for client in list(self._clients.values()):
            self._drop(client)
        selector = self._owner._selector
        if selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(listening)
        common.close_listening(listening)
        if self._owner is self and self._selector is not None:
            for server in self._combined:
                server._owner = server
            self._discard_selector()
        log.debug("multiplex server on %s closed", self.locationStr)



class SocketServer_Multiplex(common.MadeAsPyro5Makes, MultiplexServer):
    """Pyro5's name for this server type (Pyro5.svr_multiplex stands for this module under geopyro.run)."""
