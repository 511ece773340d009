"""Every folder in examples/ runs as its Readme says; a folder without an entry here fails the suite."""

import os
import shutil
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# folder -> list of (script, texts that its output must contain; one starting with "!" must not appear)
RUNS = {
    "eventloop": [
        ("server_selectors.py", ["client: server says tick 3", "did its own work several times"]),
        ("server_gevent.py", ["first tick 2", "second tick 2", "heartbeat greenlet ran meanwhile: yes"]),
    ],
    "async": [
        ("server.py", ["client: call returned <geopyro.client.Future pending>", "value = 49",
                       "chained with then(): result 10", "wait(0.1) on a 0.5 s call says False",
                       "raised LookupError: the oracle does not know", "into: handled LookupError",
                       "back to normal calls: 25", "three 0.5 s calls on three proxies: [1, 4, 9]"]),
    ],
    "autoproxy": [
        ("server.py", ["client: build() returned a Proxy for PYRO:obj_", "beetle drove 25 km (odometer 65 km",
                       "remote property mileage = 65", "plain data: {'name': 'bus', 'registered': False}",
                       "['beetle: 65 km']"]),
    ],
    "batchedcalls": [
        ("server.py", ["500 normal calls: sum 249500", "500 batched calls: sum 249500", "first result 3",
                       "second result 2.5", "third result raised ZeroDivisionError",
                       "notes on the server: []", "notes on the server: ['sent oneway 1', 'sent oneway 2']",
                       "its results: [42, 101]"]),
    ],
    "blocking": [
        ("server.py", ["server (unpatched): serving PYRO:sleeper@", "while the naps ran",
                       "4 calls of time.sleep(1.0) at once took", "at most 4 naps were in progress at once, on 4 pool "
                       "threads", "CPU work done"]),
        ("server_patched.py", ["server (patched): serving PYRO:sleeper@", "while the naps ran",
                               "at most 4 naps were in progress at once, on the main thread, inline",
                               "method Sleeper.crunch blocked the gevent event loop",
                               "!Sleeper.crunch_on_a_thread blocked", "CPU work done"]),
    ],
    "blob-dispatch": [
        ("server.py", ["dispatcher got a SerializedBlob for topic 'bulk', passing it on unread",
                       "worker fragile-worker unpacked a Parcel: glass vase", "bulk-worker handled bag of sand",
                       "fragile-worker handled old clock"]),
    ],
    "callback": [
        ("server.py", ["got a listener: Proxy PYRO:obj_", "client: callback progress 3/3",
                       "the client's finished() callback failed: RuntimeError",
                       "client log: closing connection", "worker says: run of 3 steps complete",
                       "callbacks received for steps [1, 2, 3]"]),
    ],
    "callcontext": [
        ("server.py", ["annotations from the client: {'REQI': b'request-", "'USER': b'carol'}",
                       "client: echo: hello", "client: echo: again", "(TOOK annotation)",
                       "server name annotation: callcontext-example", "server: call seq 2 from ('127.0.0.1'"]),
    ],
    "concurrency": [
        ("demo.py", ["greenlet  server: 20 concurrent 0.1 s calls took", "(at most 20 running at once)",
                     "multiplex server: 20 concurrent 0.1 s calls took", "(at most 1 running at once)",
                     "difference: greenlet was"]),
    ],
    "disconnects": [
        ("server.py", ["the server had dropped us: ConnectionClosedError", "_pyroReconnect() done; increment -> 2",
                       "(retried on a fresh connection by itself) -> 3", "slow call gave up: TimeoutError",
                       "connects anew by itself; increment -> 4"]),
    ],
    "exceptions": [
        ("server.py", ["error handler saw ZeroDivisionError(division by zero) in divide(1, 0)",
                       "caught ZeroDivisionError: division by zero", "Remote traceback:", "return a / b",
                       "caught ValueError: we never sell 'durian'", "caught the custom shop.OutOfStock for pear",
                       "server: 3 failed calls handled"]),
    ],
    "tls": [
        ("server.py", ["server: serving PYRO:safe@localhost:", "client: the server says I am alice",
                       "server certificate issued to localhost", "without a certificate: refused"]),
    ],
    "handshake": [
        ("server.py", ["server: accepted dave, token", "handshake answer: welcome, dave",
                       "my token from the handshake is", "refused a connection from",
                       "with the wrong secret: connection to 127.0.0.1:", "rejected: wrong secret, go away"]),
    ],
    "instancemode": [
        ("server.py", ["proxy 2 -> instance #1, call 4", "proxy 1 -> session instance #2, call 2",
                       "proxy 2 -> session instance #3, call 2", "proxy 2 -> instance #7, call 1"]),
    ],
    "pyro4migration": [
        ("server.py", ["pyro4 client (Pyro4 4.", "weather station, north 11.5 C",
                       "pyro5 client: weather station, south 14.0 C",
                       "pyro4 client: streamed ['reading 0', 'reading 1']", "pyro4 client: batch -> [11.5, 14.0]",
                       "pyro4 client: autoproxy is a Pyro4.core.Proxy: probe p4, kept by geopyro",
                       "pyro5 client: autoproxy is a Pyro5.client.Proxy: probe p5, kept by geopyro",
                       "remote traceback names temperature(): True",
                       "notes left by the others: ['checked by the Pyro4 client', 'checked by the Pyro5 client']"]),
        ("server_unchanged.py", ["server: pyro4_server.py, unchanged, runs on geopyro at PYRO:station@",
                                 "pyro4 client: batch -> [11.5, 14.0]",
                                 "pyro4 client: autoproxy is a Pyro4.core.Proxy: probe p4, kept by geopyro",
                                 "pyro5 client: autoproxy is a Pyro5.client.Proxy: probe p5, kept by geopyro",
                                 "remote traceback names temperature(): True",
                                 "notes left by the others: ['checked by the Pyro4 client', 'checked by the Pyro5 "
                                 "client']"]),
    ],
    "interop": [
        ("server.py", ["client: Pyro5 5.", "geopyro not loaded", "remote property name = geopyro bank",
                       "deposit -> {'ok': True, 'amount': 10}", "oneway ping arrived: ['hi']",
                       "streamed history: ['transaction 0', 'transaction 1', 'transaction 2']", "batch -> [1, 2]",
                       "autoproxy is a Pyro5.client.Proxy: account of frank",
                       "its remote traceback mentions deposit(): True"]),
    ],
    "nameserver": [
        ("server.py", ["name server running at PYRO:Pyro.NameServer@127.0.0.1:", "name = example.greeter",
                       "name server knows example.clock -> PYRO:obj_", "hello erin, from the greeter found by name",
                       "clock found by lookup() says 42"]),
    ],
    "nat": [
        ("server.py", ["uri handed out (NAT address): PYRO:office@127.0.0.1:", "the daemon listens on 127.0.0.1:",
                       "client: ticket 7", "the forwarder carried"]),
        ("server_netlab.py", ["uri handed out (NAT address): PYRO:office@198.51.100.1:9999",
                              "client: connecting to 198.51.100.1:9999", "the daemon listens on 192.0.2.10:9999",
                              "client: the returned proxy points at 198.51.100.1:9999", "client: ticket 7"]),
    ],
    "oneway": [
        ("server.py", ["client: status right away: []", "client: status after 1.3 s: ['A']",
                       "client: normal call: B done", "oneway returned immediately: yes"]),
    ],
    "streaming": [
        ("server.py", ["client: got _StreamResultIterator at once", "received {'n': 4, 'value': 6.0}",
                       "first five of an endless stream: [0, 1, 2, 3, 4]",
                       "server: endless ticks() generator was closed",
                       "a plain iterator streams too: ['north', 'east', 'south', 'west']"]),
    ],
    "thirdpartylib": [
        ("server.py", ["cities: ['Lisbon', 'Nairobi', 'Oslo']", "Lisbon is 17.0 C",
                       "warmest (a remote property): Nairobi", "a library object came back as: Oslo -3.5 C",
                       "private method stays hidden"]),
    ],
    "usersession": [
        ("server.py", ["alice sees only their own notes: ['buy milk', 'call bob']",
                       "bob sees only their own notes: ['fix bike', 'read mail', 'water plants']",
                       "server: closed notebook of alice", "server: closed notebook of bob",
                       "a call without a user was refused: PermissionError",
                       "notebooks still open after the clients left: 0"]),
    ],
}


