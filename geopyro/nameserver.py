"""The name server: maps names to URIs, finds itself by UDP broadcast, and stores in memory or in SQLite.

Run one with ``python -m geopyro.nameserver`` (or ``geopyro-ns``). The remote
interface, the broadcast request/answer and the SQLite schema are those of
Pyro5, so Pyro5 clients and name servers mix freely with geopyro ones.

Nothing a client asks for runs long on the gevent hub, whatever the program
(monkey-patched or not) and wherever the daemon runs the call:

* SQLite work runs on the store's own thread (one connection, one thread);
  the tables get indexes, so removing or listing thousands of names is a few
  statements, not a scan per name.
* Listing, filtering and yellow-pages searches run on the name server's query
  thread, so big registrations never hold up a ``lookup`` or ``ping``.
* A ``regex`` is checked before it is matched (see ``_NameRegex``): patterns
  whose backtracking could run away are refused with a NamingError saying why.
* ``Pyro.NameServer``, the name server's own registration, cannot be
  registered, re-pointed or given other metadata by a client, and is never
  removed (as in Pyro5, a remove of it removes nothing).
"""

if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()

import argparse
import contextlib
import logging
import socket
import sys
import threading
import time

import gevent
import gevent.monkey
import gevent.pool
from gevent._hub_local import get_hub_if_exists

from . import config, core, errors, execution, program, server, socketutil
from .errors import NamingError
from .nsfilters import _name_filter
from .nsstore import MemoryStorage, SqlStorage, _Worker, make_storage


__all__ = ["NameServer", "NameServerDaemon", "BroadcastServer", "MemoryStorage", "SqlStorage", "start_ns",
           "start_ns_loop", "locate_ns", "lookup", "yplookup", "main"]

log = logging.getLogger("geopyro.nameserver")

BROADCAST_REQUEST = b"GET_NSURI"
NS_METADATA = frozenset({"class:Pyro5.nameserver.NameServer", "class:geopyro.nameserver.NameServer"})
_RESERVED = (core.NAMESERVER_NAME, core.DAEMON_NAME)
_RealEvent = gevent.monkey.get_original("threading", "Event")
_os_thread_id = gevent.monkey.get_original("_thread", "get_ident")
_real_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_start_real_thread = gevent.monkey.get_original("_thread", "start_new_thread")


# --- validation -------------------------------------------------------------------------------------------------

def _check_name(name):
    if not isinstance(name, str):
        raise TypeError("name must be a str")  # any str, as in Pyro5 (spaces too)


def _check_metadata(metadata, what="metadata"):
    """Metadata as a frozenset of strings (None means none); a bare str is refused, as in Pyro5."""
    if metadata is None:
        return frozenset()
    if isinstance(metadata, str):
        raise TypeError("%s should not be a str, but another iterable (set, list, etc)" % what)
    try:
        items = frozenset(metadata)
    except TypeError:
        raise TypeError("%s must be an iterable of strings" % what) from None
    if not all(isinstance(item, str) for item in items):
        raise TypeError("%s items must be strings" % what)
    return items


def _protected(what):
    return NamingError("%s is the name server's own registration: a client cannot %s it"
                       % (core.NAMESERVER_NAME, what))


def _wait_for(lock):
    """Wait while the program holds the name server's lock (Pyro5 programs take it to make several changes
    at once), then go on without holding it: the stores keep their own changes consistent, and holding it
    across a store call would make every greenlet of the loop queue behind one another.

    Its owner is another thread, so a greenlet polls for it rather than block its hub on it.
    """
    while not lock.acquire(blocking=False):
        program.sleep(0.005)
    lock.release()


# --- the name server --------------------------------------------------------------------------------------------

