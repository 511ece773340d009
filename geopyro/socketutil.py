"""Sockets, TLS contexts and address helpers.

Servers use gevent sockets, so they cooperate with other greenlets whether
or not the program called ``gevent.monkey.patch_all()``. Client sockets, and
sockets a program makes itself with ``create_socket``, follow the program
(``geopyro.program.client_cooperates``): gevent sockets for code that runs
under a hub, plain blocking sockets for plain code (which, like Pyro5's, may
be handed to another thread).
"""

import contextlib
import errno
import ipaddress
import logging
import os
import select as _select
import socket as _stdlib_socket
import weakref

import ssl as _stdlib_ssl

import gevent.monkey
import gevent.socket as gsocket
import gevent.ssl as gssl
from gevent.hub import get_hub

from . import config, program, protocol, protocol48
from .errors import CommunicationError, ConnectionClosedError, TimeoutError

log = logging.getLogger("geopyro.socketutil")

RECV_CHUNK = 64 * 1024  # bytes asked of recv() at a time; never the size a peer declares

ERRNO_EADDRINUSE = (errno.EADDRINUSE,)
ERRNO_EADDRNOTAVAIL = (errno.EADDRNOTAVAIL,)


_plain_socket = gevent.monkey.get_original("socket", "socket")
_plain_getaddrinfo = gevent.monkey.get_original("socket", "getaddrinfo")
USE_MSG_WAITALL = hasattr(_stdlib_socket, "MSG_WAITALL")  # (Pyro5's name; geopyro's own receives don't need it)


def receive_data(sock, size):
    """Receive exactly ``size`` bytes from a socket (Pyro5's function). A connection that ends first raises
    ConnectionClosedError, with the bytes that did come in its ``partialData``; a timeout TimeoutError."""
    data = bytearray()
    try:
        while len(data) < size:
            chunk = sock.recv(min(RECV_CHUNK, size - len(data)))
            if not chunk:
                error = ConnectionClosedError("receiving: not enough data")
                error.partialData = data
                raise error
            data += chunk
    except _stdlib_socket.timeout:
        raise TimeoutError("receiving: timeout") from None
    except OSError as exc:
        raise ConnectionClosedError("receiving: connection lost: %s" % exc) from None
    return data


def send_data(sock, data):
    """Send all of ``data`` on a socket (Pyro5's function); errors as ConnectionClosedError / TimeoutError."""
    try:
        sock.sendall(data)
    except _stdlib_socket.timeout:
        raise TimeoutError("sending: timeout") from None
    except OSError as exc:
        raise ConnectionClosedError("sending: connection lost: %s" % exc) from None


def _getaddrinfo(*args):
    """getaddrinfo through gevent's resolver when the caller cooperates, else the plain (blocking) one."""
    return gsocket.getaddrinfo(*args) if program.client_cooperates() else _plain_getaddrinfo(*args)


def get_ip_address(hostname, workaround127=False, version=None):
    """The IP address (ipaddress object) of ``hostname``; ``version`` 4, 6, 0 (any) or None (PREFER_IP_VERSION).

    With ``workaround127``, a loopback answer is replaced by the address of
    the interface that routes outward, when there is one.
    """
    if not workaround127:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(hostname)

    def lookup(ip_version):
        families = {4: _stdlib_socket.AF_INET, 6: _stdlib_socket.AF_INET6, 0: _stdlib_socket.AF_UNSPEC}
        if ip_version not in families:
            raise ValueError("unknown ip version %r (use 4, 6 or 0)" % (ip_version,))
        infos = _getaddrinfo(hostname or _stdlib_socket.gethostname(), 80, families[ip_version],
                                    _stdlib_socket.SOCK_STREAM, _stdlib_socket.IPPROTO_TCP)
        ip = infos[0][4][0]
        if workaround127 and (ip.startswith("127.") or ip == "0.0.0.0"):
            with contextlib.suppress(OSError):
                return get_interface("4.2.2.2").ip
        return ipaddress.ip_address(ip)

    if hostname and ":" in hostname and version is None:
        version = 0
    try:
        return lookup(config.PREFER_IP_VERSION if version is None else version)
    except _stdlib_socket.gaierror:
        if version == 6 or (version is None and config.PREFER_IP_VERSION == 6):
            raise OSError("unable to determine IPV6 address of %r" % hostname) from None
        return lookup(0)


