"""One service in several processes on one port: every core of a host.

A gevent server runs on one core. ``geopyro-serve MODULE:OBJECT --workers N``
(or ``serve(objects, workers=N)``) starts an arbiter that binds the port and
N worker processes that each run a daemon with its own hub. The arbiter holds
the listening sockets and never accepts: with SO_REUSEPORT each worker slot
has a socket of its own on the port (the kernel spreads new connections over
them), elsewhere all workers share one socket. Because the arbiter keeps
them, a connection that arrives while a worker restarts waits in that
socket's queue for the next worker instead of being refused.

- Every worker registers the object under the same id, so the service has
  one URI; the arbiter registers that URI in the name server (``--ns``).
- A connection stays with the worker that accepted it, and so do its session
  instances. ``single`` instances are one per worker: state that all clients
  must share belongs in a store the workers share (a database, a name-server
  registered service of its own), not in the object.
- A worker that dies is restarted. Ctrl-C or SIGTERM stops the workers (each
  finishes the calls in progress) and then the arbiter. SIGHUP replaces the
  workers one at a time: a new worker is started on the slot's socket and is
  serving before the old one stops accepting, so no connection is refused;
  the old one's clients reconnect (``config.MAX_RETRIES``) to the new ones.
- ``geopyro-serve`` starts each worker as a new interpreter that imports
  MODULE afresh (so SIGHUP also loads new code); ``serve(..., workers=N)``
  forks workers from the calling program, which already holds its objects.
"""

import argparse
import contextlib
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time

log = logging.getLogger("geopyro.workers")

__all__ = ["Arbiter", "main", "serve_forked"]

READY_TIMEOUT = 60.0  # seconds a new worker may take to import its module and start listening
STOP_TIMEOUT = 15.0  # seconds a stopping worker gets to finish its calls before it is killed
RESTART_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)  # pauses before restarting a worker that keeps dying soon after start
STABLE_AFTER = 10.0  # a worker that ran this long restarts without a pause
BACKLOG = 1024
RETIRE_DRAIN = 1.0  # seconds a stopping worker keeps serving the connections it has before it closes them