@server.expose
@server.cooperative  # every call only waits (cooperatively) for the storage or the query thread
class NameServer:
    """A flat name space of name -> URI registrations, each with a set of metadata strings.

    Listing, filtering and yellow-pages searches run on a query thread of the
    name server's own; the storage does its own work off the hub too. So the
    methods run inline in the daemon's greenlets (``@cooperative``) and never
    tie up a pool thread or the hub, however large the registrations are.
    """

    def __init__(self, storageProvider=None):
        self.storage = storageProvider if storageProvider is not None else MemoryStorage()
        self.lock = threading.RLock()  # as in Pyro5; the storages keep their own changes consistent
        self._queries = _Worker("name server queries")

    def _called_remotely(self):
        """True while this name server's daemon serves a client's call here, oneway or not (the program
        itself, calling the object directly, may change the name server's own entry, as with Pyro5)."""
        daemon = getattr(self, "_pyroDaemon", None)
        try:
            return daemon is not None and daemon._in_own_call()
        except ReferenceError:
            return False  # its daemon is gone

    def count(self):
        """The number of registrations."""
        return self.storage.count()

    def lookup(self, name, return_metadata=False):
        """The URI of a name; with ``return_metadata`` a (uri, metadata set) tuple."""
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        try:
            uri, metadata = self.storage.entry(name)
        except KeyError:
            raise NamingError("unknown name: " + name) from None
        uri = core.URI(uri)
        return (uri, set(metadata)) if return_metadata else uri

    def register(self, name, uri, safe=False, metadata=None):
        """Register a name for a URI (or uri string); ``safe`` refuses to replace an existing name.

        A remote client may not register ``Pyro.NameServer``: it is the name
        server's own registration.
        """
        if isinstance(uri, core.URI):
            uri = str(uri)
        elif isinstance(uri, str):
            core.URI(uri)  # refuse what is not a uri
        else:
            raise TypeError("only URIs or strings can be registered")
        _check_name(name)
        metadata = _check_metadata(metadata)
        if name == core.NAMESERVER_NAME and self._called_remotely():
            raise _protected("register")
        _wait_for(self.lock)
        if not self.storage.put(name, uri, metadata, replace=not safe):
            raise NamingError("name already registered: " + name)
        log.debug("registered %s -> %s", name, uri)

    def set_metadata(self, name, metadata):
        """Replace the metadata of an existing registration (a remote client may not change ``Pyro.NameServer``'s)."""
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        metadata = _check_metadata(metadata)
        if name == core.NAMESERVER_NAME and self._called_remotely():
            raise _protected("change the metadata of")
        _wait_for(self.lock)
        if not self.storage.set_metadata(name, metadata):
            raise NamingError("unknown name: " + name)

    def remove(self, name=None, prefix=None, regex=None):
        """Remove one name, or every name with a prefix or matching a regex; the number removed.

        The name server's own registration stays: removing it removes nothing
        (returns 0), as in Pyro5.
        """
        if name:
            if name == core.NAMESERVER_NAME:
                return 0
            _wait_for(self.lock)
            return self.storage.delete([name])
        wanted = _name_filter(prefix, regex)
        if wanted is None:
            return 0
        _wait_for(self.lock)
        return self._queries.call(self._remove_selected, wanted)

    def list(self, prefix=None, regex=None, return_metadata=False, *, metadata_all=None, metadata_any=None):
        """Registrations as {name: uri string} (or {name: (uri, metadata set)}), filtered by prefix or regex,
        or (Pyro4's filters, for its clients) by metadata.

        A regex must match at the start of the name (``re.match``), as in
        Pyro5; patterns whose matching could run away are refused (see
        ``_NameRegex``).
        """
        if sum(1 for x in (prefix, regex, metadata_all, metadata_any) if x) > 1:
            raise ValueError("you can only filter on one thing at a time")
        if metadata_all or metadata_any:
            found = self.yplookup(metadata_all, metadata_any, return_metadata)
            return {name: (uri, sorted(metadata)) for name, (uri, metadata) in found.items()} \
                if return_metadata else found  # (lists, as Pyro4's name server sends them)
        wanted = _name_filter(prefix, regex)
        _wait_for(self.lock)
        return self._queries.call(self._select, wanted, return_metadata)

    def yplookup(self, meta_all=None, meta_any=None, return_metadata=True):
        """Registrations that have all (``meta_all``) or any (``meta_any``) of the given metadata."""
        if meta_all and meta_any:
            raise ValueError("you can't use meta_all or meta_any at the same time")
        if meta_all:
            meta_all = _check_metadata(meta_all, "metadata_all")
        elif meta_any:
            meta_any = _check_metadata(meta_any, "metadata_any")
        else:
            return {}
        _wait_for(self.lock)
        return self._queries.call(self._search, meta_all, meta_any, return_metadata)

    def ping(self):
        """Do nothing: proves the name server answers."""

    # on the query thread

    def _with_metadata(self, found, return_metadata):
        if not return_metadata:
            return found
        metadata = self.storage.metadata_of(list(found))
        return {name: (uri, set(metadata[name])) for name, uri in found.items() if name in metadata}

    def _select(self, wanted, return_metadata):
        found = self.storage.names()
        if wanted is not None:
            found = wanted.select(found)
        return self._with_metadata(found, return_metadata)

    def _search(self, meta_all, meta_any, return_metadata):
        return self._with_metadata(self.storage.by_metadata(meta_all or None, meta_any or None), return_metadata)

    def _remove_selected(self, wanted):
        doomed = wanted.select(self.storage.names())
        doomed.pop(core.NAMESERVER_NAME, None)
        return self.storage.delete(list(doomed)) if doomed else 0

    # for the daemon (not exposed)

    def _register_self(self, uri):
        """(the daemon) Register the name server's own URI."""
        self.storage.put(core.NAMESERVER_NAME, str(uri), NS_METADATA)

    def _close(self):
        self._queries.stop("the name server is closed")
        self.storage.close()


