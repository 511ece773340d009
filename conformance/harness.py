"""Client-side harness: server subprocesses with deadlines, and the context a check runs with."""

import ctypes
import json
import os
import queue
import re
import shlex
import socket
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from . import objects, targets
from .serverproc import MARK

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0
CONTRACT_PREFIX = "conformance."  # the ids of the test objects (objects.py): a server command may lack some


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
        self._start(cmd, env, timeout)

    def _start(self, cmd, env, timeout, preexec_fn=None):
        self._stderr = tempfile.TemporaryFile()
        self._events = queue.Queue()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                                         env=subprocess_env(env), text=True, start_new_session=True,
                                         preexec_fn=preexec_fn)
        except OSError as exc:
            self._stderr.close()
            raise ServerFailed("%s: cannot start: %s" % (self.description, exc)) from exc
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.info = self.wait_event("ready", timeout)
            self._wait_accepting(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_accepting(self, deadline):
        """(server commands) Return once the server accepts connections; ours only report ready then."""

    def _read(self):
        for line in self.proc.stdout:
            event = self.parse_line(line)
            if event is not None:
                self._events.put(event)
        self._events.put(None)

    def parse_line(self, line):
        """The event a line of the server's output reports, or None."""
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK):])
            except ValueError:
                return None
        return None

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
        # the whole process group, even when its leader has exited: a child of a server command may hold stdout
        _kill_group(self.proc.pid, signal.SIGTERM)
        if self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self._reader.is_alive():  # something still holds the pipe open
            _kill_group(self.proc.pid, signal.SIGKILL)
            self._reader.join(5)
        if self.proc.stdout and not self._reader.is_alive():
            self.proc.stdout.close()
        self._stderr.close()


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:  # no such group (left already)
        pass


try:  # looked up here: the child of a fork must not import (another thread may hold the import lock)
    _PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _PRCTL = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """(in a server command's child, before exec; Linux) SIGTERM it when the harness process dies."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


URI_PATTERN = re.compile(r"PYRO:([^\s@\"'<>]+)@(\[[0-9A-Fa-f:.%\w]+\]:\d+|[\w.-]+:\d+|\./u:[^\s\"'<>]+)")


class CommandServer(ServerProcess):
    """A server-only target's server: the user's command, which prints a URI once it serves.

    The command runs as given (split like a shell would, no shell); ``{servertype}`` in it becomes
    "concurrent" or "multiplex". Of its output only the first Pyro URI counts (``PYRO:name@host:port`` or
    ``PYRO:name@./u:path``): the checks use its location, once a connection there is accepted. The rest
    of its stdout is read and dropped; its stderr is kept for failure messages. Nothing else is asked
    of the program: it only has to register the contract's objects (see the README).
    """

    def __init__(self, target, adapter, servertype="concurrent", timeout=START_TIMEOUT):
        command = adapter.SERVER_COMMAND.replace("{servertype}", servertype)
        self.description = "%s server command (%s): %s" % (target, servertype, command)
        self.objects = getattr(adapter, "OBJECTS", None)
        try:
            cmd = shlex.split(command)
        except ValueError as exc:
            raise ServerFailed("%s: cannot split the command: %s" % (self.description, exc)) from exc
        self._start(cmd, getattr(adapter, "SERVER_ENV", None), timeout, _die_with_parent if _PRCTL else None)

    def _wait_accepting(self, deadline):
        location = self.info["location"]
        while True:
            if not self.alive():
                raise ServerFailed("%s exited (code %s) after printing its URI; stderr:\n%s"
                                   % (self.description, self.proc.returncode, self.stderr_tail()))
            try:
                if location.startswith("./u:"):
                    with socket.socket(socket.AF_UNIX) as sock:
                        sock.settimeout(1.0)
                        sock.connect(location[4:])
                else:
                    host, port = location.rsplit(":", 1)
                    socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ServerFailed("%s printed %s but accepts no connection there (%s); stderr:\n%s"
                                       % (self.description, self.info["uri"], exc, self.stderr_tail())) from exc
                time.sleep(0.05)

    def parse_line(self, line):
        found = URI_PATTERN.search(line)
        if found is None:
            return None
        return {"event": "ready", "uri": found.group(0), "location": found.group(2),
                "objects": self.objects}


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
            gone = "%s exited (code %s); stderr:\n%s" % (server.description, server.proc.returncode,
                                                          server.stderr_tail())
            server.stop()
            if isinstance(server, CommandServer):  # the user's server died: say so, do not start it again
                self._failed[key] = gone
                raise ServerFailed(gone)
            server = None
        if server is None:
            try:
                if targets.is_server_only(target):
                    server = CommandServer(target, targets.adapter_module(target), servertype)
                else:
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
        self.server_only = targets.is_server_only(server_name)
        self._cleanups = []

    def _not_applicable(self, what):
        pytest.skip("%s is a server command: it offers no %s" % (self.server_name, what))

    # -- servers -------------------------------------------------------------------------
    def main(self, servertype=None):
        servertype = servertype or self.servertype
        if self.server_only and servertype not in targets.server_types_of(self.server_name):
            self._not_applicable("%s server type (put {servertype} in the command)" % servertype)
        return self.pool.get(self.server_name, "main", servertype)

    def _require_object(self, object_id, servertype):
        """(server commands) Skip as n/a when the command's server does not register ``object_id``."""
        info = self.main(servertype).info
        if info.get("objects") is None:  # not given: ask the daemon what it has
            with self.c.Proxy("PYRO:%s@%s" % (self.c.DAEMON_NAME, info["location"])) as daemon:
                info["objects"] = sorted(daemon.registered())
        if object_id.startswith(CONTRACT_PREFIX) and object_id not in info["objects"]:
            self._not_applicable("object %r (it registers %s)" % (object_id, ", ".join(info["objects"]) or "none"))

    def location(self, servertype=None):
        return self.main(servertype).info["location"]

    def uri(self, object_id, servertype=None):
        if self.server_only:
            self._require_object(object_id, servertype)
        return "PYRO:%s@%s" % (object_id, self.location(servertype))

    def proxy(self, object_id_or_uri, servertype=None, cls=None):
        uri = object_id_or_uri if ":" in object_id_or_uri else self.uri(object_id_or_uri, servertype)
        p = (cls or self.c.Proxy)(uri)
        self.on_cleanup(p._pyroRelease)
        return p

    def probe(self, servertype=None):
        if self.server_only:
            self._not_applicable("probe (the daemon-API checks run inside a server process of this package)")
        return self.proxy(objects.PROBE, servertype)

    def ns(self):
        if self.server_only:
            self._not_applicable("name server")
        server = self.pool.get(self.server_name, "ns", "concurrent")
        host, port = server.info["location"].rsplit(":", 1)
        return {"host": host, "port": int(port), "uri": server.info["uri"]}

    def ns_proxy(self):
        info = self.ns()
        ns = self.c.locate_ns(info["host"], info["port"])
        self.on_cleanup(ns._pyroRelease)
        return ns

    def scenario(self, scenario, servertype="concurrent", params=None, env=None):
        if self.server_only:
            self._not_applicable("%r server (a check that needs a server of its own kind)" % scenario)
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
