"""Test helpers: throwaway TLS certificates, a raw wire client, and a geopyro daemon in a subprocess.

Certificates are made at run time with the ``openssl`` command line (tests that need them skip when it
is missing); no key is ever committed. ``make_certs(directory)`` writes:

* ``ca.pem``/``ca.key``: a test CA;
* ``server.pem``/``server.key``: a server certificate for 127.0.0.1 and localhost, signed by the CA; the key
  is encrypted with ``SERVER_KEY_PASSWORD``;
* ``client.pem``/``client.key``: a client certificate signed by the CA (key without password);
* ``client_pw.key``: the client key again, encrypted with ``CLIENT_KEY_PASSWORD``;
* ``rogue_ca.pem``, ``rogue_client.pem``/``rogue_client.key``, ``rogue_server.pem``/``rogue_server.key``:
  certificates from another CA, which nobody trusts.
"""

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import support
from geopyro import protocol, serializers

ROOT = support.ROOT
SERVER_KEY_PASSWORD = "s3rver-key-pw"
CLIENT_KEY_PASSWORD = "cl1ent-key-pw"
STARTUP_DEADLINE = 30.0
_serial = itertools.count()


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _ec_key(name, cwd, password=None):
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".plain", cwd=cwd)
    args = ["pkey", "-in", name + ".plain", "-out", name]
    if password:
        args += ["-aes256", "-passout", "pass:" + password]
    _openssl(*args, cwd=cwd)
    os.remove(os.path.join(cwd, name + ".plain"))


def _ca(prefix, cwd):
    _ec_key(prefix + "ca.key", cwd)
    _openssl("req", "-x509", "-new", "-key", prefix + "ca.key", "-days", "2", "-subj", "/CN=%sgeopyro test CA" % prefix,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", prefix + "ca.pem", cwd=cwd)


def _leaf(name, ca_prefix, common_name, extensions, cwd, password=None):
    _ec_key(name + ".key", cwd, password)
    with open(os.path.join(cwd, name + ".ext"), "w") as ext:
        ext.write(extensions)
    passin = ["-passin", "pass:" + password] if password else []
    _openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + common_name, "-out", name + ".csr", *passin,
             cwd=cwd)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca_prefix + "ca.pem", "-CAkey", ca_prefix + "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem", cwd=cwd)


SERVER_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
              "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def make_certs(directory):
    """Write the test CA and certificates into ``directory``; return {name: absolute path}."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line tool is needed to make test certificates")
    cwd = str(directory)
    _ca("", cwd)
    _ca("rogue_", cwd)
    _leaf("server", "", "geopyro test server", SERVER_EXT, cwd, SERVER_KEY_PASSWORD)
    _leaf("client", "", "geopyro test client", CLIENT_EXT, cwd)
    _openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:" + CLIENT_KEY_PASSWORD, "-out",
             "client_pw.key", cwd=cwd)
    _leaf("rogue_client", "rogue_", "rogue client", CLIENT_EXT, cwd)
    _leaf("rogue_server", "rogue_", "rogue server", SERVER_EXT, cwd)
    names = ["ca.pem", "server.pem", "server.key", "client.pem", "client.key", "client_pw.key", "rogue_ca.pem",
             "rogue_client.pem", "rogue_client.key", "rogue_server.pem", "rogue_server.key"]
    return {name: os.path.join(cwd, name) for name in names}


def server_tls_config(certs, require_client_cert=True):
    """The SSL_* config items of a server using the test server certificate."""
    return {"SSL": True, "SSL_SERVERCERT": certs["server.pem"], "SSL_SERVERKEY": certs["server.key"],
            "SSL_SERVERKEYPASSWD": SERVER_KEY_PASSWORD, "SSL_CACERTS": certs["ca.pem"],
            "SSL_REQUIRECLIENTCERT": require_client_cert}


def client_tls_config(certs, client="client", cacerts="ca.pem"):
    """The SSL_* config items of a client; ``client=None`` for one without a certificate."""
    items = {"SSL": True, "SSL_CACERTS": certs[cacerts], "SSL_CLIENTCERT": "", "SSL_CLIENTKEY": "",
             "SSL_CLIENTKEYPASSWD": ""}
    if client:
        items.update(SSL_CLIENTCERT=certs[client + ".pem"], SSL_CLIENTKEY=certs[client + ".key"])
    return items


# --- a raw wire client, for saying things a Proxy never would ---

class RawClient:
    """A plain blocking socket speaking protocol 502 by hand (gevent-cooperative when the test is patched)."""

    def __init__(self, location, timeout=10.0, serializer="serpent"):
        host, port = location.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.serializer = serializers.get_serializer(serializer)
        self.reader = protocol.MessageReader(1024 * 1024 * 1024)
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def receive(self):
        """The next message, or None when the server closed the connection."""
        msg = self.reader.next_message()
        while msg is None:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.reader.feed(chunk)
            msg = self.reader.next_message()
        return msg

    def closed_by_server(self):
        """True when the server closes the connection (after any error reply it may have sent first)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True

    def connect(self, object_id="Pyro.Daemon", handshake="hello"):
        payload = self.serializer.dumps({"handshake": handshake, "object": object_id})
        self.send(protocol.encode(protocol.MSG_CONNECT, 0, 0, self.serializer.serializer_id, payload))
        msg = self.receive()
        assert msg is not None and msg.type == protocol.MSG_CONNECTOK, msg
        return self.serializer.loads(msg.data)

    def invoke_bytes(self, payload, flags=0, serializer_id=None, annotations=None):
        self.seq = (self.seq + 1) & 0xFFFF
        sid = self.serializer.serializer_id if serializer_id is None else serializer_id
        return protocol.encode(protocol.MSG_INVOKE, flags, self.seq, sid, payload, annotations)

    def call(self, object_id, method, vargs=(), kwargs=None, flags=0):
        """Send one INVOKE; return (is_exception, loaded result), or None when the server closed."""
        self.send(self.invoke_bytes(self.serializer.dumpsCall(object_id, method, list(vargs), kwargs or {}), flags))
        if flags & protocol.FLAGS_ONEWAY:
            return None
        return self.receive_result()

    def receive_result(self):
        """The next reply as (is_exception, loaded result), or None when the server closed."""
        msg = self.receive()
        if msg is None:
            return None
        loaded = serializers.serializers_by_id[msg.serializer_id].loads(msg.data)
        return bool(msg.flags & protocol.FLAGS_EXCEPTION), loaded


