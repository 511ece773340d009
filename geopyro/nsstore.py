"""The name server's stores: in memory, or in an SQLite file with Pyro5's schema; and the worker thread that
keeps SQLite off the gevent hub.

Both stores may be called from any thread or greenlet. Their methods are the
name server's (get, put, set_metadata, delete, names, metadata_of,
by_metadata, count, close); Pyro5's SqlStorage reads and writes the same file.
"""

import contextlib
import logging
import os
import sqlite3

import gevent
import gevent.monkey
from gevent._hub_local import get_hub_if_exists
from gevent.hub import Waiter
from greenlet import getcurrent

from .errors import NamingError
from .execution import take_outcome

from _queue import Empty as _QueueEmpty, SimpleQueue as _RealQueue  # C: monkey-patching never replaces them

__all__ = ["MemoryStorage", "SqlStorage", "make_storage"]

log = logging.getLogger("geopyro.nameserver")

_RealEvent = gevent.monkey.get_original("threading", "Event")
_os_thread_id = gevent.monkey.get_original("_thread", "get_ident")
_real_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_start_real_thread = gevent.monkey.get_original("_thread", "start_new_thread")

# --- work off the hub -------------------------------------------------------------------------------------------

class _Job:
    """One call for a _Worker, and how its caller is told it is done: an async watcher of the caller's hub
    (``notify``), or a real lock the caller blocks on (``done``)."""

    __slots__ = ("func", "args", "outcome", "notify", "notify_lock", "done")

    def __init__(self, func, args, notify=None):
        self.func, self.args, self.outcome, self.notify = func, args, None, notify
        self.notify_lock = _real_lock()  # the caller stops listening under it: no send() to a closed watcher
        self.done = None
        if notify is None:
            self.done = _real_lock()
            self.done.acquire()

    def run(self):
        try:
            self.outcome = (True, self.func(*self.args))
        except BaseException as exc:  # handed to the caller, who raises it
            self.outcome = (False, exc)
        self.func = self.args = None
        if self.done is not None:
            self.done.release()
            return
        with self.notify_lock:
            if self.notify is not None:
                self.notify.send()


class _Worker:
    """One real OS thread that runs jobs in turn; whoever submits one waits without blocking a gevent hub.

    A greenlet waits cooperatively: its hub keeps serving, and an async watcher
    of that hub (thread-safe to signal) wakes it when the job is done. A plain
    thread, or a hub itself, blocks on a lock. A job that submits another job to
    the same worker runs it at once. The thread ends after IDLE_TIMEOUT seconds
    without work and comes back with the next job. It is a real thread even in a
    monkey-patched program, so SQLite calls and long filtering never run on a hub.
    """

    IDLE_TIMEOUT = 10.0

    def __init__(self, name):
        self.name = name
        self._jobs = _RealQueue()
        self._lock = _real_lock()  # _running, _thread_id, _closed
        self._running = False
        self._thread_id = None
        self._closed = None  # the reason new jobs are refused, once closed

    def __repr__(self):
        return "<_Worker %s%s>" % (self.name, " running" if self._running else "")

    def call(self, func, *args):
        """``func(*args)`` run on the worker thread: its result, or its exception raised here."""
        if _os_thread_id() == self._thread_id:
            return func(*args)
        hub = get_hub_if_exists()
        if hub is not None and getcurrent() is not hub:
            watcher = hub.loop.async_()  # active while we wait: the hub's loop keeps running for it
            waiter = Waiter(hub)
            watcher.start(waiter.switch, None)
            job = _Job(func, args, watcher)
            try:
                self._submit(job)
                waiter.get()
            finally:
                with job.notify_lock:
                    job.notify = None
                watcher.stop()
                watcher.close()
        else:
            job = _Job(func, args)
            self._submit(job)
            job.done.acquire()
        return take_outcome(job, "outcome")

    def _submit(self, job):
        with self._lock:
            if self._closed:
                raise NamingError(self._closed)
            self._jobs.put(job)
            if not self._running:
                self._running = True
                try:
                    _start_real_thread(self._serve, ())
                except BaseException:
                    self._running = False  # the job stays queued for the next thread; its caller gets the error
                    raise

    def _serve(self):
        with self._lock:
            self._thread_id = _os_thread_id()
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_TIMEOUT)
            except _QueueEmpty:
                job = None
            if job is None:
                with self._lock:
                    if self._closed or self._jobs.empty():
                        self._running = False
                        self._thread_id = None
                        return
                continue
            job.run()
            job = None

    def release(self):
        """Let the thread end once the jobs already queued are done; a later job starts a new one."""
        with self._lock:
            if self._running and not self._closed:
                self._jobs.put(None)

    def stop(self, reason="closed"):
        """Refuse new jobs; the thread ends once the jobs already queued are done."""
        with self._lock:
            if self._closed:
                return
            self._closed = reason
            if self._running:
                self._jobs.put(None)


