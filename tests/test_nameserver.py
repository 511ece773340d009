"""The name server in-process: every operation, storage, broadcast discovery, resolving, autoclean, serve()."""

import os
import socket
import threading
import time

import gevent
import pytest

from geopyro import config, core, errors, nameserver, server
from geopyro.client import Proxy
from geopyro.errors import NamingError


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


@server.expose
class Thing:
    def hello(self, who):
        return "hello " + who


@pytest.fixture(params=["memory", "sql"])
def storage(request, tmp_path):
    return "memory" if request.param == "memory" else "sql:" + str(tmp_path / "names.sqlite")


@pytest.fixture
def running_ns(daemons):
    """Start a name server on 127.0.0.1 (free port); returns a function taking the storage string."""
    def start(storage=None):
        uri, ns_daemon, bcserver = nameserver.start_ns("127.0.0.1", 0, storage=storage)
        assert bcserver is None  # no broadcast server for a loopback name server
        daemons.start(ns_daemon)
        return uri, ns_daemon
    return start


# --- the NameServer object itself -----------------------------------------------------------------------------

def test_operations(storage):
    ns = nameserver.NameServer(nameserver.make_storage(storage))
    ns.ping()
    assert ns.count() == 0
    ns.register("app.one", "PYRO:one@127.0.0.1:1111", metadata={"red", "big"})
    ns.register("app.two", core.URI("PYRO:two@127.0.0.1:2222"), metadata=["red"])
    ns.register("other", "PYRO:three@127.0.0.1:3333")
    assert ns.count() == 3
    uri = ns.lookup("app.one")
    assert isinstance(uri, core.URI) and str(uri) == "PYRO:one@127.0.0.1:1111"
    assert ns.lookup("app.one", return_metadata=True) == (uri, {"red", "big"})
    assert ns.lookup("other", return_metadata=True)[1] == set()
    assert ns.list() == {"app.one": "PYRO:one@127.0.0.1:1111", "app.two": "PYRO:two@127.0.0.1:2222",
                         "other": "PYRO:three@127.0.0.1:3333"}
    assert set(ns.list(prefix="app.")) == {"app.one", "app.two"}
    assert set(ns.list(regex=r"app\.t")) == {"app.two"}
    assert ns.list(prefix="app.o", return_metadata=True) == {"app.one": ("PYRO:one@127.0.0.1:1111", {"red", "big"})}
    assert set(ns.yplookup(meta_all=["red", "big"])) == {"app.one"}
    assert set(ns.yplookup(meta_any={"big", "red"}, return_metadata=False)) == {"app.one", "app.two"}
    assert ns.yplookup(meta_any=["red"])["app.two"] == ("PYRO:two@127.0.0.1:2222", {"red"})
    assert ns.yplookup() == {}
    ns.set_metadata("other", {"blue"})
    assert ns.lookup("other", return_metadata=True)[1] == {"blue"}
    ns.set_metadata("other", None)
    assert ns.yplookup(meta_any=["blue"]) == {}
    ns.register("app.one", "PYRO:new@127.0.0.1:1")  # replaces, metadata too
    assert ns.lookup("app.one", True) == (core.URI("PYRO:new@127.0.0.1:1"), set())
    assert ns.remove("nothere") == 0
    assert ns.remove("other") == 1
    assert ns.remove(prefix="app.") == 2
    assert ns.count() == 0
    ns.storage.close()


def test_remove_keeps_own_registration(running_ns):
    uri, _ = running_ns()
    with Proxy(uri) as ns:
        ns.register("x.y", "PYRO:a@127.0.0.1:1")
        assert ns.remove(core.NAMESERVER_NAME) == 0
        with pytest.raises(NamingError, match="own registration"):
            ns.register(core.NAMESERVER_NAME, "PYRO:a@127.0.0.1:1")
        assert ns.remove(regex=".*") == 1
        assert ns.remove(prefix="Pyro") == 0
        assert ns.list() == {core.NAMESERVER_NAME: str(uri)}
        assert ns.remove() == 0


