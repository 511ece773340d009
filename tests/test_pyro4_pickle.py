"""pickle, dill and cloudpickle with Pyro4 peers (geopyro.pickles): only where named, Pyro's objects in Pyro4's
classes both ways, and never read by a daemon or a proxy that did not ask for them.

The servers run in subprocesses: one script, run by the real Pyro4 4.82 or, unchanged, on geopyro's Pyro4 API
through ``python -m geopyro.run``; the clients (real Pyro4's, geopyro's Pyro4 API's) run in this process.
"""

import copy
import pickle
import socket
import subprocess
import sys
import threading
import time

import pytest

from geopyro import api, errors, pickles, protocol, protocol48
from geopyro.compatibility import Pyro4 as G4
from support import child_env, first_line

Pyro4 = pytest.importorskip("Pyro4", reason="Pyro4 is the peer these tests talk to")
Pyro4_util = pytest.importorskip("Pyro4.util")

SERIALIZERS = [name for name in pickles.NAMES if name in pickles.available()]
STARTUP_DEADLINE = 30.0
BASE = protocol48.PYRO4_SERIALIZER_BASE

SERVER = r'''
import sys

import Pyro4
import Pyro4.errors

Pyro4.config.SERIALIZERS_ACCEPTED = set(sys.argv[1].split(","))


@Pyro4.expose
class Part:
    def name(self):
        return "part"


@Pyro4.expose
class Service:
    def __init__(self):
        self.part = Part()

    def echo(self, value):
        return value

    def apply(self, function, value):
        return function(value)

    def fail(self, name):
        raise Pyro4.errors.NamingError("unknown name: %s" % name)

    def get_part(self):
        return self.part  # (registered: it travels as a proxy)

    def describe(self, value):
        return type(value).__module__ + "." + type(value).__name__


daemon = Pyro4.Daemon(host="127.0.0.1")
service = Service()
daemon.register(service.part)
print(daemon.register(service, "service"), flush=True)
daemon.requestLoop()
'''