def cpu_count():
    """The cores this process may use (``--workers 0``)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def listening_sockets(host, port, slots, reuseport=None):
    """Bind the service's port: one socket per worker slot with SO_REUSEPORT (``reuseport`` None: on Linux,
    whose kernel spreads new connections over them), else one socket for all. Returns (sockets, port)."""
    if reuseport is None:  # (only Linux spreads connections over SO_REUSEPORT sockets; elsewhere one gets all)
        reuseport = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT") and slots > 1
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for _ in range(slots if reuseport else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # (port 0: the first bind picks it, the others share it)
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets, port


class _Worker:
    """One worker process and the slot (listening socket) it serves."""

    def __init__(self, slot, process):
        self.slot = slot
        self.process = process
        self.started = time.monotonic()
        self.retiring = False

    @property
    def pid(self):
        return self.process.pid


class _SpawnedProcess:
    """A worker started as ``python -m geopyro.workers --worker ...`` (Popen, with the arbiter's pipe on its stdin:
    when the arbiter dies, the worker sees the pipe close and stops)."""

    def __init__(self, argv, listen_fd, status_fd):
        self._popen = subprocess.Popen(argv, stdin=subprocess.PIPE, pass_fds=(listen_fd, status_fd),
                                       start_new_session=True)
        self.pid = self._popen.pid

    def poll(self):
        return self._popen.poll()

    def send_signal(self, signum):
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signum)

    def wait(self, timeout):
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        with contextlib.suppress(OSError):
            self._popen.stdin.close()


class _ForkedProcess:
    """A worker forked from the arbiter (``serve(..., workers=N)``); ``run`` is what the child does."""

    def __init__(self, run, close_in_child=()):
        parent_end, child_end = os.pipe()  # the child watches it: the arbiter gone, the pipe closes
        pid = os.fork()
        if pid == 0:
            os.close(child_end)
            for fd in close_in_child:  # (the other workers' lifelines, the arbiter's wake pipe)
                with contextlib.suppress(OSError):
                    os.close(fd)
            code = 1
            try:
                os.setsid()
                code = run(parent_end)
            finally:
                os._exit(code or 0)
        os.close(parent_end)
        self._lifeline = child_end
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
                        else (status >> 8 if os.WIFEXITED(status) else -os.WTERMSIG(status))
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:  # (never a pid that may have been given to another process since)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.returncode

    def close(self):
        with contextlib.suppress(OSError):
            os.close(self._lifeline)


class WorkerFailed(Exception):
    """A worker could not start (its module failed to import, its object is not found, ...)."""


class Arbiter:
    """Starts, watches, restarts and stops the workers of one service.

    ``start_process(slot_socket, status_fd)`` starts one worker on a listening socket; the worker writes one
    line of JSON to ``status_fd`` when it serves (``{"uri": ...}``) or cannot (``{"error": ...}``).
    """

    def __init__(self, sockets, workers, start_process, on_ready=None, stop_timeout=STOP_TIMEOUT):
        self.sockets = sockets
        self.count = workers
        self._start_process = start_process
        self._on_ready = on_ready
        self._stop_timeout = stop_timeout
        self.workers = {}  # pid -> _Worker
        self.uri = None
        self._deaths = {}  # slot -> how many times in a row its worker died soon after starting, or failed to
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._vacant = {}  # slot -> when to try again to start its worker (its last start failed)
        self._signals = []

    # --- one worker ---

    def _socket_for(self, slot):
        return self.sockets[slot % len(self.sockets)]

    def spawn(self, slot):
        """Start a worker on ``slot`` and wait until it serves; WorkerFailed if it cannot."""
        status_r, status_w = os.pipe()
        try:
            process = self._start_process(self._socket_for(slot), status_w)
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        worker = _Worker(slot, process)
        try:
            status = self._read_status(status_r, process)
        finally:
            os.close(status_r)
        if "error" in status:
            self._reap(worker, signal.SIGKILL)
            raise WorkerFailed(status["error"])
        self.workers[process.pid] = worker
        if self.uri is None:
            self.uri = status.get("uri")
            if self._on_ready is not None:
                self._on_ready(self.uri)
        log.info("worker %d (slot %d) serving", process.pid, slot)
        return worker

    def _read_status(self, status_r, process):
        deadline = time.monotonic() + READY_TIMEOUT
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"error": "the worker did not start within %d s" % READY_TIMEOUT}
            ready, _, _ = select.select([status_r], [], [], min(remaining, 0.5))
            if self._stopping():
                return {"error": "stopped while the worker was starting"}
            if ready:
                chunk = os.read(status_r, 65536)
                if not chunk:
                    break
                data += chunk
            elif process.poll() is not None:
                break
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:  # (nothing, or a part of the line: it died while it told)
            code = process.wait(1.0)
            return {"error": "the worker exited with code %s before it served (its error is above)" % code}

    def _reap(self, worker, signum=signal.SIGTERM):
        """Stop one worker: ``signum``, then SIGKILL after the stop timeout."""
        worker.process.send_signal(signum)
        if worker.process.wait(self._stop_timeout) is None:
            log.warning("worker %d did not stop within %d s: killed", worker.pid, self._stop_timeout)
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(5.0)
        worker.process.close()
        self.workers.pop(worker.pid, None)

    # --- the arbiter's loop ---

    def _on_signal(self, signum, frame):
        self._signals.append(signum)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def run(self):
        """Start the workers and watch them until SIGINT or SIGTERM; returns once all have stopped."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        try:
            for slot in range(self.count):
                try:
                    self.spawn(slot)  # (a worker that cannot start now: the service does not start)
                except WorkerFailed:
                    if self._stopping():
                        break
                    raise
            while not self._stopping():
                select.select([self._wake_r], [], [], 1.0)
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
                if self._stopping():
                    break
                if signal.SIGHUP in self._signals:
                    self._signals = [signum for signum in self._signals if signum != signal.SIGHUP]
                    self.reload()
                self._restart_dead()
                self._fill_vacant()
            log.info("stopping %d workers", len(self.workers))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def _stopping(self):
        return signal.SIGINT in self._signals or signal.SIGTERM in self._signals

    def _restart_dead(self):
        for worker in list(self.workers.values()):
            code = worker.process.poll()
            if code is None or worker.retiring:
                continue
            worker.process.close()
            del self.workers[worker.pid]
            lived = time.monotonic() - worker.started
            log.warning("worker %d (slot %d) exited with code %s after %.1f s; restarting it", worker.pid,
                        worker.slot, code, lived)
            self._vacate(worker.slot, quick=lived < STABLE_AFTER)

    def _vacate(self, slot, quick):
        """Mark ``slot`` as having no worker; it is filled again after a pause that grows while starts fail
        or workers die soon after they start (its socket keeps new connections waiting meanwhile)."""
        count = self._deaths.get(slot, 0) + 1 if quick else 0
        self._deaths[slot] = count
        delay = RESTART_DELAYS[min(count, len(RESTART_DELAYS)) - 1] if count else 0.0
        self._vacant[slot] = time.monotonic() + delay

    def _fill_vacant(self):
        for slot, when in sorted(self._vacant.items()):
            if time.monotonic() < when or self._stopping():
                continue
            del self._vacant[slot]
            try:
                self.spawn(slot)
            except WorkerFailed as exc:
                log.error("could not start a worker for slot %d: %s; trying again", slot, exc)
                self._vacate(slot, quick=True)

    def reload(self):
        """Replace every worker, one at a time: the new one serves on the slot's socket before the old one stops."""
        log.info("reloading %d workers", len(self.workers))
        for old in sorted(self.workers.values(), key=lambda worker: worker.slot):
            if self._stopping():
                return
            try:
                self.spawn(old.slot)
            except WorkerFailed as exc:
                log.error("reload stopped: a new worker for slot %d failed (%s); the old workers go on", old.slot,
                          exc)
                return
            old.retiring = True
            self._reap(old)
        for slot in list(self._vacant):
            self._vacant[slot] = 0.0  # (and a slot left empty by failed starts gets a new try now)
        self._deaths.clear()

    def stop(self):
        """Stop every worker (each finishes its calls in progress), then release the sockets."""
        for worker in list(self.workers.values()):
            worker.retiring = True
            worker.process.send_signal(signal.SIGTERM)
        for worker in list(self.workers.values()):
            self._reap(worker, signal.SIGTERM)
        for sock in self.sockets:
            sock.close()
        self.sockets = []
        os.close(self._wake_r)
        os.close(self._wake_w)


