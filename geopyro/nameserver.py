"""The name server: maps names to URIs, finds itself by UDP broadcast, and stores in memory or in SQLite.

Run one with ``python -m geopyro.nameserver`` (or ``geopyro-ns``). The remote
interface, the broadcast request/answer and the SQLite schema are those of
Pyro5, so Pyro5 clients and name servers mix freely with geopyro ones.
"""

if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()

import argparse
import contextlib
import logging
import os
import re
import socket
import sqlite3
import sys
import threading
import time

import gevent
import gevent.monkey
import gevent.pool

from . import config, core, errors, program, server, socketutil
from .errors import NamingError

__all__ = ["NameServer", "NameServerDaemon", "BroadcastServer", "MemoryStorage", "SqlStorage", "start_ns",
           "start_ns_loop", "locate_ns", "lookup", "yplookup", "main"]

log = logging.getLogger("geopyro.nameserver")

BROADCAST_REQUEST = b"GET_NSURI"
NS_METADATA = frozenset({"class:Pyro5.nameserver.NameServer", "class:geopyro.nameserver.NameServer"})
_RESERVED = (core.NAMESERVER_NAME, core.DAEMON_NAME)
_WHITESPACE = re.compile(r"\s")
_RealEvent = gevent.monkey.get_original("threading", "Event")
_os_thread_id = gevent.monkey.get_original("_thread", "get_ident")


# --- validation -------------------------------------------------------------------------------------------------

def _check_name(name):
    if not isinstance(name, str):
        raise TypeError("name must be a str")
    if not name:
        raise NamingError("invalid name: a name cannot be empty")
    if _WHITESPACE.search(name):
        raise NamingError("invalid name %r: a name cannot contain spaces or other whitespace" % name)


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


# --- storage ----------------------------------------------------------------------------------------------------

class MemoryStorage:
    """Registrations in a dict: fast, and gone when the name server stops."""

    def __init__(self):
        self._items = {}  # name -> (uri string, frozenset of metadata)

    def get(self, name):
        """(uri, metadata) of a name; KeyError if unknown."""
        return self._items[name]

    def put(self, name, uri, metadata, replace=True):
        """Store a registration; False (and nothing stored) if it exists and ``replace`` is off."""
        if not replace and name in self._items:
            return False
        self._items[name] = (uri, frozenset(metadata))
        return True

    def set_metadata(self, name, metadata):
        """Replace a name's metadata; False if the name is unknown."""
        if name not in self._items:
            return False
        self._items[name] = (self._items[name][0], frozenset(metadata))
        return True

    def delete(self, names):
        """Remove names; the number actually removed."""
        return sum(self._items.pop(name, None) is not None for name in names)

    def entries(self):
        """A snapshot: name -> (uri, metadata)."""
        return dict(self._items)

    def count(self):
        return len(self._items)

    def close(self):
        pass