def test_bad_input(running_ns):
    uri, _ = running_ns()
    with Proxy(uri) as ns:
        for name in ("", "with space", "tab\there", " lead", "new\nline"):  # any str, as Pyro5 accepts
            ns.register(name, "PYRO:a@127.0.0.1:1")
            assert str(ns.lookup(name)) == "PYRO:a@127.0.0.1:1"
            assert ns.remove(name) == (1 if name else 0)  # remove("") removes nothing, as in Pyro5
        with pytest.raises(TypeError, match="name must be a str"):
            ns.register(42, "PYRO:a@127.0.0.1:1")
        with pytest.raises(TypeError, match="only URIs or strings"):
            ns.register("n", 42)
        with pytest.raises(errors.PyroError, match="invalid uri"):
            ns.register("n", "not a uri")
        with pytest.raises(TypeError, match="should not be a str"):
            ns.register("n", "PYRO:a@127.0.0.1:1", metadata="abc")
        with pytest.raises(TypeError, match="should not be a str"):
            ns.yplookup(meta_all="abc")
        ns.register("n", "PYRO:a@127.0.0.1:1")
        with pytest.raises(NamingError, match="name already registered: n"):
            ns.register("n", "PYRO:b@127.0.0.1:1", safe=True)
        with pytest.raises(NamingError, match="unknown name: nope"):
            ns.lookup("nope")
        with pytest.raises(NamingError, match="unknown name: nope"):
            ns.set_metadata("nope", {"a"})
        with pytest.raises(NamingError, match="invalid regex"):
            ns.list(regex="(")
        with pytest.raises(ValueError, match="one thing at a time"):
            ns.list(prefix="a", regex="b")
        with pytest.raises(ValueError, match="at the same time"):
            ns.yplookup(meta_all=["a"], meta_any=["b"])
        ns.ping()  # still serving
        assert str(ns.lookup("n")) == "PYRO:a@127.0.0.1:1"


@pytest.mark.parametrize("make_path", [
    lambda tmp: tmp / "missing-dir" / "ns.sqlite",
    lambda tmp: tmp,  # a directory, not a file
    lambda tmp: (tmp / "garbage.sqlite").write_bytes(b"not a database at all" * 100) and tmp / "garbage.sqlite",
], ids=["no-directory", "is-directory", "not-a-database"])
def test_unusable_store(tmp_path, make_path):
    path = make_path(tmp_path)
    with pytest.raises(NamingError, match="cannot use name server store"):
        nameserver.NameServerDaemon("127.0.0.1", 0, storage="sql:%s" % path)


def test_bad_storage_type():
    with pytest.raises(ValueError, match="invalid storage type"):
        nameserver.NameServerDaemon("127.0.0.1", 0, storage="redis:x")
    with pytest.raises(ValueError, match="memory"):
        nameserver.NameServerDaemon("127.0.0.1", 0, storage="sql::memory:")


# --- over the wire --------------------------------------------------------------------------------------------

def test_remote_wire_shapes(running_ns, storage):
    uri, ns_daemon = running_ns(storage)
    assert ns_daemon.uriFor(ns_daemon.nameserver) == uri
    with Proxy(uri) as ns:
        ns.ping()
        assert ns.count() == 1
        found, meta = ns.lookup(core.NAMESERVER_NAME, return_metadata=True)
        assert found == uri and "class:Pyro5.nameserver.NameServer" in meta
        ns.register("svc", "PYRO:svc@127.0.0.1:4444", metadata={"m1", "m2"})
        assert ns.lookup("svc") == core.URI("PYRO:svc@127.0.0.1:4444")
        assert ns.list(prefix="svc") == {"svc": "PYRO:svc@127.0.0.1:4444"}
        assert ns.list(prefix="svc", return_metadata=True) == {"svc": ("PYRO:svc@127.0.0.1:4444", {"m1", "m2"})}
        assert ns.yplookup(meta_all=["m1", "m2"], return_metadata=False) == {"svc": "PYRO:svc@127.0.0.1:4444"}
        ns.set_metadata("svc", ["m3"])
        assert ns.yplookup(meta_any=["m3"]) == {"svc": ("PYRO:svc@127.0.0.1:4444", {"m3"})}
        assert ns.remove("svc") == 1


