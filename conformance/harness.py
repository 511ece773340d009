"""Client-side harness: server subprocesses with deadlines, and the context a check runs with."""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from . import objects
from .serverproc import MARK

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0


class ServerFailed(AssertionError):
    pass


def subprocess_env(extra=None):
    """The environment for a server: no inherited PYRO_* settings, our package importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """One server subprocess; ``info`` holds its ready event (location, uri, ...)."""

    def __init__(self, target, scenario, servertype="concurrent", params=None, env=None, timeout=START_TIMEOUT):
        self.description = "%s server (%s, %s)" % (target, scenario, servertype)
        cmd = [sys.executable, "-m", "conformance.serverproc", "--target", target, "--scenario", scenario,
               "--servertype", servertype, "--params", json.dumps(params or {})]
        self._stderr = tempfile.TemporaryFile()
        self._events = queue.Queue()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=subprocess_env(env), text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.info = self.wait_event("ready", timeout)
        except BaseException:
            self.stop()
            raise

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(MARK):
                try:
                    self._events.put(json.loads(line[len(MARK):]))
                except ValueError:
                    pass
        self._events.put(None)

    def stderr_tail(self, limit=2000):
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (ValueError, OSError):
            return ""
        return text[-limit:]

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerFailed("%s: no %r event within %.1fs; stderr:\n%s"
                                   % (self.description, name, timeout, self.stderr_tail()))
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                self._events.put(None)
                self.proc.wait(5)
                raise ServerFailed("%s exited (code %s) before the %r event; stderr:\n%s"
                                   % (self.description, self.proc.returncode, name, self.stderr_tail()))
            if event.get("event") == name:
                return event

    def wait_exit(self, timeout):
        """The exit code, or None if the process is still running at the deadline."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()


class Pool:
    """Shared servers of one pytest process: started on first use, stopped at session end."""

    def __init__(self):
        self._servers = {}
        self._failed = {}

    def get(self, target, scenario, servertype="concurrent"):
        key = (target, scenario, servertype)
        if key in self._failed:
            raise ServerFailed("shared %s %s server (%s) failed to start earlier: %s"
                               % (target, scenario, servertype, self._failed[key]))
        server = self._servers.get(key)
        if server is not None and not server.alive():
            server.stop()
            server = None
        if server is None:
            try:
                server = ServerProcess(target, scenario, servertype)
            except ServerFailed as exc:
                self._failed[key] = str(exc)
                raise
            self._servers[key] = server
        return server

    def close(self):
        for server in self._servers.values():
            server.stop()
        self._servers.clear()


def poll(predicate, timeout, interval=0.02):
    """Call predicate until it returns a truthy value or the deadline passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Ctx:
    """What a check gets: the client target, the server target's servers, cleanup."""

    def __init__(self, pool, server_name, client_target, servertype="concurrent"):
        self.pool = pool
        self.server_name = server_name
        self.c = client_target
        self.servertype = servertype
        self._cleanups = []

    # -- servers -------------------------------------------------------------------------
    def main(self, servertype=None):
        return self.pool.get(self.server_name, "main", servertype or self.servertype)

    def location(self, servertype=None):
        return self.main(servertype).info["location"]

    def uri(self, object_id, servertype=None):
        return "PYRO:%s@%s" % (object_id, self.location(servertype))

    def proxy(self, object_id_or_uri, servertype=None, cls=None):
        uri = object_id_or_uri if ":" in object_id_or_uri else self.uri(object_id_or_uri, servertype)
        p = (cls or self.c.Proxy)(uri)
        self.on_cleanup(p._pyroRelease)
        return p

    def probe(self, servertype=None):
        return self.proxy(objects.PROBE, servertype)

    def ns(self):
        server = self.pool.get(self.server_name, "ns", "concurrent")
        host, port = server.info["location"].rsplit(":", 1)
        return {"host": host, "port": int(port), "uri": server.info["uri"]}

    def ns_proxy(self):
        info = self.ns()
        ns = self.c.locate_ns(info["host"], info["port"])
        self.on_cleanup(ns._pyroRelease)
        return ns

    def scenario(self, scenario, servertype="concurrent", params=None, env=None):
        server = ServerProcess(self.server_name, scenario, servertype, params, env)
        self.on_cleanup(server.stop)
        return server

    def client_daemon(self):
        """A daemon of the client target running in a thread of this process."""
        daemon = self.c.Daemon(host="127.0.0.1", port=0)
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()

        def stop():
            daemon.shutdown()
            thread.join(10)
            daemon.close()
        self.on_cleanup(stop)
        return daemon

    def token(self):
        return uuid.uuid4().hex

    # -- lifecycle -------------------------------------------------------------------------
    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def cleanup(self):
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - cleanup must go on
                errors.append(exc)
        return errors