# --- storage ----------------------------------------------------------------------------------------------------
#
# Both storages offer: entry, put, set_metadata, delete, names, metadata_of, by_metadata, count, close. Every method
# may be called from any thread or greenlet: the memory storage only does quick dict work under a short lock (the
# bulk methods are called from the name server's query thread), the SQL storage runs everything on its own thread.

class _Mapping:
    """Pyro5's stores are mappings of name -> (uri, metadata set); code that uses them so works with ours."""

    def __getitem__(self, name):
        uri, metadata = self.entry(name)
        return uri, set(metadata)

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __setitem__(self, name, value):
        uri, metadata = value
        self.put(name, str(uri), frozenset(metadata or ()))

    def __delitem__(self, name):
        if not self.delete([name]):
            raise KeyError(name)

    def __contains__(self, name):
        try:
            self.entry(name)
        except KeyError:
            return False
        return True

    def __len__(self):
        return self.count()

    def __iter__(self):
        return iter(list(self.names()))

    def keys(self):
        return list(self.names())

    def values(self):
        return list(self.everything(return_metadata=True).values())

    def items(self):
        return list(self.everything(return_metadata=True).items())

    def pop(self, name, *default):
        try:
            value = self[name]
        except KeyError:
            if default:
                return default[0]
            raise
        self.delete([name])
        return value

    def update(self, other=(), **more):
        for name, value in (dict(other, **more)).items():
            self[name] = value

    def clear(self):
        self.delete(list(self.names()))

    def everything(self, return_metadata=False):
        """A snapshot, as Pyro5's stores give it: name -> uri, or name -> (uri, metadata set)."""
        names = self.names()
        if not return_metadata:
            return names
        metadata = self.metadata_of(list(names))
        return {name: (uri, set(metadata.get(name, ()))) for name, uri in names.items()}

    def remove_items(self, names):
        """Remove those of ``names`` that are registered (Pyro5's name)."""
        self.delete(list(names))


class MemoryStorage(_Mapping):
    """Registrations in a dict: fast, and gone when the name server stops."""

    def __init__(self):
        self._items = {}  # name -> (uri string, frozenset of metadata)
        self._lock = _real_lock()  # held only for dict operations, never across a wait

    def entry(self, name):
        """(uri, metadata) of a name; KeyError if unknown."""
        return self._items[name]

    def put(self, name, uri, metadata, replace=True):
        """Store a registration; False (and nothing stored) if it exists and ``replace`` is off."""
        entry = (uri, frozenset(metadata))
        with self._lock:
            if not replace and name in self._items:
                return False
            self._items[name] = entry
        return True

    def set_metadata(self, name, metadata):
        """Replace a name's metadata; False if the name is unknown."""
        metadata = frozenset(metadata)
        with self._lock:
            if name not in self._items:
                return False
            self._items[name] = (self._items[name][0], metadata)
        return True

    def delete(self, names, expected_uris=None):
        """Remove names; the number actually removed. With ``expected_uris`` ({name: uri}) a name is removed only
        if it still stands for that uri (a registration made meanwhile stays)."""
        removed = 0
        with self._lock:
            for name in names:
                if expected_uris is not None and self._items.get(name, (None,))[0] != expected_uris.get(name):
                    continue
                removed += self._items.pop(name, None) is not None
        return removed

    def _snapshot(self):
        with self._lock:
            return dict(self._items)

    def names(self):
        """A snapshot: name -> uri."""
        return {name: entry[0] for name, entry in self._snapshot().items()}

    def metadata_of(self, names):
        """name -> metadata for those of ``names`` that are registered."""
        items = self._items
        found = {}
        for name in names:
            entry = items.get(name)
            if entry is not None:
                found[name] = entry[1]
        return found

    def by_metadata(self, meta_all=None, meta_any=None):
        """name -> uri of the registrations having all of ``meta_all`` (or any of ``meta_any``)."""
        if meta_all:
            return {name: uri for name, (uri, meta) in self._snapshot().items() if meta_all.issubset(meta)}
        return {name: uri for name, (uri, meta) in self._snapshot().items() if not meta_any.isdisjoint(meta)}

    def count(self):
        """How many names are registered."""
        return len(self._items)

    def close(self):
        """Nothing to release (the registrations go with the object); here so both stores offer the same methods."""
        pass