def get_interface(ip_address):
    """The local interface (ipaddress interface object) that would be used to reach ``ip_address``."""
    if isinstance(ip_address, str):
        ip_address = get_ip_address(ip_address)
    family = _stdlib_socket.AF_INET if ip_address.version == 4 else _stdlib_socket.AF_INET6
    with _plain_socket(family, _stdlib_socket.SOCK_DGRAM) as sock:  # nothing here waits
        sock.connect((str(ip_address), 53))  # UDP connect sends nothing; it only picks a route
        return ipaddress.ip_interface(sock.getsockname()[0])


def _family_for(address, ipv6):
    if isinstance(address, str):
        return _stdlib_socket.AF_UNIX
    if ipv6 is None:
        ipv6 = config.PREFER_IP_VERSION == 6
    host = address[0]
    if ipv6 or (host and ":" in host) or len(address) == 4:
        return _stdlib_socket.AF_INET6
    return _stdlib_socket.AF_INET


def _resolve_tcp(address, family):
    """Resolve a (host, port) pair for the given family (getaddrinfo handles names like 'localhost')."""
    host, port = address[0], address[1]
    if family == _stdlib_socket.AF_INET and host in ("", None):
        return ("0.0.0.0", port)
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None and literal.version == (6 if family == _stdlib_socket.AF_INET6 else 4) \
            and "%" not in host:
        return (host, port) if literal.version == 4 else (host, port, 0, 0)  # no lookup needed
    infos = _getaddrinfo(host, port, family, _stdlib_socket.SOCK_STREAM)
    return infos[0][4]


def create_socket(bind=None, connect=None, reuseaddr=False, keepalive=True, timeout=-1, noinherit=False,
                  ipv6=False, nodelay=True, sslContext=None, cooperative=None):
    """Make a TCP or Unix socket, bound and listening, or connected.

    A str address means a Unix domain socket. ``timeout=-1`` leaves the
    default; None means blocking. ``sslContext`` wraps the socket in TLS.
    ``cooperative``: True makes a gevent socket, False a plain blocking one;
    None (the default) follows the TLS context if one is given, else the
    calling code (see ``program.client_cooperates``).
    """
    if bind and connect:
        raise ValueError("bind and connect cannot both be given")
    address = bind or connect
    family = _family_for(address, ipv6) if address is not None else (
        _stdlib_socket.AF_INET6 if ipv6 else _stdlib_socket.AF_INET)
    if family == _stdlib_socket.AF_UNIX and bind and os.path.exists(bind):
        os.remove(bind)  # a stale socket file from an earlier run
    if isinstance(address, tuple) and isinstance(address[1], int) and not 0 <= address[1] <= 65535:
        # (getaddrinfo would take the port modulo 65536: another port) Python's own socket calls refuse it so,
        # as Pyro5's create_socket lets them; a proxy makes it a CommunicationError
        raise OverflowError("%s(): port must be 0-65535." % ("connect" if connect else "bind"))
    if cooperative is None:
        cooperative = isinstance(sslContext, gssl.SSLContext) if sslContext is not None \
            else program.client_cooperates()
    sock = (gsocket.socket if cooperative else _plain_socket)(family, _stdlib_socket.SOCK_STREAM)
    try:
        if sslContext is not None:
            if bind:
                sock = sslContext.wrap_socket(sock, server_side=True)
            else:
                server_hostname = connect[0] if isinstance(connect, tuple) else None
                if server_hostname and sslContext.check_hostname is False:
                    server_hostname = None
                sock = sslContext.wrap_socket(sock, server_side=False, server_hostname=server_hostname)
        if nodelay and family != _stdlib_socket.AF_UNIX:
            set_nodelay(sock)
        if reuseaddr:
            set_reuseaddr(sock)
        if noinherit:
            sock.set_inheritable(False)
        if timeout != -1:
            sock.settimeout(timeout)
        if bind:
            if family == _stdlib_socket.AF_UNIX:
                sock.bind(bind)
            else:
                sock.bind(_resolve_tcp(bind, family) if bind[0] else ("::" if family == _stdlib_socket.AF_INET6
                                                                      else "0.0.0.0", bind[1]))
            sock.listen(1024)
        elif connect:
            target = connect if family == _stdlib_socket.AF_UNIX else _resolve_tcp(connect, family)
            try:
                sock.connect(target)
            except _stdlib_socket.timeout:
                raise TimeoutError("connecting to %s: timeout" % (connect,)) from None
            except OSError as exc:
                raise CommunicationError("cannot connect to %s: %s" % (connect, exc)) from None
        if keepalive and family != _stdlib_socket.AF_UNIX:
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_KEEPALIVE, 1)
        return sock
    except BaseException:
        sock.close()
        raise