def test_persistent_store_survives_restart(running_ns, tmp_path, daemons):
    store = "sql:" + str(tmp_path / "persist.sqlite")
    uri, ns_daemon = running_ns(store)
    with Proxy(uri) as ns:
        for i in range(20):
            ns.register("p.%d" % i, "PYRO:o%d@127.0.0.1:%d" % (i, 1000 + i), metadata={"n%d" % i, "all"})
    daemons.stop_all()
    uri2, _ = running_ns(store)
    with Proxy(uri2) as ns:
        assert ns.count() == 21
        assert ns.lookup(core.NAMESERVER_NAME) == uri2  # its own entry points at the new address
        assert ns.lookup("p.7", return_metadata=True) == (core.URI("PYRO:o7@127.0.0.1:1007"), {"n7", "all"})
        assert len(ns.yplookup(meta_all=["all"])) == 20


def test_concurrent_registrations(running_ns, tmp_path):
    uri, _ = running_ns("sql:" + str(tmp_path / "busy.sqlite"))

    def worker(i):
        with Proxy(uri) as ns:
            ns.register("c.%d" % i, "PYRO:o%d@127.0.0.1:%d" % (i, 2000 + i), metadata={"w%d" % (i % 5)})
            ns.register("shared", "PYRO:s%d@127.0.0.1:1" % i)
            return ns.lookup("c.%d" % i)

    greenlets = [gevent.spawn(worker, i) for i in range(200)]
    gevent.joinall(greenlets, raise_error=True, timeout=30)
    assert [g.value for g in greenlets] == [core.URI("PYRO:o%d@127.0.0.1:%d" % (i, 2000 + i)) for i in range(200)]
    with Proxy(uri) as ns:
        assert ns.count() == 202
        listed = ns.list(prefix="c.", return_metadata=True)
        assert len(listed) == 200
        assert all(meta == {"w%d" % (int(name[2:]) % 5)} for name, (_, meta) in listed.items())
        assert sum(len(ns.yplookup(meta_any=["w%d" % k])) for k in range(5)) == 200


def test_concurrent_threads_direct(tmp_path):
    ns = nameserver.NameServer(nameserver.make_storage("sql:" + str(tmp_path / "threads.sqlite")))

    def worker(t):
        for i in range(25):
            ns.register("t%d.%d" % (t, i), "PYRO:x@127.0.0.1:%d" % (i + 1), safe=True)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert ns.count() == 200 and ns.remove(regex=r"t\d\.") == 200
    ns.storage.close()


# --- finding the name server ----------------------------------------------------------------------------------

def test_locate_ns_direct_and_default_host(running_ns, clean_config):
    uri, _ = running_ns()
    with core.locate_ns("127.0.0.1", uri.port) as ns:
        assert ns._pyroUri == uri
    clean_config.NS_HOST = "127.0.0.1"
    clean_config.NS_PORT = uri.port
    with core.locate_ns() as ns:
        ns.ping()


@pytest.mark.parametrize("servertype_name", ["greenlet", "multiplex"])
def test_broadcast_discovery_combined(clean_config, daemons, servertype_name):
    clean_config.SERVERTYPE = servertype_name
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    bc = nameserver.BroadcastServer(uri, "", 0)

    def combine_and_serve():  # combine in the loop's own thread: the multiplex selector belongs to one hub
        ns_daemon.combine(bc)
        ns_daemon.requestLoop()

    thread = threading.Thread(target=combine_and_serve, daemon=True)
    thread.start()
    clean_config.NS_PORT = free_port()  # nothing listens there: the localhost attempt fails
    clean_config.NS_BCPORT = bc.getPort()
    clean_config.BROADCAST_ADDRS = ["127.0.0.1"]
    with core.locate_ns() as ns:
        assert ns._pyroUri == uri
        ns.ping()
    clean_config.BROADCAST_ADDRS = ["<broadcast>"]
    with core.locate_ns() as ns:
        ns.ping()
    ns_daemon.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    bc.close()