class SqlStorage(_Mapping):
    """Registrations in an SQLite file (Pyro5's schema, plus indexes), each connection used from a thread of its own.

    Two connections, each on a ``_Worker`` thread: the store's own one makes
    every change and answers single names (``get``, ``count``), a second one
    does the bulk reads (``names``, ``metadata_of``, ``by_metadata``), each in
    one read transaction. Callers wait without blocking any gevent hub, and a
    ``lookup`` never waits behind a listing of the whole store. A bulk delete
    goes in batches of DELETE_BATCH names, one transaction each, so lookups
    get their turn between batches. The indexes on ``pyro_metadata`` make a
    name's metadata one index lookup instead of a scan of the table; Pyro5's
    own SqlStorage reads and writes the file as before (SQLite maintains the
    indexes for it).
    """

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE, "
               "uri nvarchar NOT NULL)",
               "CREATE TABLE IF NOT EXISTS pyro_metadata (object integer NOT NULL, metadata nvarchar NOT NULL, "
               "FOREIGN KEY(object) REFERENCES pyro_names(id))",
               "CREATE INDEX IF NOT EXISTS pyro_metadata_object_index ON pyro_metadata(object)",
               "CREATE INDEX IF NOT EXISTS pyro_metadata_metadata_index ON pyro_metadata(metadata)")
    # names, metadata or ids of one request, for set-based statements (per connection, never in the file)
    _TEMP = ("CREATE TEMP TABLE IF NOT EXISTS geopyro_keys (key nvarchar PRIMARY KEY)",
             "CREATE TEMP TABLE IF NOT EXISTS geopyro_ids (id integer PRIMARY KEY)")
    # metadata rows of removed names left by a crash during a bulk delete: invisible, removed at start
    _PURGE_ORPHANS = "DELETE FROM pyro_metadata WHERE object NOT IN (SELECT id FROM pyro_names)"
    DELETE_BATCH = 1000  # names per transaction in a bulk delete
    METADATA_BATCH = 20000  # metadata rows per transaction in a bulk delete

    def __delitem__(self, name):
        self.delete([name])  # (as Pyro5's SqlStorage: an unknown name is no error; the memory store is a dict's)

    def __init__(self, dbfile):
        self._closed = False
        if dbfile == ":memory:":
            raise ValueError("sqlite :memory: databases are not supported; use the 'memory' storage instead")
        self.dbfile = dbfile
        self._db = self._read_db = None
        directory = os.path.dirname(os.path.abspath(dbfile))
        if not os.path.isdir(directory):
            raise NamingError("cannot use name server store %s: directory %s does not exist" % (dbfile, directory))
        self._worker = _Worker("sqlite %s" % dbfile)
        self._reader = _Worker("sqlite reads %s" % dbfile)
        try:
            self._worker.call(self._open)
        except BaseException:
            self.close()
            raise

    def _connect(self):
        db = sqlite3.connect(self.dbfile, check_same_thread=False, isolation_level=None, timeout=10.0)
        for statement in self._TEMP:
            db.execute(statement)
        return db

    def _open(self):
        try:
            self._db = self._connect()
            self._db.execute("BEGIN IMMEDIATE")
            for statement in self._SCHEMA:
                self._db.execute(statement)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            self._db.execute("PRAGMA user_version = %d" % version)  # proves the file can be written
            self._db.execute(self._PURGE_ORPHANS)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._close_db()
            raise NamingError("cannot use name server store %s: %s" % (self.dbfile, exc)) from None

    def _run(self, func, *args, write=False):
        """``func(db, *args)`` in one transaction on the store's own connection and thread."""
        return self._worker.call(self._transaction, "_db", func, args, write)

    def _read(self, func, *args):
        """``func(db, *args)`` in one read transaction on the bulk-read connection and thread."""
        return self._reader.call(self._transaction, "_read_db", func, args, False)

    def _transaction(self, which, func, args, write):
        """(on a worker) Run ``func`` in a transaction; sqlite errors become NamingErrors (the client sees them)."""
        try:
            db = getattr(self, which)
            once = db is None and self._closed  # a use after close(): a connection for this one, as Pyro5's
            if db is None:
                db = self._connect()
                if not once:
                    setattr(self, which, db)  # (the bulk-read connection, made at the first read)
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = func(db, *args)
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return result
            finally:
                if once:
                    db.close()
        except sqlite3.Error as exc:
            raise NamingError("sqlite error in name server store %s: %s" % (self.dbfile, exc)) from None

    @staticmethod
    def _fill_keys(db, keys):
        db.execute("DELETE FROM temp.geopyro_keys")
        db.executemany("INSERT OR IGNORE INTO temp.geopyro_keys(key) VALUES (?)", ((key,) for key in keys))

    @staticmethod
    def _fill_ids(db, ids):
        db.execute("DELETE FROM temp.geopyro_ids")
        db.executemany("INSERT OR IGNORE INTO temp.geopyro_ids(id) VALUES (?)", ((dbid,) for dbid in ids))

    @staticmethod
    def _metadata_by_id(db, dbid):
        return frozenset(row[0] for row in db.execute("SELECT metadata FROM pyro_metadata WHERE object=?", (dbid,)))

    # each _do_* runs on a worker thread, inside a transaction

    def _do_get(self, db, name):
        row = db.execute("SELECT id, uri FROM pyro_names WHERE name=?", (name,)).fetchone()
        if row is None:
            raise KeyError(name)
        return row[1], self._metadata_by_id(db, row[0])

    @staticmethod
    def _do_put(db, name, uri, metadata, replace):
        row = db.execute("SELECT id FROM pyro_names WHERE name=?", (name,)).fetchone()
        if row is None:
            dbid = db.execute("INSERT INTO pyro_names(name, uri) VALUES (?, ?)", (name, uri)).lastrowid
            # a reused id may still have metadata of a removed name, not yet purged (see _do_delete)
            db.execute("DELETE FROM pyro_metadata WHERE object=?", (dbid,))
        elif not replace:
            return False
        else:
            dbid = row[0]
            db.execute("DELETE FROM pyro_metadata WHERE object=?", (dbid,))
            db.execute("UPDATE pyro_names SET uri=? WHERE id=?", (uri, dbid))
        db.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)", ((dbid, item) for item in metadata))
        return True

    @staticmethod
    def _do_set_metadata(db, name, metadata):
        row = db.execute("SELECT id FROM pyro_names WHERE name=?", (name,)).fetchone()
        if row is None:
            return False
        dbid = row[0]
        db.execute("DELETE FROM pyro_metadata WHERE object=?", (dbid,))
        db.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)", ((dbid, item) for item in metadata))
        return True

    def _do_delete(self, db, names, expected_uris=None):
        """Remove names with their metadata (with ``expected_uris``, only those still standing for that uri); the
        ids whose metadata is left to purge (when there is a lot)."""
        self._fill_keys(db, names)
        ids = [row[0] for row in db.execute("SELECT id, name, uri FROM pyro_names WHERE name IN (SELECT key FROM "
                                            "temp.geopyro_keys)")
               if expected_uris is None or expected_uris.get(row[1]) == row[2]]
        db.execute("DELETE FROM temp.geopyro_keys")
        self._fill_ids(db, ids)
        rows = db.execute("SELECT count(*) FROM pyro_metadata WHERE object IN (SELECT id FROM temp.geopyro_ids)")
        left = []
        if rows.fetchone()[0] <= self.METADATA_BATCH:
            db.execute("DELETE FROM pyro_metadata WHERE object IN (SELECT id FROM temp.geopyro_ids)")
        else:
            left = ids  # without their names these rows are never read; _do_purge removes them in batches
        db.execute("DELETE FROM pyro_names WHERE id IN (SELECT id FROM temp.geopyro_ids)")
        db.execute("DELETE FROM temp.geopyro_ids")
        return len(ids), left

    def _do_purge(self, db, ids):
        """Remove up to METADATA_BATCH metadata rows of removed names; True when none are left."""
        self._fill_ids(db, ids)
        deleted = db.execute("DELETE FROM pyro_metadata WHERE rowid IN (SELECT rowid FROM pyro_metadata WHERE "
                             "object IN (SELECT id FROM temp.geopyro_ids) AND object NOT IN "
                             "(SELECT id FROM pyro_names) LIMIT %d)" % self.METADATA_BATCH).rowcount
        db.execute("DELETE FROM temp.geopyro_ids")
        return deleted < self.METADATA_BATCH

    @staticmethod
    def _do_names(db):
        return dict(db.execute("SELECT name, uri FROM pyro_names"))

    def _do_metadata_of(self, db, names):
        self._fill_keys(db, names)
        found = {}
        for name, item in db.execute("SELECT n.name, m.metadata FROM temp.geopyro_keys k "
                                     "JOIN pyro_names n ON n.name = k.key LEFT JOIN pyro_metadata m ON m.object = n.id"):
            items = found.get(name)
            if items is None:
                items = found[name] = []
            if item is not None:
                items.append(item)
        db.execute("DELETE FROM temp.geopyro_keys")
        return {name: frozenset(items) for name, items in found.items()}

    def _do_by_metadata(self, db, meta_all, meta_any):
        self._fill_keys(db, meta_all or meta_any)
        having = "GROUP BY object HAVING count(DISTINCT metadata) = %d" % len(meta_all) if meta_all else ""
        rows = db.execute("SELECT name, uri FROM pyro_names WHERE id IN (SELECT object FROM pyro_metadata "
                          "WHERE metadata IN (SELECT key FROM temp.geopyro_keys) %s)" % having).fetchall()
        db.execute("DELETE FROM temp.geopyro_keys")
        return dict(rows)

    @staticmethod
    def _do_count(db):
        return db.execute("SELECT count(*) FROM pyro_names").fetchone()[0]

    # the storage interface

    def entry(self, name):
        """(uri, metadata) of a name, read on the store's own connection; KeyError if unknown."""
        return self._run(self._do_get, name)

    def put(self, name, uri, metadata, replace=True):
        """Store a registration in one write transaction; False (and nothing stored) if it exists and ``replace``
        is off."""
        return self._run(self._do_put, name, uri, metadata, replace, write=True)

    def set_metadata(self, name, metadata):
        """Replace a name's metadata in one write transaction; False if the name is unknown."""
        return self._run(self._do_set_metadata, name, metadata, write=True)

    def delete(self, names, expected_uris=None):
        """Remove names, DELETE_BATCH per transaction; a huge metadata set goes METADATA_BATCH rows at a time
        after its name, so that other requests get their turn in between. With ``expected_uris`` ({name: uri})
        a name is removed only if it still stands for that uri, checked in the transaction that removes it."""
        names = list(names)
        removed = 0
        for start in range(0, len(names), self.DELETE_BATCH):
            count, left = self._run(self._do_delete, names[start:start + self.DELETE_BATCH], expected_uris,
                                    write=True)
            removed += count
            while left and not self._run(self._do_purge, left, write=True):
                pass
        return removed

    def names(self):
        """A snapshot: name -> uri, read in one transaction on the bulk-read connection."""
        return self._read(self._do_names)

    def metadata_of(self, names):
        """name -> metadata for those of ``names`` that are registered, read on the bulk-read connection."""
        return self._read(self._do_metadata_of, names)

    def by_metadata(self, meta_all=None, meta_any=None):
        """name -> uri of the registrations having all of ``meta_all`` (or any of ``meta_any``), read on the
        bulk-read connection."""
        return self._read(self._do_by_metadata, meta_all, meta_any)

    def count(self):
        """How many names are registered (asked on the store's own connection)."""
        return self._run(self._do_count)

    def _close_db(self, which="_db"):
        db = getattr(self, which)
        if db is not None:
            setattr(self, which, None)
            db.close()

    def close(self):
        """Close the file (after the work already queued) and let the worker threads end. As Pyro5's store
        (which connects for each operation), a closed one may still be used: each operation then opens and
        closes a connection of its own."""
        self._closed = True
        with contextlib.suppress(NamingError):
            self._reader.call(self._close_db, "_read_db")
        with contextlib.suppress(NamingError):
            self._worker.call(self._close_db)
        self._reader.release()
        self._worker.release()


def make_storage(storage):
    """A storage object for a storage string: ``memory`` (the default) or ``sql:path/to/file``."""
    storage = storage or "memory"
    if storage == "memory":
        return MemoryStorage()
    if storage.startswith("sql:") and len(storage) > 4:
        return SqlStorage(storage[4:])
    raise ValueError("invalid storage type '%s' (use memory or sql:path/to/file.sqlite)" % storage)