# --- removing registrations of servers that are gone -------------------------------------------------------------

class AutoCleaner(threading.Thread):
    """Removes registrations whose server has not accepted a connection for ``max_unreachable_time`` seconds.

    As in Pyro5 it is a thread the name server daemon starts when
    NS_AUTOCLEAN > 0 (at least ``min_autoclean_value`` seconds), so it cleans
    whether or not a request loop runs. Every ``loop_delay`` seconds it sees
    whether NS_AUTOCLEAN seconds have passed since the last sweep; a sweep
    tries every PYRO registration, up to ``concurrency`` at a time, with
    gevent sockets on this thread's own hub, never on the request loop's.
    """

    min_autoclean_value = 3
    max_unreachable_time = 20.0
    loop_delay = 2.0
    override_autoclean_min = False  # lets tests clean more often than a real name server should
    concurrency = 50

    def __init__(self, nameserver):
        self.check_interval()
        super().__init__(name="geopyro name server autoclean", daemon=True)
        self.nameserver = nameserver
        self.unreachable = {}  # name -> since when (time.monotonic) its server did not answer
        self.last_cleaned = time.monotonic()
        self._stopping = threading.Event()
        self._made_in = _os_thread_id()

    @classmethod
    def check_interval(cls):
        """Refuse an NS_AUTOCLEAN that is off or too short, as Pyro5 does."""
        if config.NS_AUTOCLEAN <= 0:
            raise ValueError("NS_AUTOCLEAN must be > 0 to clean")
        if not cls.override_autoclean_min and config.NS_AUTOCLEAN < cls.min_autoclean_value:
            raise ValueError("NS_AUTOCLEAN cannot be smaller than " + str(cls.min_autoclean_value))

    @property
    def stop(self):
        """Pyro5's flag: set it to True to stop the cleaner (a sweep under way skips the names it has not tried)."""
        return self._stopping.is_set()

    @stop.setter
    def stop(self, value):
        if value:
            self._stopping.set()

    def run(self):
        try:
            while not self._stopping.wait(self.loop_delay):
                if time.monotonic() - self.last_cleaned < config.NS_AUTOCLEAN:
                    continue
                try:
                    self.sweep()
                except Exception:
                    if self._stopping.is_set():
                        break  # the name server closed under the sweep
                    log.warning("autoclean: sweep failed", exc_info=True)
                self.last_cleaned = time.monotonic()
        finally:
            hub = get_hub_if_exists() if _os_thread_id() != self._made_in else None
            if hub is not None:
                hub.destroy(destroy_loop=True)  # the hub the sweeps made in this (real) thread of ours

    def _answers(self, uri):
        return True if self._stopping.is_set() else _answers(uri)

    def sweep(self):
        """Try each registration once (not the name server's own) and remove those whose server has not
        answered for ``max_unreachable_time`` seconds or more."""
        registrations = {name: uri for name, uri in self.nameserver.list().items() if name not in _RESERVED}
        pool = gevent.pool.Pool(self.concurrency)
        alive = dict(zip(registrations, pool.imap(self._answers, registrations.values())))
        now = time.monotonic()
        gone = []
        for name, ok in alive.items():
            if ok:
                self.unreachable.pop(name, None)
            elif now - self.unreachable.setdefault(name, now) >= self.max_unreachable_time:
                gone.append(name)
        for name in list(self.unreachable):
            if name not in registrations:
                del self.unreachable[name]
        if gone and not self._stopping.is_set():
            for name in gone:
                log.info("autoclean: removing %s, its server at %s has not answered for %g s", name,
                         registrations[name], self.max_unreachable_time)
                del self.unreachable[name]
            _wait_for(self.nameserver.lock)
            # only if still registered to the uri that did not answer: a server that registered again
            # meanwhile (restarted on another port, say) keeps its new registration
            self.nameserver.storage.delete(gone, expected_uris={name: registrations[name] for name in gone})
        if self.unreachable:
            log.debug("autoclean: %d of %d names unreachable", len(self.unreachable), len(registrations))