def example_folders():
    return sorted(name for name in os.listdir(EXAMPLES) if os.path.isdir(os.path.join(EXAMPLES, name))
                  and not name.startswith((".", "_")))


def test_every_example_folder_is_exercised():
    assert set(example_folders()) == set(RUNS), "add the new example folder to RUNS in tests/test_examples.py"


def test_every_example_folder_has_a_readme():
    for folder in example_folders():
        names = {name.lower() for name in os.listdir(os.path.join(EXAMPLES, folder))}
        assert "readme.md" in names or "readme.txt" in names, folder


@pytest.mark.parametrize("folder,script,expected",
                         [(folder, script, expected) for folder, runs in sorted(RUNS.items())
                          for script, expected in runs])
def test_example_runs(folder, script, expected):
    if script.endswith("_netlab.py"):
        import netlab
        if netlab.unavailable():
            pytest.skip("needs the network lab: %s" % netlab.unavailable())
    if folder == "tls" and shutil.which("openssl") is None:
        pytest.skip("the tls example makes its certificates with the openssl command line, which is missing")
    env = dict(os.environ)
    root = os.path.dirname(EXAMPLES)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, script], cwd=os.path.join(EXAMPLES, folder), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True)
    assert done.returncode == 0, done.stdout
    for text in expected:
        if text.startswith("!"):
            assert text[1:] not in done.stdout, done.stdout
        else:
            assert text in done.stdout, done.stdout
