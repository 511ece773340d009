"""NAT URIs, broadcast discovery and several hosts, on a network lab of namespaces (tests/netlab.py).

Every scenario runs with each pair of (server side, client side) in PAIRS: geopyro with geopyro, and geopyro
with Pyro5 on either side. Servers and clients are processes in the lab's hosts; the scripts import
``geopyro.api`` or ``Pyro5.api``, which offer the same names.
"""

import json
import time

import pytest

import netlab
from support import read_line

REASON = netlab.unavailable()
pytestmark = [pytest.mark.netlab, pytest.mark.skipif(REASON is not None, reason=str(REASON))]
pytest.importorskip("Pyro5", reason="Pyro5 is the other side in these tests")

PAIRS = [("geopyro", "geopyro"), ("geopyro", "Pyro5"), ("Pyro5", "geopyro")]
PAIR_IDS = ["%s-server-%s-client" % pair for pair in PAIRS]
PORT, NS_PORT = 9999, 9090

SERVER = r'''
import importlib, json, sys, time
impl, opts = sys.argv[1], json.loads(sys.argv[2])
api = importlib.import_module(impl + ".api")


@api.expose
class Part:
    def where(self):
        return opts["label"]


@api.expose
class Lab:
    def __init__(self):
        self._part = Part()

    def where(self):
        return opts["label"]

    def slow(self, seconds):
        time.sleep(seconds)
        return opts["label"]

    def part(self):
        return self._part  # (registered: it travels as a proxy, with this daemon's URI)


daemon = api.Daemon(host=opts["host"], port=opts["port"], nathost=opts.get("nathost"), natport=opts.get("natport"))
lab = Lab()
daemon.register(lab._part)
uri = daemon.register(lab, "lab")
if opts.get("ns"):
    ns = api.locate_ns(opts["ns"], opts["ns_port"])
    ns.register(opts["name"], uri, metadata=set(opts.get("metadata", [])))
print(json.dumps({"uri": str(uri), "inside": str(daemon.uriFor("lab", nat=False)),
                  "nat": str(daemon.uriFor("lab", nat=True))}), flush=True)
daemon.requestLoop()
'''

CLIENT = r'''
import importlib, json, sys
api = importlib.import_module("%(impl)s.api")
errors = importlib.import_module("%(impl)s.errors")
def report(value):
    print(json.dumps(value), flush=True)
'''


def start_server(lab, host, impl, **opts):
    """A SERVER process on ``host``; returns what it printed (its URIs)."""
    opts.setdefault("host", netlab.LAN.get(host) or netlab.WAN.get(host))
    opts.setdefault("port", PORT)
    opts.setdefault("label", host)
    proc = lab.spawn(host, ["-c", SERVER, impl, json.dumps(opts)])
    line = _read_line(proc, 30)
    return proc, json.loads(line)


def start_ns(lab, host, impl):
    module = "geopyro.nameserver" if impl == "geopyro" else "Pyro5.nameserver"
    proc = lab.spawn(host, ["-m", module, "-n", netlab.LAN[host], "-p", str(NS_PORT)])
    lab.wait_listening(host, NS_PORT)
    return proc


def _read_line(proc, timeout):
    """The next stdout line of ``proc`` (a lab process), within ``timeout`` seconds."""
    line = read_line(proc, time.monotonic() + timeout)
    if line is None:
        raise AssertionError("netlab process printed nothing (exit %s): %s" % (proc.wait(10), proc.stderr.read()))
    return line


def client(lab, host, impl, code, env=None, timeout=60):
    return lab.run_python(host, CLIENT % {"impl": impl} + code, env, timeout)


@pytest.fixture
def lab():
    built = netlab.Lab()
    yield built
    built.close()
    assert not [line for line in netlab._netns_list() if line.startswith(built.tag + "-")], "namespaces left behind"


@pytest.mark.parametrize("server_impl,client_impl", PAIRS, ids=PAIR_IDS)
def test_a_daemon_behind_nat_is_reached_through_the_uris_it_hands_out(lab, server_impl, client_impl):
    lab.forward(PORT, "a")
    lab.forward(NS_PORT, "a")
    start_ns(lab, "a", server_impl)
    _, uris = start_server(lab, "a", server_impl, nathost=netlab.ROUTER_WAN, natport=PORT, ns=netlab.LAN["a"],
                           ns_port=NS_PORT, name="lab.behind.nat")
    assert uris["nat"] == "PYRO:lab@%s:%d" % (netlab.ROUTER_WAN, PORT) == uris["uri"]
    assert uris["inside"] == "PYRO:lab@%s:%d" % (netlab.LAN["a"], PORT)
    outside = client(lab, "x", client_impl, '''
p = api.Proxy(%r)
part = p.part()
ns = api.locate_ns(%r, %d)
found = ns.lookup("lab.behind.nat")
try:
    inside_proxy = api.Proxy(%r)
    inside_proxy._pyroTimeout = 2.0
    inside_proxy.where()
    inside = "reached"
except Exception as exc:
    inside = type(exc).__name__
report({"where": p.where(), "part_uri": str(part._pyroUri), "part": part.where(), "found": str(found),
        "via_ns": api.Proxy(found).where(), "inside_uri": inside})
''' % (uris["nat"], netlab.ROUTER_WAN, NS_PORT, uris["inside"]))
    assert outside["where"] == "a" and outside["part"] == "a"
    assert outside["part_uri"].endswith("@%s:%d" % (netlab.ROUTER_WAN, PORT))  # (autoproxy: the NAT address)
    assert outside["found"] == uris["nat"] and outside["via_ns"] == "a"
    assert outside["inside_uri"] in ("CommunicationError", "TimeoutError")  # (the router lets nothing else in)
    inside = client(lab, "b", client_impl, '''
report({"where": api.Proxy(%r).where()})
''' % uris["inside"])
    assert inside == {"where": "a"}


