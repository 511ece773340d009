"""The name server stays responsive under hostile queries (issue #14, item 8 "Hub safety").

Each attack runs against a name server in its own process (monkey-patched as
``geopyro-ns`` runs, or unpatched; SQL or memory storage) while an honest
client on another connection keeps calling ``lookup``/``ping``; every honest
call that overlaps the attack must be answered within HONEST_LIMIT seconds.

Quick sizes run by default; ``GEOPYRO_SOAK=1`` runs the sizes of the issue
(10,000 names plus one with 200,000 metadata strings).
"""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from geopyro import core, nameserver, nsfilters
from geopyro.client import Proxy
from geopyro.errors import NamingError
from support import ROOT, read_line, wait_until

SOAK = os.environ.get("GEOPYRO_SOAK") == "1"
NAMES = 10000 if SOAK else 2000
BIG_METADATA = 200000 if SOAK else 40000
HONEST_LIMIT = 1.0  # seconds an honest call may take while an attack runs (generous: machines are noisy)
ATTACK_TIMEOUT = 300.0 if SOAK else 60.0
EVIL_NAME = "a" * 40 + "!"
EVIL_REGEXES = [r"(a+)+$", r"(a|aa)*$", r"(.*a){30}", "a?" * 40 + "a" * 40]

NS_SCRIPT = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
options = json.loads(sys.argv[2])
if options["patched"]:
    from gevent import monkey
    monkey.patch_all()
from geopyro import config, nameserver
for key, value in options["config"].items():
    setattr(config, key, value)