class SqlStorage:
    """Registrations in an SQLite file (Pyro5's schema), written in one transaction per change."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE, "
               "uri nvarchar NOT NULL)",
               "CREATE TABLE IF NOT EXISTS pyro_metadata (object integer NOT NULL, metadata nvarchar NOT NULL, "
               "FOREIGN KEY(object) REFERENCES pyro_names(id))")

    def __init__(self, dbfile):
        if dbfile == ":memory:":
            raise ValueError("sqlite :memory: databases are not supported; use the 'memory' storage instead")
        self.dbfile = dbfile
        self._lock = threading.RLock()
        self._db = None
        directory = os.path.dirname(os.path.abspath(dbfile))
        if not os.path.isdir(directory):
            raise NamingError("cannot use name server store %s: directory %s does not exist" % (dbfile, directory))
        try:
            self._db = sqlite3.connect(dbfile, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("BEGIN IMMEDIATE")
            for statement in self._SCHEMA:
                self._db.execute(statement)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            self._db.execute("PRAGMA user_version = %d" % version)  # proves the file can be written
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.close()
            raise NamingError("cannot use name server store %s: %s" % (dbfile, exc)) from None

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction; sqlite errors become NamingErrors (the client sees them)."""
        with self._lock:
            if self._db is None:
                raise NamingError("name server store %s is closed" % self.dbfile)
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise NamingError("sqlite error in name server store %s: %s" % (self.dbfile, exc)) from None

    @staticmethod
    def _metadata_of(db, dbid):
        return frozenset(row[0] for row in db.execute("SELECT metadata FROM pyro_metadata WHERE object=?", (dbid,)))

    @staticmethod
    def _delete_id(db, dbid):
        db.execute("DELETE FROM pyro_metadata WHERE object=?", (dbid,))
        db.execute("DELETE FROM pyro_names WHERE id=?", (dbid,))

    def get(self, name):
        with self._transaction() as db:
            row = db.execute("SELECT id, uri FROM pyro_names WHERE name=?", (name,)).fetchone()
            if row is None:
                raise KeyError(name)
            return row[1], self._metadata_of(db, row[0])

    def put(self, name, uri, metadata, replace=True):
        with self._transaction() as db:
            row = db.execute("SELECT id FROM pyro_names WHERE name=?", (name,)).fetchone()
            if row is not None:
                if not replace:
                    return False
                self._delete_id(db, row[0])
            dbid = db.execute("INSERT INTO pyro_names(name, uri) VALUES (?, ?)", (name, uri)).lastrowid
            db.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)",
                           [(dbid, item) for item in metadata])
            return True

    def set_metadata(self, name, metadata):
        with self._transaction() as db:
            row = db.execute("SELECT id FROM pyro_names WHERE name=?", (name,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM pyro_metadata WHERE object=?", (row[0],))
            db.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)",
                           [(row[0], item) for item in metadata])
            return True

    def delete(self, names):
        removed = 0
        with self._transaction() as db:
            for name in names:
                row = db.execute("SELECT id FROM pyro_names WHERE name=?", (name,)).fetchone()
                if row is not None:
                    self._delete_id(db, row[0])
                    removed += 1
        return removed

    def entries(self):
        with self._transaction() as db:
            rows = db.execute("SELECT n.name, n.uri, m.metadata FROM pyro_names n "
                              "LEFT JOIN pyro_metadata m ON m.object = n.id").fetchall()
        collected = {}
        for name, uri, item in rows:
            entry = collected.setdefault(name, (uri, set()))
            if item is not None:
                entry[1].add(item)
        return {name: (uri, frozenset(meta)) for name, (uri, meta) in collected.items()}

    def count(self):
        with self._transaction() as db:
            return db.execute("SELECT count(*) FROM pyro_names").fetchone()[0]

    def close(self):
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def make_storage(storage):
    """A storage object for a storage string: ``memory`` (the default) or ``sql:path/to/file``."""
    storage = storage or "memory"
    if storage == "memory":
        return MemoryStorage()
    if storage.startswith("sql:") and len(storage) > 4:
        return SqlStorage(storage[4:])
    raise ValueError("invalid storage type '%s' (use memory or sql:path/to/file.sqlite)" % storage)


# --- the name server --------------------------------------------------------------------------------------------