def create_bc_socket(bind=None, reuseaddr=False, timeout=-1, ipv6=False, cooperative=None):
    """A UDP socket that may send broadcasts (used by name server discovery); see create_socket."""
    if cooperative is None:
        cooperative = program.client_cooperates()
    family = _stdlib_socket.AF_INET6 if ipv6 else _stdlib_socket.AF_INET
    sock = (gsocket.socket if cooperative else _plain_socket)(family, _stdlib_socket.SOCK_DGRAM)
    try:
        if family == _stdlib_socket.AF_INET:
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_BROADCAST, 1)
        if reuseaddr:
            set_reuseaddr(sock)
        if timeout != -1:
            sock.settimeout(timeout)
        if bind:
            host = bind[0] or ("::" if ipv6 else "")
            sock.bind((host, bind[1]) if family == _stdlib_socket.AF_INET else (host, bind[1], 0, 0))
        return sock
    except BaseException:
        sock.close()
        raise


def set_noinherit(sock):
    """Keep child processes from inheriting ``sock`` (Pyro5's name; create_socket(noinherit=True) does it)."""
    sock.set_inheritable(False)


def interrupt_socket(address):
    """Connect to ``address`` and close at once: wakes a server blocked in accept() there (Pyro5's helper)."""
    with contextlib.suppress(OSError, CommunicationError):
        create_socket(connect=address, keepalive=False, timeout=1.0, cooperative=False).close()


def set_reuseaddr(sock):
    """Allow rebinding a port that has connections in TIME_WAIT."""
    with contextlib.suppress(OSError):
        sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)


def set_nodelay(sock):
    """Turn off Nagle's algorithm: small request/response messages go out at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)


def set_keepalive(sock):
    """Enable TCP keepalive probes."""
    with contextlib.suppress(OSError):
        sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_KEEPALIVE, 1)


def bind_unused_port(sock, host="localhost"):
    """Bind ``sock`` to a free port on ``host`` and return the port."""
    if sock.family == _stdlib_socket.AF_INET6:
        sock.bind((host if host != "localhost" else "::1", 0, 0, 0))
    else:
        sock.bind((host, 0))
    return sock.getsockname()[1]


def find_probably_unused_port(family=_stdlib_socket.AF_INET, socktype=_stdlib_socket.SOCK_STREAM):
    """A port that was free a moment ago (racy by nature: prefer port 0 where you can)."""
    with _plain_socket(family, socktype) as probe:
        return bind_unused_port(probe)


def family_str(sock):
    """'IPv4', 'IPv6' or 'Unix' for a socket."""
    return {_stdlib_socket.AF_INET: "IPv4", _stdlib_socket.AF_INET6: "IPv6"}.get(sock.family, "Unix")


def to_gevent_socket(sock):
    """A cooperative gevent socket for ``sock``; a stdlib socket is borrowed, not taken over.

    The gevent socket shares the file descriptor, so when the owner closes the
    original, the peer sees the connection end. Release the borrowed wrapper
    with ``release_borrowed`` (SocketConnection does) so it never closes the fd.
    """
    if isinstance(sock, (gsocket.socket, gssl.SSLSocket)):
        return sock
    return borrow(sock, True, sock.gettimeout())


def _is_plain_gevent_socket(sock):
    """True for a plain (not TLS) gevent socket, whose OS socket may be used directly.

    gevent keeps the OS socket non-blocking in ``_sock`` and waits on ``_read_event`` with ``_wait``;
    SocketConnection uses those on the hot path to skip a Python frame and a failing recv per message.
    """
    return type(sock) in (gsocket.socket, _BorrowedSocket) and all(
        hasattr(sock, name) for name in ("_sock", "_wait", "_read_event"))


class _BorrowedSocket(gsocket.socket):
    """A gevent socket over a file descriptor that belongs to another socket object."""

    __slots__ = ("owner",)


def _forget_fd(raw):
    with contextlib.suppress(OSError, ValueError):
        raw.detach()


class _BorrowedPlainSocket(_plain_socket):
    """A plain (blocking) socket over a file descriptor that belongs to another socket object."""

    __slots__ = ("owner",)

    def __del__(self):
        with contextlib.suppress(OSError, ValueError):
            self.detach()  # never close the owner's descriptor


def borrow(owner, cooperative, timeout):
    """A new wrapper, gevent or plain, over ``owner``'s file descriptor; it never closes that descriptor."""
    kind = _BorrowedSocket if cooperative else _BorrowedPlainSocket
    borrowed = kind(owner.family, owner.type, owner.proto, fileno=owner.fileno())
    borrowed.settimeout(timeout)
    borrowed.owner = owner  # keeps the owner's object alive as long as we use its fd
    if cooperative:
        weakref.finalize(borrowed, _forget_fd, borrowed._sock)
    return borrowed