def test_broadcast_server_own_thread_and_select(clean_config, running_ns):
    uri, _ = running_ns()
    with nameserver.BroadcastServer(uri, "127.0.0.1", 0) as bc:
        assert bc.sockets == [bc.sock] and bc.fileno() == bc.sock.fileno() and bc.getPort() > 0
        thread = bc.runInThread()
        clean_config.NS_PORT = free_port()
        clean_config.BROADCAST_ADDRS = ["127.0.0.1"]
        with core.locate_ns(port=bc.getPort()) as ns:  # without host, port is the broadcast port
            assert ns._pyroUri == uri
    thread.join(5)
    assert not thread.is_alive()


def test_broadcast_answer_for_any_address():
    bc = nameserver.BroadcastServer("PYRO:Pyro.NameServer@0.0.0.0:9999", "127.0.0.1", 0)
    try:
        assert bc._answer_uri("127.0.0.1").host == "127.0.0.1"
    finally:
        bc.close()


def test_locate_ns_nothing_answers(clean_config):
    clean_config.NS_PORT = free_port()
    clean_config.NS_BCPORT = free_port(socket.SOCK_DGRAM)
    clean_config.BROADCAST_ADDRS = ["127.0.0.1"]
    with pytest.raises(NamingError) as info:
        core.locate_ns()
    text = str(info.value)
    assert "localhost:%d" % config.NS_PORT in text and "broadcast to 127.0.0.1 port %d" % config.NS_BCPORT in text
    with pytest.raises(NamingError, match="127.0.0.1:%d" % config.NS_PORT):
        core.locate_ns("127.0.0.1", config.NS_PORT)


# --- resolving PYRONAME / PYROMETA ----------------------------------------------------------------------------

def test_pyroname_and_pyrometa(running_ns, daemons, clean_config):
    uri, _ = running_ns()
    thing_uri = daemons.serve(Thing())
    with Proxy(uri) as ns:
        ns.register("test.thing", thing_uri, metadata={"kind:thing", "colour:green"})
    with Proxy("PYRONAME:test.thing@127.0.0.1:%d" % uri.port) as proxy:
        assert proxy.hello("name") == "hello name"
    with Proxy("PYROMETA:kind:thing,colour:green@127.0.0.1:%d" % uri.port) as proxy:
        assert proxy.hello("meta") == "hello meta"
    assert core.resolve("PYRONAME:test.thing@127.0.0.1:%d" % uri.port) == thing_uri
    clean_config.NS_HOST = "127.0.0.1"
    clean_config.NS_PORT = uri.port
    with Proxy("PYRONAME:test.thing") as proxy:
        assert proxy.hello("default") == "hello default"
    with pytest.raises(NamingError, match="unknown name: test.nothing"):
        core.resolve("PYRONAME:test.nothing")
    with pytest.raises(NamingError, match="no registrations available"):
        core.resolve("PYROMETA:kind:none")


def test_lookup_delay_waits_for_name(running_ns, clean_config):
    uri, _ = running_ns()
    ns = core.locate_ns("127.0.0.1", uri.port)
    attempts = []

    class RegistersAfterFirstMiss:
        """Lets the first lookup fail, then registers the name: the retry loop must find it."""

        def lookup(self, name, return_metadata):
            attempts.append(name)
            try:
                return ns.lookup(name, return_metadata)
            finally:
                if len(attempts) == 1:
                    ns.register(name, "PYRO:late@127.0.0.1:5")

    assert str(nameserver.lookup(RegistersAfterFirstMiss(), "late.name", delay_time=5)) == "PYRO:late@127.0.0.1:5"
    assert len(attempts) == 2
    clean_config.NS_LOOKUP_DELAY = 0.3
    start = time.monotonic()
    with pytest.raises(NamingError):
        nameserver.lookup(ns, "never.there")
    assert 0.25 < time.monotonic() - start < 3
    assert nameserver.yplookup(ns, meta_any=["nothing"], delay_time=0.2) == {}
    ns._pyroRelease()


# --- serve() --------------------------------------------------------------------------------------------------