# --- a geopyro daemon in a subprocess, with a service that reports on the server's health ---

SERVER_SCRIPT = r'''
import gc, json, os, resource, sys, threading, weakref
sys.path.insert(0, sys.argv[1])
options = json.loads(sys.argv[2])
needed = options.get("nofile", 0)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if needed and soft != resource.RLIM_INFINITY and soft < needed:
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard), hard))
if options.get("nofile_limit"):  # few descriptors: accept() runs out
    resource.setrlimit(resource.RLIMIT_NOFILE, (options["nofile_limit"], hard))
if options.get("tracemalloc"):
    import tracemalloc
    tracemalloc.start()

import logging
logging.basicConfig(level=logging.WARNING)  # a server that shows its warnings (geopyro is silent otherwise)

import gevent
import greenlet
import geopyro.api as api

for key, value in options.get("config", {}).items():
    setattr(api.config, key, value)

live_sessions = weakref.WeakSet()
counters = {"oneway_started": 0, "oneway_done": 0, "oneway_max_running": 0, "sessions_made": 0}


LOOP_ROOT = greenlet.getcurrent()  # the main greenlet of the thread that runs the request loop


def on_loop(glet):
    """True for a greenlet of the request loop's thread (pool threads have greenlets of their own)."""
    while glet.parent is not None:
        glet = glet.parent
    return glet is LOOP_ROOT


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@api.expose
class Service:
    def ping(self):
        return "pong"

    def echo(self, value):
        return value

    def text(self, size):
        return "x" * size

    @api.cooperative  # gevent code: runs inline, as many at once as clients ask
    def slow(self, seconds):
        gevent.sleep(seconds)
        return seconds

    def burn(self, seconds):
        """Keep the CPU busy without yielding (a long call that blocks a multiplex server's loop)."""
        import time
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return seconds

    @api.oneway
    @api.cooperative
    def oneway_slow(self, seconds):
        counters["oneway_started"] += 1
        running = counters["oneway_started"] - counters["oneway_done"]
        counters["oneway_max_running"] = max(counters["oneway_max_running"], running)
        gevent.sleep(seconds)
        counters["oneway_done"] += 1

    def peer_cn(self):
        cert = api.current_context.client.getpeercert()
        if not cert:
            return None
        return dict(item[0] for item in cert["subject"])["commonName"]

    @api.cooperative  # on the hub: counting in a pool thread races the loop's own tables
    def stats(self):
        gc.collect()
        result = {"fds": len(os.listdir("/proc/self/fd")), "rss_kib": rss_kib(),
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and on_loop(o)),
                  "threads": len(os.listdir("/proc/self/task")),
                  # each pool thread that has lingered on a connection keeps a wake pipe (2 fds) while it lives
                  "wake_pipes": sum(1 for o in gc.get_objects() if type(o).__name__ == "_Lingerer"),
                  "sessions": len(live_sessions), "sockets": len(daemon.sockets),
                  "streams": len(daemon.streaming_responses), "servertype": str(daemon.transportServer)}
        result.update(counters)
        if options.get("tracemalloc"):
            import tracemalloc
            result["traced_peak"] = tracemalloc.get_traced_memory()[1]
        return result

    def reset_peak(self):
        if options.get("tracemalloc"):
            import tracemalloc
            tracemalloc.reset_peak()


@api.expose
@api.behavior(instance_mode="session")
class Session:
    def __init__(self):
        live_sessions.add(self)
        counters["sessions_made"] += 1

    def hello(self):
        return id(self)

    @api.cooperative
    def slow(self, seconds):
        gevent.sleep(seconds)
        return seconds

    def numbers(self, count):
        return iter(range(count))


daemon = api.Daemon(host="127.0.0.1", port=options.get("port", 0))
if options.get("hmac_key"):  # (it then serves only Pyro4's protocol 48, which signs messages)
    daemon._pyroHmacKey = options["hmac_key"]
service_uri = daemon.register(Service(), "service")
session_uri = daemon.register(Session, "session")
print(json.dumps({"service": str(service_uri), "session": str(session_uri), "location": daemon.locationStr,
                  "pid": os.getpid()}), flush=True)
daemon.requestLoop()
'''