@pytest.fixture
def server(tmp_path):
    """Start SERVER as ``which`` ("pyro4" or "geopyro"), accepting ``accepted``; returns its URI."""
    procs = []
    script = tmp_path / "pickle_server.py"
    script.write_text(SERVER)

    def start(which, accepted):
        launcher = [sys.executable] if which == "pyro4" else [sys.executable, "-m", "geopyro.run"]
        proc = subprocess.Popen(launcher + [str(script), ",".join(accepted)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env())
        procs.append(proc)
        return first_line(proc, time.monotonic() + STARTUP_DEADLINE, "the %s server" % which)

    yield start
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_a_pyro4_client_pickles_to_geopyros_pyro4_daemon(server, pyro4_serializer, serializer):
    uri = server("geopyro", ["serpent", serializer])
    pyro4_serializer(serializer)
    with Pyro4.Proxy(uri) as proxy:
        value = {"set": {1, 2}, "frozen": frozenset("ab"), "complex": 1 + 2j, "bytes": b"\0\xff"}
        assert proxy.echo(value) == value
        uri_back = proxy.echo(Pyro4.URI("PYRO:x@localhost:1"))
        assert type(uri_back) is Pyro4.core.URI and str(uri_back) == "PYRO:x@localhost:1"
        assert proxy.describe(Pyro4.URI("PYRO:x@localhost:1")) == "geopyro.core.URI"
        part = proxy.get_part()
        assert type(part) is Pyro4.core.Proxy
        with part:
            assert part.name() == "part"
        with pytest.raises(Pyro4.errors.NamingError, match="unknown name: x") as raised:
            proxy.fail("x")
        assert "unknown name: x" in "".join(raised.value._pyroTraceback)  # (the remote traceback came along)
        if serializer != "pickle":  # dill and cloudpickle carry functions (of no module) by value
            assert proxy.apply(eval("lambda value: value + 1", {}), 41) == 42


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_geopyros_pyro4_client_pickles_to_a_pyro4_daemon(server, serializer):
    uri = server("pyro4", ["serpent", serializer])
    with G4.Proxy(uri) as proxy:
        proxy._pyroSerializer = serializer
        assert proxy.echo({"set": {1, 2}, "complex": 1j}) == {"set": {1, 2}, "complex": 1j}
        assert proxy.describe(api.URI("PYRO:x@localhost:1")) == "Pyro4.core.URI"
        assert proxy.describe(G4.Proxy("PYRO:x@localhost:1")) == "Pyro4.core.Proxy"
        part = proxy.get_part()
        assert type(part) is G4.Proxy and part._pyroProtocol == 48
        with part:
            assert part.name() == "part"
        with pytest.raises(G4.errors.NamingError, match="unknown name: x"):
            proxy.fail("x")
        if serializer != "pickle":
            assert proxy.apply(eval("lambda value: value * 3", {}), 14) == 42


def test_geopyros_daemon_refuses_what_it_was_not_told_to_accept(server, pyro4_serializer):
    uri = server("geopyro", ["serpent", "pickle"])
    for name in SERIALIZERS:
        pyro4_serializer(name)
        with Pyro4.Proxy(uri) as proxy:
            if name == "pickle":
                assert proxy.echo(1) == 1
            else:
                with pytest.raises(Pyro4.errors.CommunicationError,
                                   match="serializer that is not accepted: %d" % protocol48.SERIALIZER_IDS[name]):
                    proxy.echo(1)


def test_a_proxy_state_and_errors_in_pyro4s_shapes():
    """What a Pyro4 peer unpickles is Pyro4's own classes with their states, and back."""
    proxy = G4.Proxy("PYRO:thing@localhost:9999")
    proxy._pyroHmacKey, proxy._pyroMethods, proxy._pyroOneway = b"key", {"call"}, {"tell"}
    failure = errors.NamingError("gone")
    failure._pyroTraceback = ["remote traceback"]
    for name in SERIALIZERS:
        ours, theirs = pickles.get(name), Pyro4_util.get_serializer(name)
        their_proxy, their_failure, their_uri = theirs.loads(ours.dumps([proxy, failure, api.URI("PYRO:u@h:1")]))
        assert type(their_proxy) is Pyro4.core.Proxy and type(their_uri) is Pyro4.core.URI
        assert (their_proxy._pyroUri.asString(), their_proxy._pyroHmacKey, their_proxy._pyroMethods,
                their_proxy._pyroOneway) == ("PYRO:thing@localhost:9999", b"key", {"call"}, {"tell"})
        assert type(their_failure) is Pyro4.errors.NamingError and their_failure._pyroTraceback == ["remote traceback"]
        back, back_failure, back_uri = ours.loads(theirs.dumps([their_proxy, their_failure, their_uri]))
        assert type(back) is G4.Proxy and back._pyroProtocol == 48 and back._pyroHmacKey == b"key"
        assert back._pyroMethods == {"call"} and str(back._pyroUri) == "PYRO:thing@localhost:9999"
        assert type(back_failure) is errors.NamingError and type(back_uri) is api.URI


# --- never read unless asked for ------------------------------------------------------------------------------

class _Touch:
    """Unpickling this creates a file: proof that something read the pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def touching_pickle(path, size):
    data = pickle.dumps((_Touch(path), "x" * size))
    assert len(data) >= size
    return data


def exchange(location, messages, hmac_key=None):
    """Send ``messages`` in turn on one connection; return the type and payload of each reply (None: closed)."""
    host, port = location.rsplit(":", 1)
    replies = []
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        reader = protocol48.MessageReader48(1 << 30, hmac_key)
        for message in messages:
            sock.sendall(message)
            msg = None
            while msg is None:
                data = sock.recv(65536)
                if not data:
                    replies.append(None)
                    return replies
                reader.feed(data)
                msg = reader.next_message()
            replies.append((msg.type, bytes(msg.data)))
    return replies


@pytest.mark.parametrize("size", [10, protocol48.DEFERRED_HMAC_FROM + 10])  # (small: read at once; large: on a thread)
@pytest.mark.parametrize("daemon_class", ["geopyro", "Pyro4 API"])
def test_a_daemon_never_unpickles_what_it_does_not_accept(daemons, servertype, tmp_path, size, daemon_class):
    daemon = api.Daemon(host="127.0.0.1") if daemon_class == "geopyro" else G4.Daemon(host="127.0.0.1")
    daemon.register(Thing, "thing")
    daemons.start(daemon)
    target = tmp_path / "unpickled"
    evil = touching_pickle(target, size)
    serpent_48 = BASE + protocol48.SERIALIZER_IDS["serpent"]
    serpent = G4.util.get_serializer("serpent")
    for wire_id in (4, 5, 7):  # pickle, dill, cloudpickle
        connect = protocol48.encode(protocol.MSG_CONNECT, 0, 0, BASE + wire_id, evil)
        [(reply_type, text)] = exchange(daemon.locationStr, [connect])
        assert reply_type == protocol.MSG_CONNECTFAIL and b"serializer that is not accepted: %d" % wire_id in text
        handshake = protocol48.encode(protocol.MSG_CONNECT, 0, 0, serpent_48,
                                      serpent.dumps({"handshake": None, "object": "thing"}))
        invoke = protocol48.encode(protocol.MSG_INVOKE, 0, 1, BASE + wire_id, evil)
        connected, refused = exchange(daemon.locationStr, [handshake, invoke])
        assert connected[0] == protocol.MSG_CONNECTOK and refused[0] == protocol.MSG_RESULT
        assert b"serializer that is not accepted: %d" % wire_id in refused[1]
    assert not target.exists()


@api.expose
class Part:
    def name(self):
        return "part"


@api.expose
class Thing:
    def __init__(self):
        self._part = Part()

    def echo(self, value):
        return value

    def part(self):
        if not hasattr(self._part, "_pyroId"):
            self._pyroDaemon.register(self._part, "thing.part")
        return self._part


@pytest.mark.parametrize("daemon_class", ["geopyro", "Pyro4 API"])
def test_a_kept_serialized_pickle_is_refused_too(daemons, servertype, tmp_path, daemon_class):
    daemon = api.Daemon(host="127.0.0.1") if daemon_class == "geopyro" else G4.Daemon(host="127.0.0.1")
    daemon.register(Thing, "thing")
    daemons.start(daemon)
    target = tmp_path / "unpickled"
    serpent = G4.util.get_serializer("serpent")
    handshake = protocol48.encode(protocol.MSG_CONNECT, 0, 0, BASE + 1,
                                  serpent.dumps({"handshake": None, "object": "thing"}))
    blob = protocol48.encode(protocol.MSG_INVOKE, protocol.FLAGS_KEEPSERIALIZED, 1, BASE + 4,
                             touching_pickle(target, 10), {"BLBI": b"x"})
    connected, refused = exchange(daemon.locationStr, [handshake, blob])
    assert refused[0] == protocol.MSG_RESULT and b"serializer that is not accepted: 4" in refused[1]
    assert not target.exists()


def test_a_large_forged_message_is_refused_for_its_signature_first(daemons, servertype, tmp_path):
    """Its serializer is one the daemon refuses too; the signature is what counts (as in Pyro4): the answer is
    a SecurityError and the connection is closed."""
    daemon = G4.Daemon(host="127.0.0.1")
    daemon._pyroHmacKey = b"sesame"
    daemon.register(Thing, "thing")
    daemons.start(daemon)
    serpent = G4.util.get_serializer("serpent")
    handshake = protocol48.encode(protocol.MSG_CONNECT, 0, 0, BASE + 1,
                                  serpent.dumps({"handshake": None, "object": "thing"}), hmac_key=b"sesame")
    evil = touching_pickle(tmp_path / "unpickled", protocol48.DEFERRED_HMAC_FROM)
    forged = protocol48.encode(protocol.MSG_INVOKE, 0, 1, BASE + 4, evil, hmac_key=b"forged")
    replies = exchange(daemon.locationStr, [handshake, forged, handshake], hmac_key=b"sesame")
    assert replies[0][0] == protocol.MSG_CONNECTOK
    assert replies[1][0] == protocol.MSG_RESULT and b"hmac mismatch" in replies[1][1]
    assert replies[2] is None  # (closed: nothing more is read on that connection)
    assert not (tmp_path / "unpickled").exists()


def _fake_pyro4_server(listener, replies):
    """Answer each connection's first message (a CONNECT) with the next reply, then its INVOKE with the next."""
    for reply_to_connect, reply_to_invoke in replies:
        conn, _ = listener.accept()
        with conn:
            reader = protocol48.MessageReader48(1 << 20)
            for reply in (reply_to_connect, reply_to_invoke):
                msg = None
                while msg is None:
                    data = conn.recv(65536)
                    if not data:
                        break
                    reader.feed(data)
                    msg = reader.next_message()
                if msg is None or reply is None:
                    break
                conn.sendall(reply(msg))


def test_a_proxy_never_unpickles_a_reply_it_did_not_ask_for(tmp_path):
    target = tmp_path / "unpickled"
    evil = touching_pickle(target, 10)
    serpent = G4.util.get_serializer("serpent")

    def pickled(msgtype):
        return lambda msg: protocol48.encode(msgtype, 0, msg.seq, BASE + 4, evil)

    def connect_ok(msg):
        return protocol48.encode(protocol.MSG_CONNECTOK, protocol48.FLAGS_META_ON_CONNECT, msg.seq, msg.serializer_id,
                                 serpent.dumps({"handshake": "hi", "meta": {"methods": ["echo"], "oneway": [],
                                                                            "attrs": []}}))

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        replies = [(pickled(protocol.MSG_CONNECTOK), None), (connect_ok, pickled(protocol.MSG_RESULT))]
        fake = threading.Thread(target=_fake_pyro4_server, args=(listener, replies), daemon=True)
        fake.start()
        with G4.Proxy("PYRO:thing@127.0.0.1:%d" % port) as proxy:  # (serpent)
            with pytest.raises(errors.SerializeError, match="unknown serializer id"):
                proxy._pyroBind()
        with G4.Proxy("PYRO:thing@127.0.0.1:%d" % port) as proxy:
            with pytest.raises(errors.SerializeError, match="invalid serializer in response: %d" % (BASE + 4)):
                proxy.echo(1)
        fake.join(10)
    assert not target.exists()


def test_config_serializer_may_name_pickle_for_pyro4s_proxies_only(daemons, clean_config, monkeypatch):
    monkeypatch.setattr(G4.config, "SERIALIZERS_ACCEPTED", {"pickle"})
    daemon = G4.Daemon(host="127.0.0.1")
    uri = daemon.register(Thing, "thing")
    daemons.start(daemon)
    G4.config.SERIALIZER = "pickle"  # (an item Pyro4 shares with Pyro5: geopyro's config.SERIALIZER)
    with G4.Proxy(uri) as proxy:
        assert proxy.echo(1 + 2j) == 1 + 2j
        part = proxy.part()  # (the daemon makes a proxy of its own for it: that works under this config too)
        assert type(part) is G4.Proxy and part._pyroUri.object == "thing.part"
    with api.Proxy(uri) as proxy:  # (a Pyro5 proxy never pickles: protocol 502 has no pickle)
        with pytest.raises(errors.SerializeError, match="unknown serializer 'pickle'"):
            proxy.echo(1)


def test_a_proxy_that_came_from_a_peer_never_pickles():
    """A peer may send a proxy whose state names pickle: calling it must not make this side read pickles."""
    serpent = G4.util.get_serializer("serpent")
    named = {"__class__": "Pyro4.core.Proxy",
             "state": ("PYRO:cb@127.0.0.1:1", [], ["notify"], [], 0.0, None, None, 0, "pickle")}
    received = serpent.loads(serpent.dumps({"callback": named}))["callback"]
    assert type(received) is G4.Proxy and received._pyroSerializer is None
    pyro5_named = {"__class__": "Pyro5.client.Proxy", "state": ("PYRO:cb@127.0.0.1:1", [], [], [], None, "dill")}
    assert serpent.loads(serpent.dumps(pyro5_named))._pyroSerializer is None
    for name in SERIALIZERS:  # (and in a pickle from a Pyro4 peer)
        theirs = Pyro4.core.Proxy("PYRO:cb@127.0.0.1:1")
        theirs._pyroSerializer = name
        assert pickles.get(name).loads(Pyro4_util.get_serializer(name).dumps(theirs))._pyroSerializer is None
    mine = G4.Proxy("PYRO:cb@127.0.0.1:1")
    mine._pyroSerializer = "pickle"
    assert copy.copy(mine)._pyroSerializer == "pickle"  # (a copy made here keeps this side's choice)