def test_serve_registers_in_name_server(running_ns, clean_config):
    uri, _ = running_ns()
    clean_config.NS_HOST = "127.0.0.1"
    clean_config.NS_PORT = uri.port
    daemon = server.Daemon("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, args=({Thing: "test.served", Thing(): None},),
                              kwargs={"daemon": daemon, "use_ns": True, "verbose": False}, daemon=True)
    thread.start()
    try:
        with Proxy(uri) as ns:
            wait_until(lambda: "test.served" in ns.list(), what="serve() to register")
            wait_until(lambda: len(daemon.objectsById) == 3, what="both objects")
            assert set(ns.list()) == {core.NAMESERVER_NAME, "test.served"}  # None names stay out
        with Proxy("PYRONAME:test.served") as proxy:
            assert proxy.hello("serve") == "hello serve"
    finally:
        daemon.shutdown()
        thread.join(10)
    assert not thread.is_alive()


def test_serve_without_name_server(clean_config):
    clean_config.NS_PORT = free_port()  # no name server anywhere
    daemon = server.Daemon("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, args=({Thing: "test.plain"},),
                              kwargs={"daemon": daemon, "use_ns": False, "verbose": False}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: "test.plain" in daemon.objectsById, what="serve() to register")
        with Proxy("PYRO:test.plain@%s" % daemon.locationStr) as proxy:
            assert proxy.hello("plain") == "hello plain"
    finally:
        daemon.shutdown()
        thread.join(10)
    assert not thread.is_alive()


# --- autoclean ------------------------------------------------------------------------------------------------

@pytest.fixture
def quick_cleaner(monkeypatch, clean_config):
    """An autoclean that sweeps every 0.1 s and drops a name after 0.3 s unanswered (a real one: 3 s and 20 s)."""
    monkeypatch.setattr(nameserver.AutoCleaner, "override_autoclean_min", True)
    monkeypatch.setattr(nameserver.AutoCleaner, "loop_delay", 0.05)
    monkeypatch.setattr(nameserver.AutoCleaner, "max_unreachable_time", 0.3)
    clean_config.NS_AUTOCLEAN = 0.1


def test_autoclean_removes_dead_registrations(quick_cleaner, clean_config, daemons, servertype):
    clean_config.POLLTIMEOUT = 0.05
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    alive_uri = daemons.serve(Thing())
    doomed = server.Daemon("127.0.0.1", 0)
    doomed_uri = doomed.register(Thing())
    with Proxy(uri) as ns:
        ns.register("alive", alive_uri)
        ns.register("doomed", doomed_uri)
        ns.register("by.name", "PYRONAME:elsewhere")  # not a PYRO uri: left alone
        doomed.close()
        wait_until(lambda: "doomed" not in ns.list(), what="autoclean to remove the dead registration")
        assert set(ns.list()) == {core.NAMESERVER_NAME, "alive", "by.name"}
        ns.ping()


def test_a_store_deletes_only_names_still_standing_for_the_expected_uri(storage):
    store = nameserver.make_storage(storage)
    try:
        store.put("kept", "PYRO:new@127.0.0.1:2", {"m"})
        store.put("gone", "PYRO:old@127.0.0.1:3", {"m"})
        expected = {"kept": "PYRO:old@127.0.0.1:1", "gone": "PYRO:old@127.0.0.1:3"}
        assert store.delete(["kept", "gone", "never"], expected_uris=expected) == 1
        assert sorted(store.names()) == ["kept"] and store.entry("kept") == ("PYRO:new@127.0.0.1:2", {"m"})
        assert store.delete(["kept"]) == 1  # without expectations: by name, as before
    finally:
        store.close()