def release_borrowed(sock):
    """Drop a wrapper made by ``to_gevent_socket`` or ``borrow`` without closing the owner's file descriptor."""
    if isinstance(sock, (_BorrowedSocket, _BorrowedPlainSocket)):
        with contextlib.suppress(OSError, ValueError):
            sock.detach()


def _convert(sock, socket_class):
    """The same OS socket in another wrapper class (gevent or plain), with its timeout."""
    timeout = sock.gettimeout()
    converted = socket_class(sock.family, sock.type, sock.proto, fileno=sock.detach())
    converted.settimeout(timeout)
    return converted


def rewrap_for_this_thread(sock):
    """Move a gevent socket to the hub of the calling thread (gevent sockets are tied to one hub)."""
    if isinstance(sock, gssl.SSLSocket):
        return sock  # TLS state cannot be moved; keep using it as it is
    timeout = sock.gettimeout()
    moved = gsocket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    moved.settimeout(timeout)
    return moved


class SocketConnection:
    """One end of a Pyro connection: exact-size receives, whole-message reads, and per-connection state.

    Server code keeps the session instances and tracked resources of the
    client here; they are released when the connection closes.
    """

    __slots__ = ("_socket", "objectId", "pyroInstances", "tracked_resources", "keep_open", "_reader", "_closed",
                 "__weakref__", "_peer", "_plain", "lingers")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __init__(self, sock, objectId=None, keep_open=False):
        self.sock = sock
        self.objectId = objectId
        self.pyroInstances = {}
        self.tracked_resources = weakref.WeakSet()
        self.keep_open = keep_open
        self._reader = None
        self._closed = False
        self._peer = None
        self.lingers = False  # True: served by its own greenlet, so a pool thread may keep it between calls

    @property
    def sock(self):
        """The socket (a gevent socket, plain or TLS)."""
        return self._socket

    @sock.setter
    def sock(self, sock):
        self._socket = sock
        self._plain = _is_plain_gevent_socket(sock)

    # --- raw bytes ---

    def send(self, data):
        """Send all of ``data`` (one send() call in the usual case; sendall only for what is left).

        A tuple is sent part after part (a large payload is not first copied behind its header).
        """
        if type(data) is tuple:
            for part in data:
                self.send(part)
            return
        sock = self._socket
        try:
            if self._plain:
                try:
                    sent = sock._sock.send(data)
                except BlockingIOError:
                    sent = 0
            else:
                sent = sock.send(data)
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
        except _stdlib_socket.timeout:
            raise TimeoutError("sending: timeout") from None
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError("sending: connection lost: %s" % exc) from None

    def recv(self, size):
        """Receive exactly ``size`` bytes, or raise ConnectionClosedError / TimeoutError."""
        chunks = []
        remaining = size
        while remaining:
            chunk = self._recv_some(min(remaining, RECV_CHUNK))
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _recv_some(self, size, idle=False):
        """Receive 1 to ``size`` bytes. ``idle``: nothing is expected yet (a request or reply is awaited),
        so wait for readability first instead of paying for a recv that fails with EAGAIN."""
        sock = self._socket
        try:
            if not self._plain:
                chunk = sock.recv(size)
            else:
                if idle and sock._read_event is not None:
                    sock._wait(sock._read_event)  # gevent's own watcher; honours the socket's timeout
                while True:
                    try:
                        chunk = sock._sock.recv(size)
                        break
                    except BlockingIOError:
                        sock._wait(sock._read_event)
        except _stdlib_socket.timeout:
            raise TimeoutError("receiving: timeout") from None
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError("receiving: connection lost: %s" % exc) from None
        if not chunk:
            raise ConnectionClosedError("receiving: connection closed by peer")
        return chunk

    def follow(self, cooperative):
        """Make this client connection wait the way its caller needs: through this thread's hub, or blocking.

        A plain socket switches wrapper (gevent <-> plain) on the same descriptor;
        a TLS socket keeps the kind it was made with.
        """
        sock = self._socket
        if self.keep_open:
            self._follow_borrowed(sock, cooperative)
        elif cooperative:
            if self._plain:
                if sock.hub is not get_hub():  # a gevent socket belongs to the hub of the thread that made it
                    self.sock = _convert(sock, gsocket.socket)
            elif type(sock) is _plain_socket:
                self.sock = _convert(sock, gsocket.socket)
        elif self._plain:
            self.sock = _convert(sock, _plain_socket)

    def _follow_borrowed(self, sock, cooperative):
        """The same for a socket the user lent us: a fresh wrapper of the right kind, the user's fd untouched."""
        owner = getattr(sock, "owner", None)
        if owner is None:
            return  # the user gave us a gevent socket itself: it stays as it is
        if cooperative:
            if self._plain and sock.hub is get_hub():
                return
        elif type(sock) is _BorrowedPlainSocket:
            return
        self.sock = borrow(owner, cooperative, sock.gettimeout())
        release_borrowed(sock)

    # --- I/O from a pool thread (the connection's greenlet waits meanwhile) ---

    @property
    def serves_from_thread(self):
        """True when a pool thread may read and write this connection itself (a plain, not TLS, socket)."""
        return self._plain

    def send_from_thread(self, data):
        """Send all of ``data`` from a thread that is not the socket's hub (blocking, COMMTIMEOUT bounded)."""
        if type(data) is tuple:
            for part in data:
                self.send_from_thread(part)
            return
        raw = self._socket._sock
        view, deadline, started = data, None, False
        try:
            while True:
                try:
                    sent = raw.send(view)
                except BlockingIOError:
                    sent = 0
                if sent == len(view):
                    return  # the usual reply fits the socket buffer: one send, nothing more to set up
                if not started:  # a large reply, or a full buffer: wait for room, for COMMTIMEOUT at most
                    started, view, timeout = True, memoryview(data), self._socket.gettimeout()
                    deadline = None if timeout is None else _monotonic() + timeout
                view = view[sent:]
                if not _wait_fd(raw.fileno(), False, deadline):
                    raise TimeoutError("sending: timeout")
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError("sending: connection lost: %s" % exc) from None

    def read_from_thread(self):
        """Feed whatever bytes are ready into the reader without waiting; False if none were ready."""
        try:
            chunk = self._socket._sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return False
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError("receiving: connection lost: %s" % exc) from None
        if not chunk:
            raise ConnectionClosedError("receiving: connection closed by peer")
        self._reader.feed(chunk)
        return True

    # --- whole protocol messages ---

    def recv_message(self, max_size, accepted_types=None):
        """Read one complete protocol message (buffering any bytes that follow it)."""
        reader = self._reader
        if reader is None:
            reader = self._reader = protocol.MessageReader(max_size)
        msg = reader.next_message()
        while msg is None:
            reader.feed(self._recv_some(RECV_CHUNK, not reader.in_message))
            msg = reader.next_message()
        protocol.check_type(msg, accepted_types)
        return msg

    @property
    def reader(self):
        """The incremental parser holding bytes received on this connection (multiplex server use)."""
        if self._reader is None:
            self._reader = protocol.MessageReader(config.MAX_MESSAGE_SIZE)
        return self._reader

    def limit_messages(self, max_size):
        """Read this connection as a server's: ``max_size`` is the daemon's own MAX_MESSAGE_SIZE (not the
        global one), and bodies that are more than a little compressed are left for the daemon to inflate."""
        self._reader = protocol.MessageReader(max_size, protocol.INFLATE_AS_READ)

    def talk_to_pyro4(self, max_size, hmac_key=None):
        """(a client's connection) Read the server's messages in Pyro4's protocol 48, signed with ``hmac_key``."""
        self._reader = protocol48.MessageReader48(max_size, hmac_key)

    def accept_pyro4(self, hmac_key=None):
        """(a server's connection) Also serve a client that speaks Pyro4's protocol 48: the first six bytes
        decide. ``hmac_key``: the key its messages must be signed with (None: they must not be)."""
        self._reader = _VersionSniffer(self, self._reader, hmac_key)

    # --- lifecycle and information ---

    def close(self):
        """Close the socket (unless keep_open) and release resources tied to the connection."""
        if self._closed:
            return
        self._closed = True
        if self.keep_open:
            release_borrowed(self.sock)
        else:
            with contextlib.suppress(OSError, ValueError):
                self.sock.shutdown(_stdlib_socket.SHUT_RDWR)
            with contextlib.suppress(OSError, ValueError):
                self.sock.close()
        self.release_session()

    def close_from_thread(self):
        """Close from a thread that is not the socket's hub (whose loop may never run again)."""
        if self._closed:
            return
        if not self._plain or self.keep_open:
            self.shutdown()  # a TLS wrapper belongs to its hub; the peer at least sees the end
            return
        self._closed = True
        raw = self._socket._sock
        with contextlib.suppress(OSError, ValueError):
            raw.shutdown(_stdlib_socket.SHUT_RDWR)
        with contextlib.suppress(OSError, ValueError):
            raw.close()
        self.release_session()

    def shutdown(self):
        """End the conversation (the peer sees the connection close) but keep the descriptor until close()."""
        with contextlib.suppress(OSError, ValueError):
            self.sock.shutdown(_stdlib_socket.SHUT_RDWR)

    def release_session(self):
        """Close the resources tracked for this client, then drop its session instances (in that order:
        a tracked resource is often held only by a session instance)."""
        for resource in list(self.tracked_resources):
            with contextlib.suppress(Exception):
                resource.close()
        self.tracked_resources.clear()
        self.pyroInstances = {}

    @property
    def closed(self):
        """True once ``close()`` was called."""
        return self._closed

    def fileno(self):
        """The socket's file descriptor."""
        return self.sock.fileno()

    def family(self):
        """The socket's address family: 'IPv4', 'IPv6' or 'Unix'."""
        return family_str(self.sock)

    def getpeername(self):
        """The peer's address (remembered: it does not change, and asking the kernel costs a syscall)."""
        if self._peer is None:
            try:
                self._peer = self.sock.getpeername()
            except OSError:
                return None
        return self._peer

    def setTimeout(self, timeout):
        """Set the socket's timeout in seconds (None: no limit)."""
        self.sock.settimeout(timeout)

    def getTimeout(self):
        """The socket's timeout in seconds (None: no limit)."""
        return self.sock.gettimeout()

    settimeout, gettimeout = setTimeout, getTimeout  # (Pyro5's names; the others are Pyro4's)

    def getpeercert(self):
        """The peer's TLS certificate as a dict; None on a plain socket or when the peer sent none."""
        try:
            return self.sock.getpeercert()
        except AttributeError:
            return None

    timeout = property(getTimeout, setTimeout)

    def __repr__(self):
        return "<SocketConnection fd=%s peer=%s>" % (self.sock.fileno() if not self._closed else -1,
                                                     self.getpeername())