def _answers(uri):
    """True if the server of a PYRO uri accepts a connection (other uri kinds are left alone)."""
    try:
        uri = core.URI(uri)
    except errors.PyroError:
        return True
    if uri.protocol != "PYRO":
        return True
    address = uri.sockname or (uri.host, uri.port)
    timeout = min(config.COMMTIMEOUT or 5.0, 5.0)
    try:
        sock = socketutil.create_socket(connect=address, timeout=timeout)
    except (errors.CommunicationError, OSError):
        return False
    sock.close()
    return True


# --- the daemon -------------------------------------------------------------------------------------------------

class NameServerDaemon(server.Daemon):
    """A daemon hosting a NameServer as ``Pyro.NameServer`` (port NS_PORT unless told otherwise)."""

    def __init__(self, host=None, port=None, unixsocket=None, nathost=None, natport=None, storage=None):
        if host is None:
            host = config.HOST
        if port is None:
            port = config.NS_PORT
        self.cleaner_thread = None
        if config.NS_AUTOCLEAN > 0:
            AutoCleaner.check_interval()  # before a port is taken
        self.nameserver = NameServer(make_storage(storage))  # a bad store fails before a port is taken
        try:
            super().__init__(str(host), port, unixsocket, nathost=nathost, natport=natport)
        except BaseException:
            self.nameserver._close()
            raise
        self.register(self.nameserver, core.NAMESERVER_NAME)
        self.nameserver._register_self(self.uriFor(self.nameserver))
        if config.NS_AUTOCLEAN > 0:
            self.cleaner_thread = AutoCleaner(self.nameserver)
            self.cleaner_thread.start()
        log.info("name server daemon on %s, %d registrations, autoclean %s", self.locationStr,
                 self.nameserver.count(), "every %gs" % config.NS_AUTOCLEAN if self.cleaner_thread else "off")

    def close(self):
        """Close the daemon, stop the cleaner and close the store; ``nameserver`` is None afterwards (as in Pyro5)."""
        cleaner, self.cleaner_thread = self.cleaner_thread, None
        if cleaner is not None:
            cleaner.stop = True
        super().close()
        if self.nameserver is not None:
            self.nameserver._close()
            self.nameserver = None
        if cleaner is not None and cleaner is not threading.current_thread():
            if gevent.monkey.is_module_patched("threading"):
                cleaner.join(10)  # a greenlet: joining it yields
            else:
                execution.run_off_loop(cleaner.join, 10)  # a sweep may take seconds to notice: not on a hub