def test_autoclean_keeps_a_name_registered_again_during_its_sweep(quick_cleaner, monkeypatch, storage):
    """A server that died, then registered again (on another port) while a sweep was probing its old uri:
    the sweep removes nothing, since the name no longer stands for the uri that did not answer."""
    monkeypatch.setattr(nameserver.AutoCleaner, "max_unreachable_time", 0.0)
    ns = nameserver.NameServer(nameserver.make_storage(storage))
    try:
        ns.register("service", "PYRO:obj@127.0.0.1:1")
        ns.register("dead", "PYRO:obj@127.0.0.1:2")
        cleaner = nameserver.AutoCleaner(ns)

        def probe(uri):
            if uri == "PYRO:obj@127.0.0.1:1":
                ns.register("service", "PYRO:obj@127.0.0.1:3")  # the restarted server, during the probe
            return False  # neither old uri answers
        monkeypatch.setattr(cleaner, "_answers", probe)
        cleaner.sweep()
        assert ns.list() == {"service": "PYRO:obj@127.0.0.1:3"}  # "dead" removed, "service" kept
    finally:
        ns.storage.close()


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_stores_are_mappings_as_pyro5s_are(tmp_path, kind):
    """Pyro5's stores are mappings of name -> (uri, metadata set): ``del`` and the rest work on ours too."""
    import Pyro5.nameserver
    store = nameserver.make_storage("memory" if kind == "memory" else "sql:" + str(tmp_path / "ns.sqlite"))
    theirs = Pyro5.nameserver.MemoryStorage() if kind == "memory" else \
        Pyro5.nameserver.SqlStorage(str(tmp_path / "pyro5.sqlite"))
    try:
        for each in (store, theirs):
            each["a b"] = ("PYRO:x@h:1", {"m1", "m2"})
            each["c"] = ("PYRO:y@h:2", set())
            assert each["a b"] == ("PYRO:x@h:1", {"m1", "m2"})
            assert "c" in each and "zz" not in each and len(each) == 2 and sorted(each) == ["a b", "c"]
            del each["c"]
            assert "c" not in each and len(each) == 1
        for each in (store, theirs):
            assert each.get("zz") is None and each.get("zz", 1) == 1
            assert each.get("a b") == ("PYRO:x@h:1", {"m1", "m2"})
        results = []
        for each in (store, theirs):
            each.update({"d": ("PYRO:z@h:3", {"x"})})
            results.append((sorted(each.keys()), sorted(each.items()), sorted(each.values()), each.everything(),
                            each.everything(return_metadata=True), each.pop("d"), each.pop("d", "gone")))
            each.remove_items(["a b", "not there"])
            results.append(len(each))
            each["e"] = ("PYRO:e@h:4", set())
            each.clear()
            results.append(len(each))
            try:
                del each["missing"]  # a dict's KeyError for the memory store, ignored by Pyro5's SQL store
                results.append("ignored")
            except KeyError:
                results.append("KeyError")
        assert results[:4] == results[4:]
    finally:
        store.close()
        theirs.close()


def test_autoclean_knobs_and_lifetime_as_pyro5s(clean_config):
    """Pyro5's AutoCleaner: at least 3 s apart unless overridden, a thread that runs without a request loop,
    gone (None) once the daemon closes, as is the daemon's ``nameserver``."""
    import Pyro5.nameserver
    for cls in (nameserver.AutoCleaner, Pyro5.nameserver.AutoCleaner):
        assert (cls.min_autoclean_value, cls.max_unreachable_time, cls.loop_delay, cls.override_autoclean_min) \
            == (3, 20.0, 2.0, False)
    clean_config.NS_AUTOCLEAN = 1.0
    with pytest.raises(ValueError, match="NS_AUTOCLEAN cannot be smaller than 3"):
        nameserver.NameServerDaemon(host="127.0.0.1", port=0)
    clean_config.NS_AUTOCLEAN = 30.0
    daemon = nameserver.NameServerDaemon(host="127.0.0.1", port=0)
    cleaner = daemon.cleaner_thread
    assert cleaner.is_alive()
    daemon.close()
    assert daemon.cleaner_thread is None and daemon.nameserver is None and not cleaner.is_alive()
    clean_config.NS_AUTOCLEAN = 0.0
    with nameserver.NameServerDaemon(host="127.0.0.1", port=0) as daemon:
        assert daemon.cleaner_thread is None


def test_autoclean_works_without_a_request_loop(quick_cleaner):
    doomed = server.Daemon("127.0.0.1", 0)
    with nameserver.NameServerDaemon(host="127.0.0.1", port=0) as ns_daemon:
        ns_daemon.nameserver.register("doomed", doomed.register(Thing()))
        doomed.close()
        wait_until(lambda: ns_daemon.nameserver.count() == 1, what="autoclean to remove the dead registration")