# --- inside a worker -------------------------------------------------------------------------------------------

def _serve_in_worker(listen_fd, status_fd, host, load, lifeline_fd=None, nathost=None, natport=None):
    """Run one worker's daemon on the inherited listening socket. ``load()`` imports what to serve (before the
    daemon is made: a module may set config items the daemon reads then, SSL say) and returns
    ``register(daemon)``, which publishes it and returns the URI to report (with ``nathost``/``natport``, the
    address clients outside a NAT use). Returns the exit code."""
    import gevent

    from . import server
    from .servers import common

    def report(status):
        with contextlib.suppress(OSError):
            os.write(status_fd, (json.dumps(status) + "\n").encode("utf-8"))
            os.close(status_fd)

    try:
        register = load()
        sock = socket.socket(fileno=listen_fd)
        sock.set_inheritable(False)  # (a process the service starts must not keep the port open)
        common.adopt_listening_socket(sock)
        daemon = server.Daemon(host=host, port=sock.getsockname()[1], nathost=nathost, natport=natport)
        uri = register(daemon)
    except BaseException as exc:  # noqa: BLE001 - whatever stops the worker from serving goes to the arbiter
        log.exception("worker could not start")
        report({"error": "%s: %s" % (type(exc).__name__, exc)})
        return 3
    for signum in (signal.SIGTERM, signal.SIGINT):  # (a signal handler must not wait: the retiring is a greenlet)
        gevent.signal_handler(signum, gevent.spawn, _retire, daemon)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if lifeline_fd is not None:
        gevent.spawn(_watch_lifeline, lifeline_fd, daemon)
    report({"uri": str(uri), "pid": os.getpid()})
    with daemon:
        daemon.requestLoop()
    return 0