@pytest.mark.parametrize("ns_impl,client_impl", PAIRS, ids=PAIR_IDS)
def test_broadcast_finds_a_name_server_on_the_segment_and_not_across_the_router(lab, ns_impl, client_impl):
    start_ns(lab, "a", ns_impl)
    lookup = '''
try:
    ns = api.locate_ns()
    report({"found": ns.lookup("Pyro.NameServer").location})
except Exception as exc:  # (NamingError; Pyro5's own locate_ns may let an OSError through)
    report({"error": "%s: %s" % (type(exc).__name__, exc)})
'''
    assert client(lab, "b", client_impl, lookup) == {"found": "%s:%d" % (netlab.LAN["a"], NS_PORT)}
    assert "error" in client(lab, "x", client_impl, lookup)


@pytest.mark.parametrize("server_impl,client_impl", PAIRS, ids=PAIR_IDS)
def test_name_server_daemons_and_clients_on_four_hosts(lab, server_impl, client_impl):
    start_ns(lab, "a", server_impl)
    for host in ("b", "c"):
        start_server(lab, host, server_impl, ns=netlab.LAN["a"], ns_port=NS_PORT, name="lab.service." + host,
                     metadata=["role:worker", "host:" + host])
    answers = client(lab, "d", client_impl, '''
ns = api.locate_ns(%r, %d)
chosen = set()
for _ in range(30):
    with api.Proxy("PYROMETA:role:worker@%s:%d") as p:
        chosen.add(p.where())
report({"b": api.Proxy(ns.lookup("lab.service.b")).where(), "c": api.Proxy("PYRONAME:lab.service.c@%s:%d").where(),
        "workers": sorted(ns.yplookup(meta_all={"role:worker"})), "host_c": sorted(ns.yplookup(meta_any={"host:c"})),
        "pyrometa": api.Proxy("PYROMETA:host:c@%s:%d").where(), "chosen": sorted(chosen)})
''' % ((netlab.LAN["a"], NS_PORT) * 4))
    assert answers == {"b": "b", "c": "c", "workers": ["lab.service.b", "lab.service.c"], "host_c": ["lab.service.c"],
                       "pyrometa": "c", "chosen": ["b", "c"]}


@pytest.mark.parametrize("server_impl,client_impl", PAIRS, ids=PAIR_IDS)
def test_proxies_recover_when_a_hosts_daemon_is_restarted(lab, server_impl, client_impl):
    server, uris = start_server(lab, "b", server_impl)
    proc = lab.spawn("d", ["-c", CLIENT % {"impl": client_impl} + '''
api.config.MAX_RETRIES = 1
p = api.Proxy(%r)
report({"first": p.where()})
sys.stdin.readline()  # the test restarts the daemon meanwhile
report({"after_restart": p.where()})
''' % uris["uri"]])
    assert json.loads(_read_line(proc, 30)) == {"first": "b"}
    server.kill()
    server.communicate(timeout=10)
    start_server(lab, "b", server_impl, label="b again")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert json.loads(_read_line(proc, 30)) == {"after_restart": "b again"}
    assert proc.wait(10) == 0


@pytest.mark.parametrize("server_impl,client_impl", PAIRS, ids=PAIR_IDS)
def test_a_cut_link_times_out_and_a_later_call_succeeds(lab, server_impl, client_impl):
    _, uris = start_server(lab, "b", server_impl)
    proc = lab.spawn("d", ["-c", CLIENT % {"impl": client_impl} + '''
api.config.COMMTIMEOUT = 1.5
p = api.Proxy(%r)
p._pyroBind()
report({"calling": True})
try:
    p.slow(3)
    outcome = "answered"
except errors.TimeoutError:
    outcome = "TimeoutError"
except Exception as exc:
    outcome = repr(exc)
report({"outcome": outcome})
sys.stdin.readline()  # the test restores the link meanwhile
report({"later": p.where()})
''' % uris["uri"]])
    assert json.loads(_read_line(proc, 30)) == {"calling": True}
    lab.link("d", up=False)
    assert json.loads(_read_line(proc, 30)) == {"outcome": "TimeoutError"}
    lab.link("d", up=True)
    lab.sh("ip", "route", "replace", "default", "via", netlab.ROUTER_LAN, host="d")  # (gone with the link)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert json.loads(_read_line(proc, 30)) == {"later": "b"}
    assert proc.wait(10) == 0