@server.expose
class NameServer:
    """A flat name space of name -> URI registrations, each with a set of metadata strings."""

    def __init__(self, storageProvider=None):
        self.storage = storageProvider if storageProvider is not None else MemoryStorage()
        self.lock = threading.RLock()  # never held across a yield: storage calls don't switch greenlets

    def count(self):
        """The number of registrations."""
        return self.storage.count()

    def lookup(self, name, return_metadata=False):
        """The URI of a name; with ``return_metadata`` a (uri, metadata set) tuple."""
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        try:
            uri, metadata = self.storage.get(name)
        except KeyError:
            raise NamingError("unknown name: " + name) from None
        uri = core.URI(uri)
        return (uri, set(metadata)) if return_metadata else uri

    def register(self, name, uri, safe=False, metadata=None):
        """Register a name for a URI (or uri string); ``safe`` refuses to replace an existing name."""
        if isinstance(uri, core.URI):
            uri = str(uri)
        elif isinstance(uri, str):
            core.URI(uri)  # refuse what is not a uri
        else:
            raise TypeError("only URIs or strings can be registered")
        _check_name(name)
        metadata = _check_metadata(metadata)
        with self.lock:
            if not self.storage.put(name, uri, metadata, replace=not safe):
                raise NamingError("name already registered: " + name)
        log.debug("registered %s -> %s", name, uri)

    def set_metadata(self, name, metadata):
        """Replace the metadata of an existing registration."""
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        metadata = _check_metadata(metadata)
        with self.lock:
            if not self.storage.set_metadata(name, metadata):
                raise NamingError("unknown name: " + name)

    def remove(self, name=None, prefix=None, regex=None):
        """Remove one name, or every name with a prefix or matching a regex; the number removed.

        The name server's own registration stays.
        """
        with self.lock:
            if name:
                if name == core.NAMESERVER_NAME:
                    return 0
                return self.storage.delete([name])
            if prefix or regex:
                names = [n for n in self.list(prefix=prefix, regex=regex) if n != core.NAMESERVER_NAME]
                return self.storage.delete(names)
        return 0

    def list(self, prefix=None, regex=None, return_metadata=False):
        """Registrations as {name: uri string} (or {name: (uri, metadata set)}), filtered by prefix or regex.

        A regex must match at the start of the name (``re.match``), as in Pyro5.
        """
        if prefix and regex:
            raise ValueError("you can only filter on one thing at a time")
        if regex:
            try:
                wanted = re.compile(regex).match
            except re.error as exc:
                raise NamingError("invalid regex: " + str(exc)) from None
        elif prefix:
            wanted = lambda name: name.startswith(prefix)  # noqa: E731
        else:
            wanted = lambda name: True  # noqa: E731
        entries = self.storage.entries()
        return {name: (uri, set(meta)) if return_metadata else uri
                for name, (uri, meta) in entries.items() if wanted(name)}

    def yplookup(self, meta_all=None, meta_any=None, return_metadata=True):
        """Registrations that have all (``meta_all``) or any (``meta_any``) of the given metadata."""
        if meta_all and meta_any:
            raise ValueError("you can't use meta_all or meta_any at the same time")
        if meta_all:
            wanted = _check_metadata(meta_all, "metadata_all")
            matches = wanted.issubset
        elif meta_any:
            wanted = _check_metadata(meta_any, "metadata_any")
            matches = wanted.intersection
        else:
            return {}
        return {name: (uri, set(meta)) if return_metadata else uri
                for name, (uri, meta) in self.storage.entries().items() if matches(meta)}

    def ping(self):
        """Do nothing: proves the name server answers."""


# --- removing registrations of servers that are gone -------------------------------------------------------------

