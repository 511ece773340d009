"""Name server interop with Pyro5, each peer in its own process."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from geopyro import core, nameserver, server
from geopyro.client import Proxy
from support import ROOT, child_env, free_port

pytest.importorskip("Pyro5")



def run(args, **envvars):
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=child_env(**envvars), capture_output=True, text=True,
                          timeout=30)


def start_server(module, *args):
    """Start ``python -m module -n 127.0.0.1 -p 0 -x``; return (process, ns uri) once it serves."""
    proc = subprocess.Popen([sys.executable, "-m", module, "-n", "127.0.0.1", "-p", "0", "-x"] + list(args),
                            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.search(r"URI = (\S+)", line)
        if match:
            return proc, core.URI(match.group(1))
    proc.wait(5)
    raise AssertionError("%s did not start:\n%s" % (module, "".join(seen)))


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
    proc.wait(10)
    proc.stdout.close()


@pytest.fixture
def geopyro_ns():
    proc, uri = start_server("geopyro.nameserver")
    yield uri
    stop(proc)


@pytest.fixture
def pyro5_ns():
    proc, uri = start_server("Pyro5.nameserver")
    yield uri
    stop(proc)


@server.expose
class Greeter:
    def greet(self, name):
        return "hi " + name


PYRO5_CLIENT = textwrap.dedent("""
    import json, sys
    from Pyro5.api import locate_ns, Proxy
    port = int(sys.argv[1])
    ns = locate_ns("127.0.0.1", port)
    ns.register("p5.obj", "PYRO:p5@127.0.0.1:5555", metadata={"from:pyro5"})
    uri, meta = ns.lookup("p5.obj", return_metadata=True)
    result = {
        "lookup": [type(uri).__name__, str(uri), sorted(meta)],
        "list": ns.list(prefix="p5."),
        "yplookup": {k: [v[0], sorted(v[1])] for k, v in ns.yplookup(meta_any=["from:pyro5"]).items()},
        "count": ns.count(),
        "remove": ns.remove(prefix="p5."),
    }
    try:
        ns.lookup("missing")
    except Exception as exc:
        result["error"] = [type(exc).__name__, str(exc)]
    with Proxy("PYRONAME:geo.greeter@127.0.0.1:%d" % port) as greeter:
        result["greet"] = greeter.greet("pyro5")
    print(json.dumps(result))
""")


def test_pyro5_client_against_geopyro_ns(geopyro_ns, daemons):
    greeter_uri = daemons.serve(Greeter())
    with Proxy(geopyro_ns) as ns:
        ns.register("geo.greeter", greeter_uri)
    result = run(["-c", PYRO5_CLIENT, str(geopyro_ns.port)])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lookup"] == ["URI", "PYRO:p5@127.0.0.1:5555", ["from:pyro5"]]
    assert data["list"] == {"p5.obj": "PYRO:p5@127.0.0.1:5555"}
    assert data["yplookup"] == {"p5.obj": ["PYRO:p5@127.0.0.1:5555", ["from:pyro5"]]}
    assert data["count"] == 3 and data["remove"] == 1
    assert data["error"] == ["NamingError", "unknown name: missing"]
    assert data["greet"] == "hi pyro5"


def test_pyro5_nsc_against_geopyro_ns(geopyro_ns):
    with Proxy(geopyro_ns) as ns:
        ns.register("shown.obj", "PYRO:shown@127.0.0.1:6000", metadata={"tag"})
    where = ["-m", "Pyro5.nsc", "-n", "127.0.0.1", "-p", str(geopyro_ns.port)]
    result = run(where + ["list"])
    assert result.returncode == 0 and "shown.obj --> PYRO:shown@127.0.0.1:6000" in result.stdout
    assert "Pyro.NameServer --> %s" % geopyro_ns in result.stdout
    result = run(where + ["lookup", "shown.obj"])
    assert result.returncode == 0 and result.stdout.startswith("PYRO:shown@127.0.0.1:6000\nmetadata:")


def test_pyro5_broadcast_locate_finds_geopyro_ns(daemons):
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    with nameserver.BroadcastServer(uri, "", 0) as bc:
        thread = bc.runInThread()
        script = "from Pyro5.api import locate_ns; print(locate_ns()._pyroUri)"
        result = run(["-c", script], PYRO_NS_HOST="localhost", PYRO_NS_PORT=free_port(), PYRO_NS_BCPORT=bc.getPort(),
                     PYRO_BROADCAST_ADDRS="127.0.0.1")
    thread.join(5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(uri)


def test_geopyro_client_against_pyro5_ns(pyro5_ns, daemons, clean_config):
    greeter_uri = daemons.serve(Greeter())
    with core.locate_ns("127.0.0.1", pyro5_ns.port) as ns:
        ns.register("p5side.greeter", greeter_uri, metadata={"kind:greeter"})
        assert ns.lookup("p5side.greeter") == greeter_uri
        assert ns.lookup("p5side.greeter", return_metadata=True) == (greeter_uri, {"kind:greeter"})
        assert ns.list(prefix="p5side.") == {"p5side.greeter": str(greeter_uri)}
        assert ns.yplookup(meta_all=["kind:greeter"]) == {"p5side.greeter": (str(greeter_uri), {"kind:greeter"})}
    with Proxy("PYRONAME:p5side.greeter@127.0.0.1:%d" % pyro5_ns.port) as greeter:
        assert greeter.greet("geopyro") == "hi geopyro"
    with Proxy("PYROMETA:kind:greeter@127.0.0.1:%d" % pyro5_ns.port) as greeter:
        assert greeter.greet("meta") == "hi meta"
    clean_config.NS_HOST = "127.0.0.1"
    clean_config.NS_PORT = pyro5_ns.port
    with core.locate_ns() as ns:
        assert ns.count() == 2


def test_geopyro_nsc_against_pyro5_ns(pyro5_ns):
    where = ["-m", "geopyro.nsc", "-n", "127.0.0.1", "-p", str(pyro5_ns.port)]
    result = run(where + ["register", "via.geo", "PYRO:geo@127.0.0.1:7100"])
    assert result.returncode == 0, result.stderr
    result = run(where + ["list"])
    assert result.returncode == 0 and "via.geo --> PYRO:geo@127.0.0.1:7100" in result.stdout
    result = run(where + ["lookup", "via.geo"])
    assert (result.returncode, result.stdout) == (0, "PYRO:geo@127.0.0.1:7100\n")
    result = run(where + ["lookup", "absent"])
    assert result.returncode == 1 and "Error: NamingError - unknown name: absent" in result.stdout


def test_sql_store_readable_by_pyro5(tmp_path):
    from Pyro5.nameserver import SqlStorage as Pyro5SqlStorage
    path = str(tmp_path / "shared.sqlite")
    ns = nameserver.NameServer(nameserver.make_storage("sql:" + path))
    ns.register("shared.obj", "PYRO:s@127.0.0.1:1", metadata={"a", "b"})
    ns.storage.close()
    assert Pyro5SqlStorage(path)["shared.obj"] == ("PYRO:s@127.0.0.1:1", {"a", "b"})