def _read_line(proc, deadline, stderr_path):
    """The first stdout line of a child whose stderr goes to ``stderr_path``; fails the test if none comes."""
    line = support.read_line(proc, deadline)
    if line is None:
        proc.communicate(timeout=10)
        with open(stderr_path) as err:
            pytest.fail("server subprocess did not start (exit code %s); stderr:\n%s"
                        % (proc.returncode, err.read()[-4000:]))
    return line


class ServerProcess:
    """A geopyro daemon in its own process; ``info`` holds its URIs, location and pid."""

    def __init__(self, directory, config=None, port=0, nofile=0, tracemalloc=False, nofile_limit=0, hmac_key=None):
        script = os.path.join(str(directory), "geopyro_server.py")
        with open(script, "w") as out:
            out.write(SERVER_SCRIPT)
        options = {"config": config or {}, "port": port, "nofile": nofile, "tracemalloc": tracemalloc,
                   "nofile_limit": nofile_limit, "hmac_key": hmac_key}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYRO_")}
        # stderr goes to a file: a server logging thousands of warnings must never block on a full pipe
        self.stderr_path = os.path.join(str(directory), "server-stderr-%d.txt" % next(_serial))
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, script, ROOT, json.dumps(options)], stdout=subprocess.PIPE,
                                         stderr=stderr, stdin=subprocess.DEVNULL, env=env, text=True)
        self.info = json.loads(_read_line(self.proc, time.monotonic() + STARTUP_DEADLINE, self.stderr_path))
        self.location = self.info["location"]

    @property
    def alive(self):
        return self.proc.poll() is None

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stderr(self):
        with open(self.stderr_path) as err:
            return err.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


class Watchdog:
    """A well-behaved client in its own thread, calling ``echo`` over and over; records every failure.

    ``progressing()`` waits until it has completed a few more calls, proving the server still serves it now.
    """

    def __init__(self, uri, pause=0.002, protocol=None, hmac_key=None):
        import threading
        self.uri = uri
        self._protocol, self._hmac_key = protocol, hmac_key  # (48 and a key: it calls as a Pyro4 client does)
        self.calls = 0
        self.failures = []
        self.worst = 0.0  # the longest call since start() or mark(), in seconds
        self._pause = pause
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watchdog")

    def _run(self):
        from geopyro.api import Proxy
        number = 0
        try:
            with Proxy(self.uri) as proxy:
                proxy._pyroTimeout = 20.0
                proxy._pyroProtocol, proxy._pyroHmacKey = self._protocol, self._hmac_key
                proxy._pyroBind()
                self._started.set()
                while not self._stop.is_set():
                    number += 1
                    started = time.monotonic()
                    result = proxy.echo(number)
                    self.worst = max(self.worst, time.monotonic() - started)
                    if result != number:
                        raise AssertionError("echo(%d) returned %r" % (number, result))
                    self.calls += 1
                    self._stop.wait(self._pause)
        except Exception as exc:  # noqa: BLE001 - every failure of the well-behaved client is recorded
            self.failures.append(repr(exc))
        finally:
            self._started.set()

    def start(self):
        self._thread.start()
        self._started.wait(STARTUP_DEADLINE)
        assert not self.failures, self.failures
        return self

    def mark(self):
        """Start measuring ``worst`` afresh (after a few calls, so that none started before counts)."""
        self.progressing(2)
        self.worst = 0.0

    def progressing(self, calls=3, timeout=20.0):
        """Assert that the well-behaved client completes ``calls`` more calls (within a hang guard)."""
        from support import wait_until
        target = self.calls + calls
        assert wait_until(lambda: self.calls >= target or self.failures, timeout) and not self.failures, \
            "well-behaved client: %d calls, failures %s" % (self.calls, self.failures)

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the well-behaved client hangs"
        assert not self.failures, "well-behaved client failed: %s" % self.failures
        return self.calls
