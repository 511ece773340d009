"""TLS with Pyro5's SSL_* config items: one- and two-way, both server types, and Pyro5 on the other end.

Certificates are made at run time (``certs.make_certs``): a CA, a server certificate for 127.0.0.1 and
localhost with a password-protected key, a client certificate, and a second ("rogue") CA nobody trusts.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import time

import Pyro5.api
import Pyro5.errors
import Pyro5.socketutil
import pytest

import geopyro
import geopyro.api as api
from certs import (CLIENT_KEY_PASSWORD, ROOT, STARTUP_DEADLINE, ServerProcess, _read_line, client_tls_config,
                   make_certs, server_tls_config)
from geopyro.errors import CommunicationError
from support import wait_until


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def configure(config, items):
    for key, value in items.items():
        setattr(config, key, value)


class Made:
    count = 0


@api.expose
class Secure:
    def __init__(self):
        Made.count += 1

    def ping(self):
        return "pong"

    def peer_cn(self):
        cert = api.current_context.client.getpeercert()
        return dict(item[0] for item in cert["subject"])["commonName"] if cert else None


def tls_daemon(daemons, config, certs, require_client_cert=True, **extra):
    """A running daemon with TLS on; the client side of ``config`` is reset afterwards."""
    configure(config, server_tls_config(certs, require_client_cert))
    configure(config, extra)
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Secure, "secure")
    daemons.start(daemon)
    config.reset(use_environment=False)
    return daemon, uri


def test_two_way_tls(daemons, servertype, clean_config, certs):
    daemon, uri = tls_daemon(daemons, clean_config, certs)
    configure(clean_config, client_tls_config(certs))
    with api.Proxy(uri) as proxy:
        assert proxy.ping() == "pong"
        assert proxy.peer_cn() == "geopyro test client"
        assert proxy._pyroConnection.sock.getpeercert()["subject"]  # the server certificate, verified
        assert proxy._pyroConnection.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_client_key_with_password(daemons, servertype, clean_config, certs):
    _, uri = tls_daemon(daemons, clean_config, certs)
    configure(clean_config, client_tls_config(certs))
    clean_config.SSL_CLIENTKEY = certs["client_pw.key"]
    clean_config.SSL_CLIENTKEYPASSWD = CLIENT_KEY_PASSWORD
    with api.Proxy(uri) as proxy:
        assert proxy.peer_cn() == "geopyro test client"
    clean_config.SSL_CLIENTKEYPASSWD = "wrong"
    with pytest.raises((CommunicationError, ssl.SSLError)):
        api.Proxy(uri).ping()


def test_one_way_tls(daemons, servertype, clean_config, certs):
    _, uri = tls_daemon(daemons, clean_config, certs, require_client_cert=False)
    configure(clean_config, client_tls_config(certs, client=None))
    with api.Proxy(uri) as proxy:
        assert proxy.ping() == "pong"
        assert proxy.peer_cn() is None


def test_wrong_server_key_password_is_a_clear_error(servertype, clean_config, certs):
    configure(clean_config, server_tls_config(certs))
    clean_config.SSL_SERVERKEYPASSWD = "not the password"
    with pytest.raises(ssl.SSLError):
        api.Daemon(host="127.0.0.1")


def attempt_plain(location):
    host, port = location.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"PYRO" + b"\0" * 60)  # a plain-text client talking to a TLS port
        try:
            return sock.recv(100) == b""
        except ConnectionResetError:
            return True


REFUSED = {
    "no client certificate": lambda certs: client_tls_config(certs, client=None),
    "certificate of another CA": lambda certs: client_tls_config(certs, client="rogue_client"),
    "client does not trust the server": lambda certs: client_tls_config(certs, cacerts="rogue_ca.pem"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_clients_reach_nothing(daemons, servertype, clean_config, certs, case):
    daemon, uri = tls_daemon(daemons, clean_config, certs)
    configure(clean_config, client_tls_config(certs))
    good = api.Proxy(uri)
    assert good.ping() == "pong"
    made = Made.count
    baseline = len(daemon.sockets)
    configure(clean_config, client_tls_config(certs, client=None))
    configure(clean_config, REFUSED[case](certs))
    for _ in range(5):
        with pytest.raises(CommunicationError) as refused:
            api.Proxy(uri).ping()
        text = str(refused.value)
        assert "SSL" in text or "EOF" in text or "connection" in text, text
        assert "certificate" in text.lower() or "CERTIFICATE" in text, "the error should point at certificates: " + text
        assert good.ping() == "pong"  # the connected client keeps being served
    assert attempt_plain(daemon.locationStr)
    assert Made.count == made  # no session object was made for anyone refused
    assert wait_until(lambda: len(daemon.sockets) == baseline)
    configure(clean_config, client_tls_config(certs))
    with api.Proxy(uri) as other:
        assert other.ping() == "pong"
    assert good.ping() == "pong"
    good._pyroRelease()


class DenyingDaemon(api.Daemon):
    def validateHandshake(self, conn, data):
        if data != "secret word":
            raise ValueError("access denied")
        return "ok"


def test_denied_handshake_over_tls(daemons, servertype, clean_config, certs):
    configure(clean_config, server_tls_config(certs))
    daemon = DenyingDaemon(host="127.0.0.1")
    uri = daemon.register(Secure, "secure")
    daemons.start(daemon)
    clean_config.reset(use_environment=False)
    configure(clean_config, client_tls_config(certs))
    admitted = api.Proxy(uri)
    admitted._pyroHandshake = "secret word"
    assert admitted.ping() == "pong"
    made = Made.count
    for _ in range(3):
        with api.Proxy(uri) as denied:  # a valid certificate, but the daemon says no
            with pytest.raises(CommunicationError, match="rejected: access denied"):
                denied.ping()
        assert admitted.ping() == "pong"
    assert Made.count == made
    admitted._pyroRelease()


def test_refused_client_sees_a_tls_error(daemons, servertype, clean_config, certs):
    """The error a client without certificate gets names the TLS failure (or the closed connection)."""
    _, uri = tls_daemon(daemons, clean_config, certs)
    configure(clean_config, client_tls_config(certs, cacerts="rogue_ca.pem"))
    with pytest.raises(CommunicationError, match="CERTIFICATE_VERIFY_FAILED"):
        api.Proxy(uri).ping()


def test_silent_and_stalled_tls_handshakes_do_not_stall_the_server(daemons, servertype, clean_config, certs):
    """Peers that never finish the TLS handshake hold up nobody and are dropped after COMMTIMEOUT."""
    daemon, uri = tls_daemon(daemons, clean_config, certs, COMMTIMEOUT=1.0)
    configure(clean_config, client_tls_config(certs))
    host, port = daemon.locationStr.rsplit(":", 1)
    baseline = len(daemon.sockets)
    stalled = []
    try:
        for number in range(60):
            sock = socket.create_connection((host, int(port)))
            if number % 2:
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
            stalled.append(sock)
        with api.Proxy(uri) as proxy:
            proxy._pyroTimeout = 5.0  # a server stalled by the handshakes would take 60 x COMMTIMEOUT
            for _ in range(5):
                assert proxy.ping() == "pong"
            for sock in stalled:
                sock.settimeout(15)
                try:
                    assert sock.recv(100) == b""
                except ConnectionResetError:
                    pass
            assert proxy.ping() == "pong"
        assert wait_until(lambda: len(daemon.sockets) == baseline)
    finally:
        for sock in stalled:
            sock.close()


def test_tls_server_subprocess_both_types_with_geopyro_and_pyro5_clients(tmp_path, servertype, clean_config, certs,
                                                                         pyro5_client_tls):
    """Each peer in its own process: a geopyro TLS daemon subprocess, geopyro and Pyro5 clients here."""
    config = dict(server_tls_config(certs), SERVERTYPE=servertype, COMMTIMEOUT=5.0)
    with ServerProcess(tmp_path, config) as server:
        configure(clean_config, client_tls_config(certs))
        with api.Proxy(server.info["service"]) as proxy:
            assert proxy.peer_cn() == "geopyro test client"
            assert proxy.echo([1, "two", {"three": 3.0}]) == [1, "two", {"three": 3.0}]
        pyro5_client_tls(client_tls_config(certs))
        with Pyro5.api.Proxy(server.info["service"]) as proxy:
            assert proxy.peer_cn() == "geopyro test client"
            assert proxy.echo([1, "two"]) == [1, "two"]
            assert proxy.stats()["servertype"] == servertype
        pyro5_client_tls(client_tls_config(certs, client=None))
        with pytest.raises(Pyro5.errors.CommunicationError):
            Pyro5.api.Proxy(server.info["service"]).ping()
        pyro5_client_tls(client_tls_config(certs, client="rogue_client"))
        with pytest.raises(Pyro5.errors.CommunicationError):
            Pyro5.api.Proxy(server.info["service"]).ping()
        assert server.alive
        assert "Traceback" not in server.stderr()


PYRO5_SERVER = r'''
import json, sys
import Pyro5.api
options = json.loads(sys.argv[1])
for key, value in options.items():
    setattr(Pyro5.api.config, key, value)


@Pyro5.api.expose
class Service:
    def ping(self):
        return "pong"

    def echo(self, value):
        return value

    def peer_cn(self):
        cert = Pyro5.api.current_context.client.getpeercert()
        return dict(item[0] for item in cert["subject"])["commonName"] if cert else None


daemon = Pyro5.api.Daemon(host="127.0.0.1")
print(json.dumps({"service": str(daemon.register(Service(), "service"))}), flush=True)
daemon.requestLoop()
'''


@pytest.fixture
def pyro5_client_tls():
    """Set this process's Pyro5 client TLS items (Pyro5 caches its client context: reset it each time)."""
    def apply(items):
        Pyro5.api.config.reset(use_environment=False)
        for key, value in items.items():
            setattr(Pyro5.api.config, key, value)
        setattr(Pyro5.socketutil, "__ssl_client_context", None)
    yield apply
    Pyro5.api.config.reset(use_environment=False)
    setattr(Pyro5.socketutil, "__ssl_client_context", None)