def test_program_may_change_the_name_servers_own_entry_locally():
    """Pyro5's NameServer lets the program itself register Pyro.NameServer (only remote clients are refused)."""
    ns = nameserver.NameServer()
    ns.register(core.NAMESERVER_NAME, "PYRO:nameserver@host:555")
    ns.set_metadata(core.NAMESERVER_NAME, {"x"})
    assert ns.lookup(core.NAMESERVER_NAME, return_metadata=True) == (core.URI("PYRO:nameserver@host:555"), {"x"})
    assert ns.remove(core.NAMESERVER_NAME) == 0  # still never removed


def test_remove_waits_for_the_lock_a_program_holds():
    """As in Pyro5, a program holding ``ns.lock`` makes removes wait (here, so its own delete goes first)."""
    ns = nameserver.NameServer()
    ns.register("key", "PYRO:x@h:1")
    outcome = []
    ns.lock.acquire()
    remover = threading.Thread(target=lambda: outcome.append(ns.remove("key")))
    remover.start()
    remover.join(0.2)
    assert remover.is_alive()  # waiting for the lock
    del ns.storage["key"]
    ns.lock.release()
    remover.join(10)
    assert outcome == [0]


def test_a_client_cannot_overwrite_the_name_servers_entry_with_a_oneway_call(daemons):
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    with Proxy(uri) as ns:
        ns.ping()  # (the metadata it brings would reset the oneway set)
        ns._pyroOneway.add("register")
        ns.register(core.NAMESERVER_NAME, "PYRO:evil@10.0.0.1:1")  # refused in the background
        ns._pyroOneway.discard("register")
        ns.ping()
        assert ns.lookup(core.NAMESERVER_NAME) == uri


def test_a_stale_call_context_does_not_make_the_program_a_client():
    from geopyro.callcontext import current_context
    ns = nameserver.NameServer()
    current_context.client = object()  # left behind by a call served in this greenlet earlier
    try:
        ns.register(core.NAMESERVER_NAME, "PYRO:nameserver@host:555")
    finally:
        current_context.client = None


def test_pyro5_style_stop_flag_and_no_port_taken_by_a_refused_interval(clean_config):
    clean_config.NS_AUTOCLEAN = 30.0
    daemon = nameserver.NameServerDaemon(host="127.0.0.1", port=0)
    cleaner = daemon.cleaner_thread
    cleaner.stop = True  # how Pyro5 programs stop it
    assert cleaner.stop is True
    cleaner.join(10)
    assert not cleaner.is_alive()
    daemon.close()
    port = daemon.locationStr.rsplit(":", 1)[1]
    clean_config.NS_AUTOCLEAN = 1.0
    with pytest.raises(ValueError):
        nameserver.NameServerDaemon(host="127.0.0.1", port=int(port))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(port)))  # the refused daemon took nothing



def test_a_closed_sql_store_lets_its_threads_go_and_may_still_be_used_as_pyro5s(tmp_path):
    """Pyro5's SqlStorage connects for each operation, so code (Pyro5's own tests) uses it after close()."""
    import Pyro5.nameserver
    ours = nameserver.make_storage("sql:" + str(tmp_path / "ns.sqlite"))
    theirs = Pyro5.nameserver.SqlStorage(str(tmp_path / "pyro5.sqlite"))
    seen = []
    for store in (ours, theirs):
        store["a"] = ("PYRO:a@h:1", {"m"})
        store.close()
        seen.append((store["a"], len(store)))
        store.clear()
        seen.append(len(store))
        store.close()
    assert seen[:2] == seen[2:] == [(("PYRO:a@h:1", {"m"}), 1), 0]
    wait_until(lambda: not ours._worker._running and not ours._reader._running, what="the store's threads to end")
    ours["late"] = ("PYRO:b@h:2", set())  # (a request still running when the name server closed its store)
    assert ours["late"] == ("PYRO:b@h:2", set())

    def open_on_the_file():
        return [fd for fd in os.listdir("/proc/self/fd")
                if os.path.realpath("/proc/self/fd/" + fd).startswith(str(tmp_path / "ns.sqlite"))]
    assert open_on_the_file() == []  # a use after close() opens and closes a connection of its own