_monotonic = __import__("time").monotonic
_real_poll = getattr(__import__("select"), "poll", None) and gevent.monkey.get_original("select", "poll")
_real_select = gevent.monkey.get_original("select", "select")


def _wait_fd(fd, readable, deadline):
    """Block this (non-hub) thread until ``fd`` is ready or ``deadline`` passes; False on timeout."""
    while True:
        timeout = None if deadline is None else deadline - _monotonic()
        if timeout is not None and timeout <= 0:
            return False
        if _real_poll is not None:
            poller = _real_poll()
            poller.register(fd, _select.POLLIN if readable else _select.POLLOUT)
            if poller.poll(None if timeout is None else timeout * 1000.0):
                return True
        else:
            ready = _real_select([fd] if readable else [], [] if readable else [fd], [], timeout)
            if ready[0] or ready[1]:
                return True


_PlainSSLContext = gevent.monkey.get_original("ssl", "SSLContext")


def get_ssl_context(servercert="", serverkey="", clientcert="", clientkey="", cacerts="", keypassword="",
                    cooperative=None):
    """A TLS context for a server (servercert given) or a client, from Pyro5's SSL_* settings.

    A server's context makes gevent sockets. A client's follows ``cooperative``:
    False for plain blocking sockets, None (the default) for what suits the
    calling code (see ``program.client_cooperates``).
    """
    if servercert:
        if clientcert:
            raise ValueError("can't have both server cert and client cert")
        context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(servercert, serverkey or None, keypassword or None)
        if cacerts:
            if os.path.isdir(cacerts):
                context.load_verify_locations(capath=cacerts)
            else:
                context.load_verify_locations(cafile=cacerts)
        if config.SSL_REQUIRECLIENTCERT:
            context.verify_mode = gssl.CERT_REQUIRED
        else:
            context.verify_mode = gssl.CERT_NONE
        return context
    if cooperative is None:
        cooperative = program.client_cooperates()
    context = (gssl.SSLContext if cooperative else _PlainSSLContext)(_stdlib_ssl.PROTOCOL_TLS_CLIENT)
    if cacerts:
        if os.path.isdir(cacerts):
            context.load_verify_locations(capath=cacerts)
        else:
            context.load_verify_locations(cafile=cacerts)
    else:
        context.load_default_certs()
    if clientcert:
        context.load_cert_chain(clientcert, clientkey or None, keypassword or None)
    return context