def _retire(daemon):
    """Stop a worker without losing a connection: take no new ones (the others on the port do), give those just
    accepted RETIRE_DRAIN to make their calls, then shut down (calls in progress still reply)."""
    import gevent
    stop_accepting = getattr(daemon.transportServer, "stop_accepting", None)
    if stop_accepting is not None:
        stop_accepting()
        gevent.sleep(RETIRE_DRAIN)
    daemon.shutdown()


def _watch_lifeline(fd, daemon):
    """Stop when the arbiter is gone (the pipe it holds closes)."""
    import gevent.os
    with contextlib.suppress(OSError):
        while gevent.os.tp_read(fd, 1):
            pass
    log.warning("the arbiter is gone: worker %d stops", os.getpid())
    _retire(daemon)


def load_object(spec):
    """MODULE:OBJECT (a class or an instance) imported from the current directory or sys.path."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError("expected MODULE:OBJECT, got %r" % spec)
    if "" not in sys.path:
        sys.path.insert(0, "")
    target = importlib.import_module(module_name)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _load_spec(spec, object_id):
    def load():
        target = load_object(spec)
        return lambda daemon: daemon.register(target, object_id)
    return load


def _worker_main(args):
    logging.basicConfig(level=logging.WARNING, format="geopyro-serve worker %d: %%(message)s" % os.getpid())
    if args.patch:
        from gevent import monkey
        monkey.patch_all()
    return _serve_in_worker(args.listen_fd, args.status_fd, args.host, _load_spec(args.spec, args.id),
                            lifeline_fd=0, nathost=args.nathost, natport=args.natport)


# --- the command and serve(workers=N) --------------------------------------------------------------------------

def _register_in_ns(name, uri):
    from . import core
    ns = core.locate_ns()
    with ns:
        ns.register(name, uri)
    log.info("registered %s as %s in the name server", name, uri)


def _unregister_in_ns(name, uri):
    """Remove ``name`` if it still stands for this service (another may have registered it since)."""
    from . import core
    with contextlib.suppress(Exception):
        ns = core.locate_ns()
        with ns:
            if str(ns.lookup(name)) == str(uri):
                ns.remove(name)


def _print(text, verbose=True):
    if verbose:
        print(text, flush=True)


def run_command(args):
    """``geopyro-serve``: the arbiter for a MODULE:OBJECT service; returns the exit code."""
    from . import config, errors
    # (the module is imported by the workers only: the arbiter stays free of what it does on import, its
    # monkey-patching, threads or connections; a module that does not load stops the first worker, and so this)
    workers = args.workers or cpu_count()
    host = config.HOST if args.host is None else args.host
    object_id = args.id or args.ns or args.spec.replace(":", ".")
    sockets, port = listening_sockets(host, args.port, workers, reuseport=False if args.shared_socket else None)
    mode = "one socket each (SO_REUSEPORT)" if len(sockets) > 1 else "one shared socket"
    _print("geopyro-serve: %s on %s:%d, %d workers, %s" % (args.spec, host, port, workers, mode), args.verbose)

    def start_process(sock, status_fd):
        argv = [sys.executable, "-m", "geopyro.workers", "--worker", "--listen-fd", str(sock.fileno()),
                "--status-fd", str(status_fd), "--host", host, "--id", object_id, args.spec]
        if args.patch:
            argv.insert(-1, "--patch")
        if args.nathost:
            argv[-1:-1] = ["--nathost", args.nathost] + (["--natport", str(args.natport)] if args.natport else [])
        return _SpawnedProcess(argv, sock.fileno(), status_fd)

    registered = []

    def on_ready(uri):
        _print("    uri = %s" % uri, args.verbose)
        if args.ns:
            _register_in_ns(args.ns, uri)
            registered.append(uri)
            _print("    name = %s" % args.ns, args.verbose)

    arbiter = Arbiter(sockets, workers, start_process, on_ready, args.stop_timeout)
    try:
        arbiter.run()
    except WorkerFailed as exc:
        print("geopyro-serve: a worker could not start: %s" % exc, file=sys.stderr)
        return 1
    except errors.PyroError as exc:  # (the name server: not found, or it refused the name)
        print("geopyro-serve: cannot register %s in the name server: %s" % (args.ns, exc), file=sys.stderr)
        return 1
    finally:
        if registered:
            _unregister_in_ns(args.ns, registered[0])
    _print("geopyro-serve: stopped", args.verbose)
    return 0


def serve_forked(objects, host=None, port=0, use_ns=True, verbose=True, workers=0):
    """``serve(objects, ..., workers=N)``: the objects served by N forked workers on one port (0: one per core).
    Object ids are the names (or the objects' classes' names), the same in every worker."""
    from . import config
    workers = workers or cpu_count()
    host = config.HOST if host is None else host
    sockets, port = listening_sockets(host, port, workers)
    ids = {obj: name or _default_id(obj) for obj, name in objects.items()}

    def register(daemon):
        uris = [daemon.register(obj, object_id) for obj, object_id in ids.items()]
        return uris[0]

    def start_process(sock, status_fd):
        inherited = [arbiter._wake_r, arbiter._wake_w] + [
            worker.process._lifeline for worker in arbiter.workers.values()]
        return _ForkedProcess(lambda lifeline: _child(sock, status_fd, lifeline), inherited)

    def _child(sock, status_fd, lifeline):
        import gevent
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)  # (the arbiter's handlers came along with the fork)
        gevent.reinit()
        for other in sockets:
            if other is not sock:
                other.close()
        return _serve_in_worker(sock.fileno(), status_fd, host, lambda: register, lifeline)

    def on_ready(uri):
        location = uri.split("@", 1)[1]
        for obj, object_id in ids.items():
            _print("Object %r:\n    uri = PYRO:%s@%s" % (obj, object_id, location), verbose)
            if use_ns and objects[obj]:
                _register_in_ns(objects[obj], "PYRO:%s@%s" % (object_id, location))
                _print("    name = %s" % objects[obj], verbose)
        _print("Pyro daemon running (%d workers)." % workers, verbose)

    arbiter = Arbiter(sockets, workers, start_process, on_ready)
    arbiter.run()


def _default_id(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _parser():
    parser = argparse.ArgumentParser(
        prog="geopyro-serve", description="Serve MODULE:OBJECT (a class or an instance) in several worker processes "
        "that share one port; the arbiter restarts workers that die, SIGHUP replaces them one by one, Ctrl-C or "
        "SIGTERM stops them all.")
    parser.add_argument("spec", metavar="MODULE:OBJECT")
    parser.add_argument("-w", "--workers", type=int, default=1, help="worker processes (0: one per core; default 1)")
    parser.add_argument("-n", "--host", default=None, help="hostname or address to bind (default: config.HOST)")
    parser.add_argument("-p", "--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--nathost", help="the host clients outside a NAT or port forward use; it goes into the URI")
    parser.add_argument("--natport", type=int,
                        help="the port clients outside the NAT use (default: the port the workers listen on)")
    parser.add_argument("--ns", metavar="NAME", help="register the service in the name server under NAME")
    parser.add_argument("--id", help="the object id in the URI (default: the --ns name, else MODULE.OBJECT)")
    parser.add_argument("--patch", action="store_true", help="monkey-patch each worker with gevent first")
    parser.add_argument("--shared-socket", action="store_true",
                        help="one listening socket for all workers, even where SO_REUSEPORT exists")
    parser.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT,
                        help="seconds a stopping worker gets before it is killed (default %(default)s); calls still "
                        "running 3 s into its shutdown lose their connection")
    parser.add_argument("-q", "--quiet", dest="verbose", action="store_false", help="print nothing but errors")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--status-fd", type=int, help=argparse.SUPPRESS)
    return parser


def main(args=None):
    """``geopyro-serve``: run the arbiter and its workers (or, with the internal ``--worker``, one worker);
    returns the exit code."""
    parser = _parser()
    args = parser.parse_args(args)
    if args.workers < 0:
        parser.error("--workers must be 0 (one per core) or more")
    if args.worker:
        return _worker_main(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="geopyro-serve: %(message)s")
    try:
        return run_command(args)
    except OSError as exc:
        print("geopyro-serve: cannot listen: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