class AutoCleaner:
    """Removes registrations whose server no longer accepts connections (config NS_AUTOCLEAN).

    The daemon's housekeeping starts a sweep every NS_AUTOCLEAN seconds in a
    greenlet of the request loop; the connection attempts are gevent sockets,
    so calls keep being served meanwhile. A name goes after ``strikes``
    failed sweeps in a row, so one hiccup does not remove it.
    """

    strikes = 2
    concurrency = 50

    def __init__(self, nameserver, interval):
        if interval <= 0:
            raise ValueError("NS_AUTOCLEAN must be > 0 to clean")
        self.nameserver = nameserver
        self.interval = interval
        self.failures = {}  # name -> failed sweeps in a row
        self.last_sweep = time.monotonic()
        self.sweeper = None
        self.stopped = False

    def due(self, now):
        busy = self.sweeper is not None and not self.sweeper.dead
        return not self.stopped and not busy and now - self.last_sweep >= self.interval

    def start_sweep(self):
        """Start a sweep in a greenlet of the calling thread's hub (the request loop)."""
        self.sweeper = gevent.spawn(self.sweep)

    def sweep(self):
        registrations = {name: uri for name, uri in self.nameserver.list().items() if name not in _RESERVED}
        pool = gevent.pool.Pool(self.concurrency)
        alive = dict(zip(registrations, pool.imap(_answers, registrations.values())))
        gone = []
        for name, ok in alive.items():
            if ok:
                self.failures.pop(name, None)
                continue
            self.failures[name] = self.failures.get(name, 0) + 1
            if self.failures[name] >= self.strikes:
                gone.append(name)
        for name in list(self.failures):
            if name not in registrations:
                del self.failures[name]
        if gone and not self.stopped:
            for name in gone:
                log.info("autoclean: removing %s, its server at %s does not answer", name, registrations[name])
                self.failures.pop(name, None)
            with self.nameserver.lock:
                self.nameserver.storage.delete(gone)
        self.last_sweep = time.monotonic()

    def stop(self):
        self.stopped = True
        sweeper = self.sweeper
        if sweeper is not None and not sweeper.dead:
            with contextlib.suppress(Exception):
                if sweeper.parent is gevent.get_hub():
                    sweeper.kill(block=False)


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
        self.cleaner = None
        self.nameserver = NameServer(make_storage(storage))  # a bad store fails before a port is taken
        try:
            super().__init__(str(host), port, unixsocket, nathost=nathost, natport=natport)
        except BaseException:
            self.nameserver.storage.close()
            raise
        self.register(self.nameserver, core.NAMESERVER_NAME)
        self.nameserver.register(core.NAMESERVER_NAME, self.uriFor(self.nameserver), metadata=NS_METADATA)
        if config.NS_AUTOCLEAN > 0:
            self.cleaner = AutoCleaner(self.nameserver, config.NS_AUTOCLEAN)
        log.info("name server daemon on %s, %d registrations, autoclean %s", self.locationStr,
                 self.nameserver.count(), "every %gs" % config.NS_AUTOCLEAN if self.cleaner else "off")

    @server.cooperative  # it only starts a sweep greenlet on the loop's hub
    def housekeeping(self):
        cleaner = self.cleaner
        if cleaner is not None and cleaner.due(time.monotonic()):
            cleaner.start_sweep()

    def close(self):
        if self.cleaner is not None:
            self.cleaner.stop()
        super().close()
        if self.nameserver is not None:
            self.nameserver.storage.close()


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
                                                timeout=2.0, ipv6=ipv6)
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
        return [self.sock] if self.running else []

    def getPort(self):
        return self._port

    def fileno(self):
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

    def __init__(self, bcserver):  # noqa: the base __init__ would bind a TCP socket
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


def _bind(uristring):
    """A connected proxy for the name server at ``uristring``; raises the connection error."""
    from .client import Proxy
    proxy = Proxy(uristring)
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


def locate_ns(host=None, port=None, broadcast=True):
    """A proxy for a name server.

    With ``host``: the one at host:port (port default NS_PORT; host may be
    ``./u:socketname``). Without: NS_HOST:port when NS_HOST is local, then a
    UDP broadcast on port (default NS_BCPORT) to BROADCAST_ADDRS, then
    NS_HOST:NS_PORT. NamingError tells what was tried when nothing answered.
    """
    if host:
        uristring = _ns_uri(str(host), port or config.NS_PORT)
        try:
            return _bind(uristring)
        except errors.PyroError as exc:
            raise NamingError("Failed to locate the nameserver at %s: %s" % (uristring, exc)) from exc
    tried, last_error = [], None
    ns_host = config.NS_HOST
    if _is_loopback(ns_host):
        uristring = _ns_uri(ns_host, port or config.NS_PORT)
        tried.append(uristring)
        try:
            return _bind(uristring)
        except errors.PyroError as exc:
            last_error = exc
    if broadcast and config.PREFER_IP_VERSION != 6:
        bcport = port or config.NS_BCPORT
        tried.append("broadcast to %s port %d" % (",".join(config.BROADCAST_ADDRS), bcport))
        found = _broadcast_for_uri(bcport)
        if found:
            try:
                return _bind(found)
            except errors.PyroError as exc:
                tried.append(found)
                last_error = exc
    uristring = _ns_uri(ns_host, config.NS_PORT)
    if uristring not in tried:
        tried.append(uristring)
        try:
            return _bind(uristring)
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