class _VersionSniffer:
    """A server connection's reader until the client's first bytes say which protocol it speaks (48 or 502);
    then the connection gets that protocol's reader instead, and this one only hands on."""

    __slots__ = ("_conn", "_reader502", "_hmac_key", "_start", "_reader")

    def __init__(self, conn, reader502, hmac_key):
        self._conn = conn
        self._reader502 = reader502
        self._hmac_key = hmac_key
        self._start = bytearray()
        self._reader = None

    @property
    def max_size(self):
        return self._reader502.max_size

    def feed(self, data):
        if self._reader is not None:
            self._reader.feed(data)
            return
        self._start += data
        version = protocol48.version_of(self._start)
        if version is None:
            return
        if version == protocol48.PROTOCOL_VERSION:
            # (a large message's signature is checked by the daemon where hashing it holds up nobody)
            self._reader = protocol48.MessageReader48(self._reader502.max_size, self._hmac_key, defer_large_hmac=True)
        else:
            self._reader = self._reader502
        self._reader.feed(self._start)
        self._start = None
        self._conn._reader = self._reader

    def next_message(self):
        return None if self._reader is None else self._reader.next_message()

    @property
    def in_message(self):
        return bool(self._start) if self._reader is None else self._reader.in_message

    @property
    def buffered(self):
        return len(self._start) if self._reader is None else self._reader.buffered

    def bytes_needed(self):
        return protocol.HEADER_SIZE - len(self._start) if self._reader is None else self._reader.bytes_needed()