@pytest.fixture(scope="module")
def pyro5_tls_server(tmp_path_factory, certs):
    """A Pyro5 daemon with two-way TLS, in its own process."""
    script = tmp_path_factory.mktemp("pyro5tls") / "pyro5_server.py"
    script.write_text(PYRO5_SERVER)
    stderr_path = str(script) + ".stderr"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), json.dumps(server_tls_config(certs))],
                                stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env, text=True,
                                cwd=ROOT)
    try:
        yield json.loads(_read_line(proc, time.monotonic() + STARTUP_DEADLINE, stderr_path))
        assert proc.poll() is None, "the Pyro5 TLS server died"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_geopyro_proxy_to_pyro5_tls_server(clean_config, certs, pyro5_tls_server):
    uri = pyro5_tls_server["service"]
    configure(clean_config, client_tls_config(certs))
    with api.Proxy(uri) as proxy:
        assert proxy.ping() == "pong"
        assert proxy.peer_cn() == "geopyro test client"
        assert proxy.echo({"a": [1, 2.5, None]}) == {"a": [1, 2.5, None]}
    clean_config.SSL_CLIENTKEY = certs["client_pw.key"]
    clean_config.SSL_CLIENTKEYPASSWD = CLIENT_KEY_PASSWORD
    with api.Proxy(uri) as proxy:
        assert proxy.peer_cn() == "geopyro test client"
    for refused in (client_tls_config(certs, client=None), client_tls_config(certs, client="rogue_client"),
                    client_tls_config(certs, cacerts="rogue_ca.pem")):
        clean_config.reset(use_environment=False)
        configure(clean_config, refused)
        with pytest.raises(CommunicationError):
            api.Proxy(uri).ping()
    clean_config.reset(use_environment=False)
    with pytest.raises(CommunicationError):  # plain text to a TLS port
        api.Proxy(uri).ping()
    configure(clean_config, client_tls_config(certs))
    with api.Proxy(uri) as proxy:
        assert proxy.ping() == "pong"  # still serving


def test_pyro5_client_to_geopyro_rejects_rogue_server(tmp_path, servertype, certs, pyro5_client_tls):
    """A Pyro5 client that trusts our CA refuses a geopyro server presenting another CA's certificate."""
    config = dict(server_tls_config(certs), SERVERTYPE=servertype, SSL_SERVERCERT=certs["rogue_server.pem"],
                  SSL_SERVERKEY=certs["rogue_server.key"], SSL_SERVERKEYPASSWD="")
    with ServerProcess(tmp_path, config) as server:
        pyro5_client_tls(client_tls_config(certs))
        with pytest.raises(Pyro5.errors.CommunicationError):
            Pyro5.api.Proxy(server.info["service"]).ping()
        assert server.alive


def test_geopyro_config_items_match_pyro5():
    names = [name for name in Pyro5.api.config.as_dict() if name.startswith("SSL")]
    for name in names:
        assert getattr(geopyro.config, name) == getattr(Pyro5.api.config, name), name
    assert sorted(names) == sorted(n for n in geopyro.config.as_dict() if n.startswith("SSL"))