# --- broadcast discovery ----------------------------------------------------------------------------------------

class BroadcastServer:
    """Answers ``GET_NSURI`` UDP requests with the name server's URI.

    Serve it with ``runInThread()``, from your own select loop
    (``fileno()``/``sockets`` and ``processRequest()``), or inside the name
    server's request loop with ``nsDaemon.combine(bcserver)`` (both server types).
    """

    def __init__(self, nsUri, bchost=None, bcport=None, ipv6=False):
        self.nsUri = core.URI(nsUri)
        bcport = config.NS_BCPORT if bcport is None else bcport
        bchost = config.NS_BCHOST if bchost is None else str(bchost)
        ipv6 = ipv6 or bool(self.nsUri.host and ":" in self.nsUri.host)
        self.sock = socketutil.create_bc_socket((bchost or "", bcport), reuseaddr=config.SOCK_REUSE,
                                                timeout=2.0, ipv6=ipv6, cooperative=True)
        self._thread = _os_thread_id()
        bound_host, bound_port = self.sock.getsockname()[:2]
        self._port, self._fileno = bound_port, self.sock.fileno()
        self.locationStr = "%s:%d" % (core.host_for_uri(bchost or bound_host), bound_port)
        self.running = True
        self._looping = _RealEvent()  # set while no requestLoop runs
        self._looping.set()
        self.transportServer = _BroadcastTransport(self)
        log.info("broadcast server on %s answers for %s", self.locationStr, self.nsUri)

    def __repr__(self):
        return "<BroadcastServer on %s for %s>" % (self.locationStr, self.nsUri)

    @property
    def sockets(self):
        """The UDP socket while the broadcast server runs (for an outside loop to wait on), else none."""
        return [self.sock] if self.running else []

    def getPort(self):
        """The UDP port the broadcast socket is bound to (the one the OS chose when asked for port 0)."""
        return self._port

    def fileno(self):
        """The broadcast socket's file descriptor, for ``select()`` in an event loop of your own."""
        return self._fileno  # stays the same when the socket moves to another thread's hub

    def _own_socket(self):
        """The socket, moved to the calling thread's hub if it was made in another thread."""
        if _os_thread_id() != self._thread:
            self.sock = socketutil.rewrap_for_this_thread(self.sock)
            self._thread = _os_thread_id()
        return self.sock

    def processRequest(self):
        """Read one datagram (waiting up to the socket timeout) and answer it if it asks for the NS uri."""
        sock = self._own_socket()
        try:
            data, address = sock.recvfrom(100)
        except (OSError, socket.timeout):
            return
        if data != BROADCAST_REQUEST:
            return
        with contextlib.suppress(OSError):
            sock.sendto(str(self._answer_uri(address[0])).encode("iso-8859-1"), 0, address)
            log.debug("answered a broadcast from %s", address[0])

    def _answer_uri(self, client_ip):
        if self.nsUri.host not in ("0.0.0.0", "::"):
            return self.nsUri
        uri = core.URI(self.nsUri)
        with contextlib.suppress(Exception):
            uri.host = str(socketutil.get_interface(client_ip).ip)  # the address the client can reach us on
        return uri

    def requestLoop(self, loopCondition=lambda: True):
        """Answer requests until closed or ``loopCondition()`` is false (checked at least every 0.5 s)."""
        self._own_socket().settimeout(0.5)
        self._looping.clear()
        try:
            while self.running and loopCondition():
                self.processRequest()
        finally:
            if not self.running:
                self._close_socket()  # close() came from another thread: the socket's own thread closes it
            self._looping.set()

    def runInThread(self):
        """Serve in a daemon thread (a greenlet when threading is monkey-patched); returns the thread."""
        thread = threading.Thread(target=self.requestLoop, name="geopyro ns broadcast", daemon=True)
        thread.start()
        return thread

    def close(self):
        """Stop answering and release the socket (a loop in another thread ends within 0.5 s)."""
        if not self.running:
            return
        self.running = False
        if _os_thread_id() == self._thread or not self._looping.wait(2.0):
            self._close_socket()
        log.debug("broadcast server on %s closed", self.locationStr)

    def _close_socket(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _multiplex_base():
    from .servers.multiplex import MultiplexServer
    return MultiplexServer


class _BroadcastTransport(_multiplex_base()):
    """What ``Daemon.combine`` needs from a combined party, for a BroadcastServer.

    It is a MultiplexServer only in type (multiplex combine checks it): the
    multiplex loop calls ``_register_all`` and then our callback when the UDP
    socket is readable; the greenlet loop runs ``loop()`` in a greenlet.
    """

    def __init__(self, bcserver):  # (not the base __init__: it would bind a TCP socket)
        self.bcserver = bcserver
        self.daemon = self  # the multiplex housekeeping calls daemon._housekeeping()
        self._owner = self
        self._selector = None
        self._combined = []
        self._stop_requested = False

    def __repr__(self):
        return "<broadcast transport of %r>" % (self.bcserver,)

    @property
    def sock(self):
        return self.bcserver.sock

    @property
    def sockets(self):
        """The broadcast server's sockets, so a daemon that combines this transport waits on them too."""
        return self.bcserver.sockets

    @property
    def locationStr(self):
        return self.bcserver.locationStr

    def _move_to_this_thread(self):
        self.bcserver._own_socket()

    def _register_all(self, selector):
        if self.bcserver.running:
            self.bcserver._own_socket()
            selector.register(self.bcserver.sock, 1, self._readable)

    def _readable(self):
        self.bcserver.sock.settimeout(0.0)  # the selector said there is a datagram: don't wait
        self.bcserver.processRequest()

    def events(self, eventsockets):
        for _ in eventsockets:
            self._readable()

    def _expire_idle(self, now):
        pass

    def _housekeeping(self):
        pass

    def loop(self, loop_condition=lambda: True):
        self._stop_requested = False
        self.bcserver.requestLoop(lambda: loop_condition() and not self._stop_requested)

    def request_stop(self):
        self._stop_requested = True

    def shutdown(self):
        self.request_stop()

    def close(self):
        self.bcserver.close()

    def _close_now(self):
        self.bcserver.close()


# --- starting a name server -------------------------------------------------------------------------------------

def _is_loopback(host):
    return host.startswith("127.") or host in ("localhost", "::1")


def start_ns(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None, unixsocket=None, nathost=None,
             natport=None, storage=None):
    """Make a name server daemon (not yet serving) and its broadcast server; returns (uri, daemon, bcserver).

    There is no broadcast server for a Unix socket or a loopback address
    (nobody else could reach the name server anyway); bcserver is then None.
    """
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
    uri = daemon.uriFor(daemon.nameserver)
    bcserver = None
    if enableBroadcast and not unixsocket:
        bound = daemon.sock.getsockname()
        if daemon.sock.family == socket.AF_INET6:
            log.info("no broadcast server for an IPv6 name server")
        elif _is_loopback(bound[0]):
            log.info("no broadcast server for a name server on loopback %s", bound[0])
        else:
            try:
                bcserver = BroadcastServer(daemon.uriFor(daemon.nameserver, nat=False), bchost, bcport)
            except BaseException:
                daemon.close()
                raise
    return uri, daemon, bcserver


def start_ns_loop(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None, unixsocket=None,
                  nathost=None, natport=None, storage=None, loopCondition=lambda: True):
    """Start a name server and serve until ``loopCondition()`` is false or the process is interrupted."""
    uri, daemon, bcserver = start_ns(host, port, enableBroadcast, bchost, bcport, unixsocket, nathost, natport,
                                     storage)
    if bcserver is not None:
        daemon.combine(bcserver)
        print("Broadcast server running on %s" % bcserver.locationStr)
    elif enableBroadcast and not unixsocket:
        print("Not starting broadcast server for localhost.")
    existing = daemon.nameserver.count() - 1
    if existing > 0:
        print("Persistent store contains %d existing registrations." % existing)
    print("NS running on %s" % daemon.locationStr)
    if daemon.natLocationStr:
        print("internal URI = %s" % daemon.uriFor(daemon.nameserver, nat=False))
        print("external URI = %s" % uri)
    else:
        print("URI = %s" % uri)
    sys.stdout.flush()
    try:
        daemon.requestLoop(loopCondition)
    except KeyboardInterrupt:
        pass
    finally:
        daemon.close()
        if bcserver is not None:
            bcserver.close()
    print("NS shut down.")


# --- finding a name server --------------------------------------------------------------------------------------

def _ns_uri(host, port):
    if core.URI.isUnixsockLocation(host):
        return "PYRO:%s@%s" % (core.NAMESERVER_NAME, host)
    return "PYRO:%s@%s:%d" % (core.NAMESERVER_NAME, core.host_for_uri(host), port)


def _ns_proxy(uristring, protocol=None, hmac_key=None):
    """A proxy for the name server at ``uristring``, talking ``protocol`` (None: CLIENT_PROTOCOL; 48: a Pyro4
    name server, or a geopyro one that accepts Pyro4 clients), signing with ``hmac_key``."""
    from .client import Proxy
    proxy = Proxy(uristring)
    proxy._pyroProtocol = protocol
    proxy._pyroHmacKey = hmac_key
    return proxy


def _bind(uristring, protocol=None, hmac_key=None):
    """A connected proxy for the name server at ``uristring``; raises the connection error."""
    proxy = _ns_proxy(uristring, protocol, hmac_key)
    try:
        proxy._pyroBind()
    except BaseException:
        proxy._pyroRelease()
        raise
    log.debug("located the name server at %s", uristring)
    return proxy


def _broadcast_for_uri(port):
    """The NS uri string announced by a broadcast server on ``port``, or None when nobody answers."""
    tries, timeout = 3, 0.7
    sock = socketutil.create_bc_socket(reuseaddr=config.SOCK_REUSE, timeout=timeout,
                                       cooperative=program.client_cooperates())
    try:
        for _ in range(tries):
            sent = 0
            for address in config.BROADCAST_ADDRS:
                try:
                    sock.sendto(BROADCAST_REQUEST, 0, (address, port))
                    sent += 1
                except OSError as exc:
                    log.debug("broadcast to %s:%d failed: %s", address, port, exc)
            if not sent:
                return None
            try:
                data, _ = sock.recvfrom(100)
            except (socket.timeout, OSError):
                continue
            return data.decode("iso-8859-1")
    finally:
        sock.close()
    return None


def locate_ns(host=None, port=None, broadcast=True, protocol=None, hmac_key=None):
    """A proxy for a name server.

    With ``host``: the one at host:port (port default NS_PORT; host may be
    ``./u:socketname``). Without: NS_HOST:port when NS_HOST is local, then a
    UDP broadcast on port (default NS_BCPORT) to BROADCAST_ADDRS (whose answer
    gives a proxy that connects on first use), then NS_HOST:NS_PORT.
    NamingError tells what was tried when nothing answered. ``protocol`` and
    ``hmac_key``: how the proxy talks to it (see _ns_proxy).
    """
    if host:
        uristring = _ns_uri(str(host), port or config.NS_PORT)
        try:
            return _bind(uristring, protocol, hmac_key)
        except errors.PyroError as exc:
            raise NamingError("Failed to locate the nameserver at %s: %s" % (uristring, exc)) from exc
    tried, last_error = [], None
    ns_host = config.NS_HOST
    if _is_loopback(ns_host):
        uristring = _ns_uri(ns_host, port or config.NS_PORT)
        tried.append(uristring)
        try:
            return _bind(uristring, protocol, hmac_key)
        except errors.PyroError as exc:
            last_error = exc
    if broadcast and config.PREFER_IP_VERSION != 6:
        bcport = port or config.NS_BCPORT
        tried.append("broadcast to %s port %d" % (",".join(config.BROADCAST_ADDRS), bcport))
        found = _broadcast_for_uri(bcport)
        if found:
            log.debug("a name server answered the broadcast: %s", found)
            return _ns_proxy(found, protocol, hmac_key)  # not bound yet, as in Pyro5: it answered, so it is there
    uristring = _ns_uri(ns_host, config.NS_PORT)
    if uristring not in tried:
        tried.append(uristring)
        try:
            return _bind(uristring, protocol, hmac_key)
        except errors.PyroError as exc:
            last_error = exc
    raise NamingError("Failed to locate the nameserver (tried %s): %s" % ("; ".join(tried), last_error)) \
        from last_error


def _retry(call, delay_time, good=lambda result: True):
    """Call until it succeeds with a good result or ``delay_time`` (default NS_LOOKUP_DELAY) has passed."""
    delay_time = delay_time or config.NS_LOOKUP_DELAY
    deadline = time.monotonic() + delay_time
    pause = max(0.05, min(0.2, delay_time / 10))
    while time.monotonic() < deadline:
        try:
            result = call()
            if good(result):
                return result
        except (NamingError, errors.TimeoutError):
            pass
        program.sleep(min(pause, max(0.0, deadline - time.monotonic())))
    return call()


def lookup(nameserver, name, return_metadata=False, delay_time=0):
    """``nameserver.lookup`` that waits up to ``delay_time`` (or NS_LOOKUP_DELAY) for the name to appear."""
    return _retry(lambda: nameserver.lookup(name, return_metadata), delay_time)


def yplookup(nameserver, meta_all=None, meta_any=None, return_metadata=True, delay_time=0):
    """``nameserver.yplookup`` that waits up to ``delay_time`` (or NS_LOOKUP_DELAY) for a match to appear."""
    return _retry(lambda: nameserver.yplookup(meta_all, meta_any, return_metadata), delay_time, bool)


# --- command line -----------------------------------------------------------------------------------------------

def _parse(args):
    parser = argparse.ArgumentParser(prog="geopyro-ns", description="Start a geopyro (Pyro5-compatible) name server.")
    parser.add_argument("-n", "--host", help="hostname to bind the server on (default: config HOST)")
    parser.add_argument("-p", "--port", type=int, help="port to bind the server on (0: a free port; default NS_PORT)")
    parser.add_argument("-u", "--unixsocket", help="Unix domain socket name to bind the server on")
    parser.add_argument("-s", "--storage", default="memory", help="storage: memory (default) or sql:file.sqlite")
    parser.add_argument("--bchost", help="hostname to bind the broadcast server on (default \"\")")
    parser.add_argument("--bcport", type=int, help="port to bind the broadcast server on (0: a free port)")
    parser.add_argument("--nathost", help="external hostname in case of NAT")
    parser.add_argument("--natport", type=int, help="external port in case of NAT")
    parser.add_argument("-x", "--nobc", dest="enablebc", action="store_false", help="don't start a broadcast server")
    return parser.parse_args(args)


def main(args=None):
    """``geopyro-ns``: run a name server until interrupted. Returns the exit code."""
    options = _parse(args)
    try:
        start_ns_loop(options.host, options.port, enableBroadcast=options.enablebc, bchost=options.bchost,
                      bcport=options.bcport, unixsocket=options.unixsocket, nathost=options.nathost,
                      natport=options.natport, storage=options.storage)
    except (errors.PyroError, ValueError, OSError) as exc:
        print("Error: cannot start the name server: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from geopyro.nameserver import main as _main  # the importable module, not this __main__ copy
    sys.exit(_main())