nameserver.start_ns_loop("127.0.0.1", 0, enableBroadcast=False, storage=options["storage"])
'''


class NameServerProcess:
    """A name server in a child process (``patched``: monkey-patched first, as ``geopyro-ns`` is)."""

    def __init__(self, directory, storage, patched=True, config=None):
        script = os.path.join(str(directory), "ns_process.py")
        with open(script, "w") as out:
            out.write(NS_SCRIPT)
        options = {"patched": patched, "storage": storage, "config": config or {}}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}
        self.stderr_path = os.path.join(str(directory), "ns-stderr.txt")
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, script, ROOT, json.dumps(options)], stdout=subprocess.PIPE,
                                         stderr=stderr, stdin=subprocess.DEVNULL, env=env, text=True)
        line = read_line(self.proc, time.monotonic() + 60)  # the first line: the rest is printed with it
        while line and not line.startswith("URI = "):
            line = self.proc.stdout.readline()
        if not line:
            self.kill()
            with open(self.stderr_path) as err:
                pytest.fail("name server did not start:\n" + err.read()[-4000:])
        self.uri = core.URI(line[6:].strip())

    def _status(self, field):
        with open("/proc/%d/status" % self.proc.pid) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stats(self):
        """fds, threads and resident memory (KiB) of the name server process."""
        pid = self.proc.pid
        return {"fds": len(os.listdir("/proc/%d/fd" % pid)), "threads": self._status("Threads"),
                "rss_kib": self._status("VmRSS")}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


class HonestClient:
    """A well-behaved client on its own connection, alternating lookup and ping; records each call's timing."""

    def __init__(self, uri, name):
        self.uri, self.name = uri, name
        self.calls = []  # (start, end)
        self.current = None  # start of the call in progress
        self.failures = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="honest client")

    def _run(self):
        try:
            with Proxy(self.uri) as ns:
                ns._pyroTimeout = ATTACK_TIMEOUT
                ns._pyroBind()
                number = 0
                while not self._stop.is_set():
                    number += 1
                    self.current = time.monotonic()
                    try:
                        if number % 2:
                            assert ns.lookup(self.name) is not None
                        else:
                            ns.ping()
                    finally:
                        self.calls.append((self.current, time.monotonic()))
                        self.current = None
                    self._ready.set()
                    self._stop.wait(0.005)
        except Exception as exc:  # noqa: BLE001 - every failure of the honest client is recorded
            self.failures.append(repr(exc))
        finally:
            self._ready.set()

    def start(self):
        self._thread.start()
        assert self._ready.wait(30) and not self.failures, self.failures
        return self

    def stuck_for(self):
        """How long the call in progress has been waiting (0 when none is)."""
        started = self.current
        return 0.0 if started is None else time.monotonic() - started

    def worst_during(self, start, end):
        """The longest honest call that overlapped [start, end] (a call still waiting counts as far as now)."""
        worst = max([finish - begin for begin, finish in list(self.calls) if finish >= start and begin <= end],
                    default=0.0)
        return max(worst, self.stuck_for())

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def run_attack(honest, attack, minimum=0.0):
    """Run ``attack(proxy)`` in a thread of its own, with a proxy of its own (repeated for ``minimum``
    seconds); return (duration, worst honest latency, attack outcome). Stops waiting as soon as an honest
    call is stuck for more than HONEST_LIMIT."""
    outcome = {}

    def attacker():
        try:
            started = time.monotonic()
            with Proxy(honest.uri) as proxy:
                proxy._pyroTimeout = ATTACK_TIMEOUT
                proxy._pyroBind()
                while True:
                    outcome["result"] = attack(proxy)
                    if time.monotonic() - started >= minimum:
                        break
        except Exception as exc:  # noqa: BLE001 - the test decides
            outcome["error"] = exc

    start = time.monotonic()
    thread = threading.Thread(target=attacker, daemon=True, name="attacker")
    thread.start()
    wait_until(lambda: not thread.is_alive() or honest.stuck_for() > HONEST_LIMIT, ATTACK_TIMEOUT)
    end = time.monotonic()
    worst = honest.worst_during(start, end)
    return end - start, worst, outcome


def write_pyro5_db(path, names, big_metadata):
    """An SQL store as Pyro5 writes it (its schema, no index): ``names`` names with a little metadata each,
    and ``big.one`` with ``big_metadata`` metadata strings."""
    Pyro5_nameserver = pytest.importorskip("Pyro5.nameserver")
    Pyro5_nameserver.SqlStorage(path).close()  # Pyro5 creates its schema
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO pyro_names(name, uri) VALUES (?, ?)",
                       (("filler.%05d" % i, "PYRO:obj%d@127.0.0.1:%d" % (i, 2000 + i % 1000)) for i in range(names)))
        db.executemany("INSERT INTO pyro_metadata(object, metadata) SELECT id, ? FROM pyro_names WHERE name=?",
                       (("group:%d" % (i % 10), "filler.%05d" % i) for i in range(names)))
        dbid = db.execute("INSERT INTO pyro_names(name, uri) VALUES ('big.one', 'PYRO:big@127.0.0.1:1')").lastrowid
        db.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)",
                       ((dbid, "meta-%06d" % i) for i in range(big_metadata)))
        db.execute("INSERT INTO pyro_names(name, uri) VALUES (?, 'PYRO:evil@127.0.0.1:1')", (EVIL_NAME,))
    return path


def register_over_the_wire(uri, names, big_metadata):
    with Proxy(uri) as ns:
        ns._pyroTimeout = ATTACK_TIMEOUT
        for i in range(names):
            ns.register("filler.%05d" % i, "PYRO:obj%d@127.0.0.1:%d" % (i, 2000 + i % 1000),
                        metadata=["group:%d" % (i % 10)])
        ns.register("big.one", "PYRO:big@127.0.0.1:1", metadata=["meta-%06d" % i for i in range(big_metadata)])
        ns.register(EVIL_NAME, "PYRO:evil@127.0.0.1:1")


def assert_near_baseline(ns, baseline, after, rss_growth_kib):
    """Once the attackers' connections are gone, fds and threads are back near the baseline (a thread
    server's pool threads keep a wake pipe while they live: a few fds of slack), and memory grew at most
    ``rss_growth_kib`` (the big results are freed, but the allocator keeps some of its arenas)."""
    print("baseline %s, right after the attacks %s" % (baseline, after))
    assert wait_until(lambda: ns.stats()["fds"] <= baseline["fds"] + 4, 15), ns.stats()
    assert after["threads"] <= baseline["threads"] + 4
    if rss_growth_kib:
        assert after["rss_kib"] <= baseline["rss_kib"] + rss_growth_kib


@pytest.fixture
def attacked_ns(tmp_path):
    """Start a populated name server: returns a function of (storage kind, patched, config)."""
    started = []

    def start(kind, patched=True, config=None):
        if kind == "sql":
            path = write_pyro5_db(str(tmp_path / "names.sqlite"), NAMES, BIG_METADATA)
            ns = NameServerProcess(tmp_path, "sql:" + path, patched, config)
            started.append(ns)
        else:
            ns = NameServerProcess(tmp_path, "memory", patched, config)
            started.append(ns)
            register_over_the_wire(ns.uri, NAMES, BIG_METADATA)
        return ns

    yield start
    for ns in started:
        ns.kill()


VARIANTS = [("sql", True, {}), ("sql", False, {}), ("memory", True, {}), ("memory", False, {}),
            ("sql", True, {"SERVERTYPE": "multiplex"}), ("sql", False, {"CALL_EXECUTION": "thread"})]
VARIANT_IDS = ["sql-patched", "sql-unpatched", "memory-patched", "memory-unpatched", "sql-patched-multiplex",
               "sql-unpatched-threads"]


@pytest.mark.parametrize("kind, patched, config", VARIANTS, ids=VARIANT_IDS)
def test_bulk_remove_and_big_listings_keep_ns_responsive(attacked_ns, kind, patched, config):
    ns = attacked_ns(kind, patched, config)
    honest = HonestClient(ns.uri, core.NAMESERVER_NAME).start()
    baseline = ns.stats()
    rounds = []
    # the listings that return the big metadata set (twice: memory must not grow per round), then the bulk
    # remove, then the listings again
    for label, attack, minimum in [
            ("list metadata", lambda proxy: proxy.list(return_metadata=True), 1.0),
            ("yplookup", lambda proxy: proxy.yplookup(meta_any=["meta-000001", "group:3"]), 1.0),
            ("list metadata", lambda proxy: proxy.list(return_metadata=True), 1.0),
            ("yplookup", lambda proxy: proxy.yplookup(meta_any=["meta-000001", "group:3"]), 1.0),
            ("remove all", lambda proxy: proxy.remove(regex=".*"), 0.0),
            ("list after remove", lambda proxy: proxy.list(return_metadata=True), 0.5),
            ("yplookup after remove", lambda proxy: proxy.yplookup(meta_all=["meta-000001"]), 0.5)]:
        duration, worst, outcome = run_attack(honest, attack, minimum)
        print("%s %s: attack %.3f s, worst honest call %.3f s" % (ns.uri, label, duration, worst))
        assert worst < HONEST_LIMIT, "%s: an honest call waited %.2f s" % (label, worst)
        assert "error" not in outcome, outcome
        if label == "list metadata":
            assert len(outcome["result"]) == NAMES + 3 and len(outcome["result"]["big.one"][1]) == BIG_METADATA
        elif label == "yplookup":
            assert len(outcome["result"]) == NAMES // 10 + 1
            rounds.append(ns.stats()["rss_kib"])
        elif label == "remove all":
            assert outcome["result"] == NAMES + 2
        elif label == "list after remove":
            assert set(outcome["result"]) == {core.NAMESERVER_NAME}
    after = ns.stats()
    honest.stop()
    assert not honest.failures, honest.failures
    assert_near_baseline(ns, baseline, after, (512 if SOAK else 128) * 1024)
    print("resident memory after each round of listings (KiB): %s" % rounds)
    assert rounds[1] <= rounds[0] + (64 if SOAK else 16) * 1024  # no growth per round


@pytest.mark.parametrize("kind, patched, config", VARIANTS, ids=VARIANT_IDS)
def test_catastrophic_regex_is_refused_at_once(attacked_ns, kind, patched, config):
    ns = attacked_ns(kind, patched, config)
    honest = HonestClient(ns.uri, EVIL_NAME).start()
    baseline = ns.stats()
    for regex in EVIL_REGEXES:
        for method in ("list", "remove"):
            duration, worst, outcome = run_attack(honest, lambda proxy: getattr(proxy, method)(regex=regex))
            print("%s %s(regex=%r): attack %.3f s, worst honest call %.3f s, %s"
                  % (ns.uri, method, regex[:20], duration, worst, outcome))
            assert worst < HONEST_LIMIT, "an honest call waited %.2f s" % worst
            assert isinstance(outcome.get("error"), NamingError), outcome
            assert "regex refused" in str(outcome["error"])
    with Proxy(ns.uri) as proxy:
        assert proxy.lookup(EVIL_NAME)  # nothing was removed
    after = ns.stats()
    honest.stop()
    assert not honest.failures, honest.failures
    assert_near_baseline(ns, baseline, after, 0)


# --- in-process checks of the rules themselves ----------------------------------------------------------------------

@pytest.fixture(params=["memory", "sql"])
def direct_ns(request, tmp_path):
    storage = nameserver.make_storage("memory" if request.param == "memory" else
                                      "sql:" + str(tmp_path / "direct.sqlite"))
    ns = nameserver.NameServer(storage)
    ns._register_self("PYRO:Pyro.NameServer@127.0.0.1:9090")
    yield ns
    ns._close()


@pytest.mark.parametrize("regex, why", [
    (r"(a+)+$", "nested quantifier"),
    (r"(a|ab)*c", "nested quantifier"),
    (r"(.*a){12}", "backtrack too long on the 15-character name"),
    (r"(a*)*b", "nested quantifier"),
    (r"(\w+\s?)+$", "nested quantifier"),
    (r"(a)\1", "backreference"),
    (r"(a)?(?(1)b|c)", "backreference"),
    ("a?" * 30 + "a" * 30, "alternatives"),
    ("(ab|a)" * 30, "alternatives"),
    ("x" * 1001, "longer than"),
])
def test_runaway_patterns_are_refused(direct_ns, regex, why):
    for call in (direct_ns.list, direct_ns.remove):
        with pytest.raises(NamingError, match="regex refused") as info:
            call(regex=regex)
        assert why in str(info.value)


def test_usual_patterns_still_work(direct_ns):
    for name in ("app.one", "app.two", "app.sub.three", "other"):
        direct_ns.register(name, "PYRO:x@127.0.0.1:1")
    assert set(direct_ns.list(regex=r"app\.")) == {"app.one", "app.two", "app.sub.three"}
    assert set(direct_ns.list(regex=r"app\.[a-z]+$")) == {"app.one", "app.two"}
    assert set(direct_ns.list(regex=r".*t.*e")) == {"app.sub.three", "other"}
    assert set(direct_ns.list(regex=r"(app|other)(\.\w+){1,2}$")) == {"app.one", "app.two", "app.sub.three"}
    assert set(direct_ns.list(regex=r"(?:\w+\.){2}\w+")) == {"app.sub.three"}
    assert set(direct_ns.list(regex=r"(?i)APP\.(ONE|TWO)$")) == {"app.one", "app.two"}
    for bad in ("(", "x{0,4294967295}"):
        with pytest.raises(NamingError, match="invalid regex"):
            direct_ns.list(regex=bad)
    assert direct_ns.remove(regex=r"app\.(one|two)$") == 2
    assert set(direct_ns.list()) == {core.NAMESERVER_NAME, "app.sub.three", "other"}


def test_pattern_refused_for_a_very_long_name(direct_ns):
    direct_ns.register("x" * 5000, "PYRO:x@127.0.0.1:1")
    direct_ns.register("short", "PYRO:x@127.0.0.1:1")
    assert set(direct_ns.list(regex=r"s.*t")) == {"short"}  # one open-ended quantifier: any length
    with pytest.raises(NamingError, match="could backtrack too long on the 5000-character name"):
        direct_ns.list(regex=r".*a.*b.*c")


def test_regex_time_budget(direct_ns, monkeypatch):
    monkeypatch.setattr(nsfilters._NameRegex, "TIME_BUDGET", 0.0)
    direct_ns.register("app.one", "PYRO:x@127.0.0.1:1")
    with pytest.raises(NamingError, match="regex query stopped"):
        direct_ns.list(regex="app")


# --- the name server's own registration -----------------------------------------------------------------------------

@pytest.mark.parametrize("storage", ["memory", "sql"])
def test_own_registration_is_protected(daemons, tmp_path, storage):
    store = "memory" if storage == "memory" else "sql:" + str(tmp_path / "own.sqlite")
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0, enableBroadcast=False, storage=store)
    daemons.start(ns_daemon)
    with Proxy(uri) as ns:
        own = ns.lookup(core.NAMESERVER_NAME, return_metadata=True)
        assert own[0] == uri
        for safe in (False, True):
            with pytest.raises(NamingError, match="Pyro.NameServer is the name server's own registration"):
                ns.register(core.NAMESERVER_NAME, "PYRO:impostor@127.0.0.1:6666", safe=safe)
        with pytest.raises(NamingError, match="own registration: a client cannot change the metadata"):
            ns.set_metadata(core.NAMESERVER_NAME, {"class:evil"})
        with pytest.raises(NamingError, match="own registration"):
            ns.set_metadata(core.NAMESERVER_NAME, None)
        ns.register("Pyro.Other", "PYRO:other@127.0.0.1:1")
        assert ns.remove(core.NAMESERVER_NAME) == 0  # as Pyro5: nothing removed, no error
        assert ns.remove(prefix="Pyro.") == 1
        assert ns.remove(regex="Pyro\\.Name.*") == 0
        assert ns.remove(regex=".*") == 0
        assert ns.lookup(core.NAMESERVER_NAME, return_metadata=True) == own
        assert ns.list() == {core.NAMESERVER_NAME: str(uri)}


# --- the SQL schema ---------------------------------------------------------------------------------------------------

def test_sql_indexes_and_pyro5_interop(tmp_path):
    Pyro5_nameserver = pytest.importorskip("Pyro5.nameserver")
    # a store made by geopyro has the indexes, and Pyro5 reads and writes it
    geo_path = str(tmp_path / "geopyro.sqlite")
    storage = nameserver.SqlStorage(geo_path)
    storage.put("geo.one", "PYRO:one@127.0.0.1:1", frozenset({"a", "b"}))
    storage.put("geo.two", "PYRO:two@127.0.0.1:2", frozenset())
    storage.close()
    with sqlite3.connect(geo_path) as db:
        indexes = {row[0]: row[1] for row in db.execute("SELECT name, sql FROM sqlite_master WHERE type='index'")}
        plan = " ".join(str(row) for row in db.execute("EXPLAIN QUERY PLAN SELECT metadata FROM pyro_metadata "
                                                        "WHERE object=?", (1,)))
    assert "ON pyro_metadata(object)" in indexes["pyro_metadata_object_index"]
    assert "ON pyro_metadata(metadata)" in indexes["pyro_metadata_metadata_index"]
    assert "USING INDEX pyro_metadata_object_index" in plan
    pyro5_store = Pyro5_nameserver.SqlStorage(geo_path)
    assert pyro5_store["geo.one"] == ("PYRO:one@127.0.0.1:1", {"a", "b"})
    assert pyro5_store["geo.two"] == ("PYRO:two@127.0.0.1:2", set())
    pyro5_store["pyro5.three"] = ("PYRO:three@127.0.0.1:3", {"c"})
    del pyro5_store["geo.two"]
    pyro5_store.close()
    storage = nameserver.SqlStorage(geo_path)
    assert storage.names() == {"geo.one": "PYRO:one@127.0.0.1:1", "pyro5.three": "PYRO:three@127.0.0.1:3"}
    assert storage.entry("pyro5.three") == ("PYRO:three@127.0.0.1:3", frozenset({"c"}))
    storage.close()

    # a store made by Pyro5 is read and written by geopyro (which adds its indexes), then read by Pyro5 again
    pyro5_path = str(tmp_path / "pyro5.sqlite")
    pyro5_store = Pyro5_nameserver.SqlStorage(pyro5_path)
    pyro5_store["p.one"] = ("PYRO:p1@127.0.0.1:1", {"x", "y"})
    pyro5_store["p.two"] = ("PYRO:p2@127.0.0.1:2", None)
    pyro5_store.close()
    ns = nameserver.NameServer(nameserver.SqlStorage(pyro5_path))
    assert ns.lookup("p.one", return_metadata=True) == (core.URI("PYRO:p1@127.0.0.1:1"), {"x", "y"})
    assert ns.list(return_metadata=True) == {"p.one": ("PYRO:p1@127.0.0.1:1", {"x", "y"}),
                                             "p.two": ("PYRO:p2@127.0.0.1:2", set())}
    assert ns.yplookup(meta_all=["x", "y"], return_metadata=False) == {"p.one": "PYRO:p1@127.0.0.1:1"}
    ns.register("g.three", "PYRO:g3@127.0.0.1:3", metadata={"z"})
    ns.set_metadata("p.one", {"x"})
    assert ns.remove(prefix="p.t") == 1
    ns._close()
    with sqlite3.connect(pyro5_path) as db:
        assert {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")} >= {
            "pyro_metadata_object_index", "pyro_metadata_metadata_index"}
    pyro5_store = Pyro5_nameserver.SqlStorage(pyro5_path)
    assert pyro5_store.everything(return_metadata=True) == {"p.one": ("PYRO:p1@127.0.0.1:1", {"x"}),
                                                            "g.three": ("PYRO:g3@127.0.0.1:3", {"z"})}
    pyro5_store.close()


def test_bulk_delete_is_set_based(tmp_path):
    """Removing thousands of names with a big metadata set is a few statements, not a table scan per name."""
    path = write_pyro5_db(str(tmp_path / "bulk.sqlite"), NAMES, BIG_METADATA)
    ns = nameserver.NameServer(nameserver.SqlStorage(path))
    statements = []
    ns.storage._worker.call(lambda: ns.storage._db.set_trace_callback(statements.append))
    start = time.monotonic()
    assert ns.remove(regex=".*") == NAMES + 2
    elapsed = time.monotonic() - start
    ns.storage._worker.call(lambda: ns.storage._db.set_trace_callback(None))
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE FROM PYRO_")]
    # two statements per batch of names, one per batch of the big metadata set: not one per name
    batches = -(-(NAMES + 2) // ns.storage.DELETE_BATCH)
    assert len(deletes) <= 2 * batches + BIG_METADATA // ns.storage.METADATA_BATCH + 1, deletes
    assert ns.count() == 0 and elapsed < 10
    ns._close()


def test_removed_metadata_never_reappears(tmp_path, monkeypatch):
    """A huge metadata set is purged after its name, in batches; meanwhile (or after a crash) its rows are never
    read, and a new name that gets the same id does not inherit them."""
    monkeypatch.setattr(nameserver.SqlStorage, "METADATA_BATCH", 10)
    path = str(tmp_path / "purge.sqlite")
    storage = nameserver.SqlStorage(path)
    storage.put("small", "PYRO:s@127.0.0.1:1", frozenset({"x"}))
    storage.put("huge", "PYRO:h@127.0.0.1:1", frozenset("m%d" % i for i in range(95)))
    assert storage.delete(["huge", "absent"]) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM pyro_metadata").fetchone()[0] == 1
    # what a crash halfway through leaves: the name gone, its metadata still there
    storage.put("huge", "PYRO:h@127.0.0.1:1", frozenset("m%d" % i for i in range(95)))
    count, left = storage._run(storage._do_delete, ["huge"], write=True)
    assert count == 1 and left
    storage.put("newcomer", "PYRO:n@127.0.0.1:1", frozenset({"fresh"}))  # takes the freed id
    assert storage.entry("newcomer") == ("PYRO:n@127.0.0.1:1", frozenset({"fresh"}))
    assert storage.by_metadata(meta_any=frozenset({"m1"})) == {}
    storage.put("huge", "PYRO:h@127.0.0.1:1", frozenset("m%d" % i for i in range(95)))
    count, left = storage._run(storage._do_delete, ["huge"], write=True)
    storage.close()
    storage = nameserver.SqlStorage(path)  # orphans are purged when the store is opened
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM pyro_metadata").fetchone()[0] == 2
    assert storage.metadata_of(["small", "newcomer"]) == {"small": frozenset({"x"}), "newcomer": frozenset({"fresh"})}
    storage.close()


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_work_waits_cooperatively_on_the_hub(tmp_path, kind):
    """Called from a greenlet, the name server's storage and query work leaves the hub free: a ticking greenlet
    keeps ticking while a bulk remove and big listings run."""
    import gevent
    path = write_pyro5_db(str(tmp_path / "coop.sqlite"), NAMES, BIG_METADATA)
    source = nameserver.SqlStorage(path)
    if kind == "sql":
        storage = source
    else:
        storage = nameserver.MemoryStorage()
        metadata = source.metadata_of(list(source.names()))
        for name, uri in source.names().items():
            storage.put(name, uri, metadata[name])
        source.close()
    ns = nameserver.NameServer(storage)
    gaps = []

    def ticker():
        last = time.monotonic()
        while True:
            gevent.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = gevent.spawn(ticker)
    try:
        gevent.sleep(0.01)
        assert len(ns.list(return_metadata=True)["big.one"][1]) == BIG_METADATA
        assert len(ns.yplookup(meta_all=["meta-000002"])) == 1
        assert ns.remove(regex=".*") == NAMES + 2
        ticks = len(gaps)
        worst = max(gaps)
    finally:
        ticking.kill()
        ns._close()
    print("%s: %d ticks, longest gap %.3f s" % (kind, ticks, worst))
    assert ticks > 0 and worst < 0.2
