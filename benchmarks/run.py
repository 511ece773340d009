"""The benchmark runner: starts servers and load generators in their own processes, prints ratios.

    python -m benchmarks [--quick] [--output DIR] [--scenarios latency,blocking,...]
    python benchmarks/run.py ...

Progress goes to stderr, one line per step; the tables go to stdout; DIR (default
benchmarks/results/) gets latest.json, latest.png (when matplotlib is installed) and logs/.
A full run with the default output also refreshes the committed benchmarks/RESULTS.md
and benchmarks/latest.png (``--no-publish`` skips that, ``--publish`` forces it).
"""

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, programs, report  # noqa: E402
from benchmarks.common import progress  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUTPUT = os.path.join(HERE, "results")
SCENARIOS = ("latency", "blocking", "fanin", "io_bound", "cpu_bound", "bulk", "idle", "oneway")
SERVERS = (("geopyro", "greenlet"), ("geopyro", "multiplex"), ("pyro5", "thread"), ("pyro5", "multiplex"))

PROFILES = {
    "default": dict(latency_s=5.0, oneway_calls=30000, bulk_size=10 * 1000 * 1000, bulk_calls=9, io_calls=1000,
                    io_sleep=0.05, io_bursts=5, fanin_levels=[200, 1000, 5000], fanin_s=4.0, idle_conns=10000, idle_settle_s=1.0,
                    procs=2, pairs_rounds=20, pairs_slice_s=0.25, blocking_clients=4, blocking_sleep=1.0,
                    blocking_reps=5, cpu_conns=16, cpu_s=6.0, cpu_work=0.02),
    "quick": dict(latency_s=0.3, oneway_calls=2000, bulk_size=1000 * 1000, bulk_calls=1, io_calls=100,
                  io_sleep=0.05, io_bursts=2, fanin_levels=[100, 200], fanin_s=0.4, idle_conns=300, idle_settle_s=0.3, procs=2,
                  pairs_rounds=2, pairs_slice_s=0.2, blocking_clients=4, blocking_sleep=0.3, blocking_reps=1,
                  cpu_conns=16, cpu_s=1.0, cpu_work=0.02),
}


def label(impl, kind):
    return "%s %s" % ({"geopyro": "geopyro", "pyro5": "Pyro5", "raw": "raw"}[impl], kind)


def pyro5_threadpool_size():
    """Pyro5's default THREADPOOL_SIZE, as the Pyro5 servers of this run see it (they get no PYRO_* variables)."""
    try:
        from Pyro5.configure import Configuration
    except ImportError:
        return None
    config = Configuration()
    config.reset(use_environment=False)
    return config.THREADPOOL_SIZE


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1)))))
    return values[k]


class StepError(RuntimeError):
    pass


class Child:
    """A child process whose stdout lines are collected by a thread (so waits can time out)."""

    def __init__(self, args, name, logdir, extra_env=None):
        self.name = name
        self.log_path = os.path.join(logdir, name.replace(" ", "_").replace("/", "_") + ".log")
        self._log = open(self.log_path, "ab")
        env = common.child_env()
        env.update(extra_env or {})
        self.proc = subprocess.Popen([sys.executable] + args, cwd=common.ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self):
        return self.proc.pid

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, tag, timeout):
        """The payload of the next stdout line starting with ``tag``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise StepError("%s: no %s within %.0f s (log: %s)" % (self.name, tag, timeout, self.log_path))
            if line is None:
                raise StepError("%s exited (code %s) before %s; log: %s\n%s" % (
                    self.name, self.proc.wait(), tag, self.log_path, self.tail()))
            if line.startswith(tag + " "):
                return line[len(tag) + 1:]

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def tail(self, n=8):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    self.proc.kill()
                self.proc.wait(timeout)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()


# Bulk runs once as every process starts, and once more, for reference, with glibc told to keep freed
# memory: large payloads otherwise pay page faults whose number depends on which thread's heap they use.
ALLOCATORS = {
    "default": {},
    "kept": {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=268435456"},
}


def cpu_seconds(children):
    """User + system CPU seconds used so far by the given children (None when /proc cannot say)."""
    total = 0.0
    for child in children:
        try:
            with open("/proc/%d/stat" % child.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_per_call(cpu, calls):
    """Microseconds of CPU per call, or None."""
    return cpu / calls * 1e6 if cpu is not None and calls else None


class Runner:
    def __init__(self, settings, output):
        self.s = settings
        self.output = output
        self.logdir = os.path.join(output, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.children = []
        self.last_cpu = {"server": None, "load": None}
        self._seq = 0

    def spawn(self, args, name, extra_env=None):
        self._seq += 1
        child = Child(args, "%03d-%s" % (self._seq, name), self.logdir, extra_env)
        self.children.append(child)
        return child

    def stop(self, child):
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def cleanup(self):
        for child in list(self.children):
            try:
                self.stop(child)
            except Exception:
                pass

    @contextmanager
    def server(self, impl, kind, threadpool=0, extra_env=None):
        with self.servers([dict(impl=impl, kind=kind, threadpool=threadpool, extra_env=extra_env)]) as [started]:
            yield started

    @contextmanager
    def servers(self, specs):
        """Start servers together (dicts: impl, kind, threadpool, patch, extra_env); yield [(child, uri)]."""
        children = []
        try:
            for spec in specs:
                args = ["-m", "benchmarks.server", "--impl", spec["impl"], "--type", spec["kind"]]
                if spec.get("threadpool"):
                    args += ["--threadpool", str(spec["threadpool"])]
                if spec.get("patch"):
                    args += ["--patch"]
                name = "server-%s-%s%s" % (spec["impl"], spec["kind"], "-patched" if spec.get("patch") else "")
                children.append(self.spawn(args, name, spec.get("extra_env")))
            yield [(child, child.expect("URI", 30)) for child in children]
        finally:
            for child in children:
                self.stop(child)

    def load(self, uri, mode, conns=1, procs=1, between=None, timeout=180, server=None, bursts=1, extra_env=None,
             **opts):
        """Run ``procs`` load generators (``conns`` split among them); return their RESULT payloads.

        CPU seconds used from GO to the last RESULT, by ``server`` (a Child) and by the load
        generators together, are left in ``self.last_cpu``.
        """
        procs = max(1, min(procs, conns)) if conns else 1
        shares = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
        children = []
        try:
            for i, share in enumerate(shares):
                args = ["-m", "benchmarks.load", "--mode", mode, "--conns", str(share)]
                if uri is not None:
                    args += ["--uri", uri]
                for key, value in opts.items():
                    args += ["--" + key.replace("_", "-"), str(value)]
                children.append(self.spawn(args, "load-%s-%d" % (mode, i), extra_env))
            readies = [json.loads(c.expect("READY", timeout)) for c in children]
            if between is not None:
                between(readies)
            watched = {"server": [server] if server else [], "load": children}
            before = {k: cpu_seconds(v) for k, v in watched.items()}
            for burst in range(bursts):
                if burst:  # every generator finished the last burst: start the next one together
                    for c in children:
                        c.expect("ROUND", timeout)
                for c in children:
                    c.send("GO")
            results = [json.loads(c.expect("RESULT", timeout)) for c in children]
            after = {k: cpu_seconds(v) for k, v in watched.items()}
            self.last_cpu = {k: (after[k] - before[k]) if None not in (after[k], before[k]) else None
                             for k in watched}
            return results
        finally:
            for c in children:
                self.stop(c)

    # --- scenarios: each returns a list of steps (name, function returning (row, summary)) ---

    def steps_latency(self):
        d = self.s["latency_s"]

        def run(impl, kind, client="geopyro"):
            def step():
                with self.server(impl, kind) as (server, uri):
                    (res,) = self.load(uri, "raw" if impl == "raw" else "latency", duration=d, client=client,
                                       server=server)
                lat = res["latencies_us"]
                row = {"server": label(impl, kind) if client == "geopyro" else "Pyro5 client -> Pyro5 thread",
                       "client": client, "calls": res["calls"], "calls_per_s": res["calls"] / res["elapsed_s"],
                       "p50_us": percentile(lat, 50), "p99_us": percentile(lat, 99),
                       "server_cpu_us": cpu_per_call(self.last_cpu["server"], res["calls"]),
                       "load_cpu_us": cpu_per_call(self.last_cpu["load"], res["calls"]),
                       "reference_only": client != "geopyro"}
                return row, "%8.0f calls/s  p50 %6.1f us  p99 %7.1f us" % (
                    row["calls_per_s"], row["p50_us"], row["p99_us"])
            return step

        steps = [(label(i, k), run(i, k)) for i, k in SERVERS]
        steps.append(("raw ceiling", run("raw", "ceiling")))
        steps.append(("Pyro5 client -> Pyro5 thread", run("pyro5", "thread", client="pyro5")))
        steps.append(("client/server pairs", lambda: programs.pairs_step(self)))
        return steps

    def steps_blocking(self):
        return [("4 clients, time.sleep", lambda: programs.blocking_step(self))]

    def steps_fanin(self):
        d = self.s["fanin_s"]

        def run(impl, kind, n, patch=False):
            def step():
                with self.servers([dict(impl=impl, kind=kind, patch=patch)]) as [(server, uri)]:
                    results = self.load(uri, "fanin", conns=n, procs=self.s["procs"], duration=d,
                                        timeout=max(120, n / 20), server=server)
                row = self._merge_conn_results(impl, kind, n, results)
                if patch:
                    row["server"] = report.FANIN_PATCHED
                lat = [v for r in results for v in r["latencies_us"]]
                calls = sum(r["calls"] for r in results)
                row.update(calls=calls, duration_s=d, calls_per_s=calls / d,
                           p50_ms=percentile(lat, 50) / 1000.0 if lat else None,
                           p99_ms=percentile(lat, 99) / 1000.0 if lat else None,
                           server_cpu_us=cpu_per_call(self.last_cpu["server"], calls),
                           load_cpu_us=cpu_per_call(self.last_cpu["load"], calls))
                return row, "%5d conns: %8.0f calls/s  p99 %7.1f ms  refused %d  errors %d" % (
                    n, row["calls_per_s"], row["p99_ms"] or 0, row["refused"], row["errors"])
            return step

        # geopyro's default server in an unpatched process runs every call on a pool thread; the patched row
        # shows the same server with calls inline in the connections' greenlets
        variants = [(i, k, False) for i, k in SERVERS] + [("geopyro", "greenlet", True)]
        return [("%s%s x%d" % (label(i, k), " (patched)" if p else "", n), run(i, k, n, p))
                for n in self.s["fanin_levels"] for i, k, p in variants]

    def _merge_conn_results(self, impl, kind, n, results, threadpool=0):
        row = {"server": label(impl, kind), "connections": n}
        if (impl, kind) == ("pyro5", "thread"):  # it refuses connections past its pool: the tables say why
            row["threadpool"] = threadpool or pyro5_threadpool_size()
        for key in ("connected", "refused", "errors", "unfinished"):
            row[key] = sum(r[key] for r in results)
        reasons = {}
        for r in results:
            for k, v in list(r["refusal_reasons"].items()) + list(r["error_reasons"].items()):
                reasons[k] = reasons.get(k, 0) + v
        row["reasons"] = reasons
        return row

    def steps_io(self):
        n, sleep, bursts = self.s["io_calls"], self.s["io_sleep"], self.s["io_bursts"]

        def run(impl, kind, threadpool=0):
            def step():
                with self.server(impl, kind, threadpool) as (_, uri):
                    results = self.load(uri, "io", conns=n, procs=self.s["procs"], sleep=sleep, count=bursts,
                                        bursts=bursts, timeout=max(120, n / 20))
                row = self._merge_conn_results(impl, kind, n, results, threadpool)
                if threadpool:
                    row["server"] += " (THREADPOOL_SIZE=%d)" % threadpool
                    row["reference_only"] = True
                # a burst's wall time is its slowest generator's; the median burst is reported
                walls = [max(w) for w in zip(*(r["walls_s"] for r in results)) if None not in w]
                row.update(method="gevent.sleep" if impl == "geopyro" else "time.sleep", sleep_s=sleep,
                           bursts=bursts, completed=min(sum(c) for c in zip(*(r["completed"] for r in results))),
                           wall_s=statistics.median(walls) if walls else None,
                           walls_ms=[round(w * 1000, 1) for w in walls])
                row["x_ideal"] = row["wall_s"] / sleep if row["wall_s"] else None
                return row, "%d calls: %d done, refused %d, wall %.1f ms (%.2fx ideal)" % (
                    n, row["completed"], row["refused"], (row["wall_s"] or 0) * 1000, row["x_ideal"] or 0)
            return step

        def not_applicable(impl, kind):
            def step():
                row = {"server": label(impl, kind), "applies": False,
                       "note": "one call at a time by design: %d x %.0f ms = %.0f s serial" % (n, sleep * 1000,
                                                                                           n * sleep)}
                return row, "n/a (%s)" % row["note"]
            return step

        return [(label("geopyro", "greenlet"), run("geopyro", "greenlet")),
                (label("geopyro", "multiplex"), not_applicable("geopyro", "multiplex")),
                (label("pyro5", "thread"), run("pyro5", "thread")),
                (label("pyro5", "multiplex"), not_applicable("pyro5", "multiplex")),
                ("Pyro5 thread pool=%d" % n, run("pyro5", "thread", threadpool=n))]

    def steps_cpu(self):
        """CPU-bound calls (pure Python, ~20 ms each) from enough connections to keep every worker busy:
        geopyro-serve with 1 and 2 worker processes, and Pyro5's thread server (one process, one GIL)."""
        conns, seconds, work = self.s["cpu_conns"], self.s["cpu_s"], self.s["cpu_work"]

        def measure(name, uri, workers):
            results = self.load(uri, "cpu", conns=conns, procs=1, sleep=work, duration=seconds, timeout=120)
            calls = sum(r["calls"] for r in results)
            wall = max(r["wall_s"] for r in results)
            row = {"server": name, "workers": workers, "connections": conns, "work_ms": work * 1000, "calls": calls,
                   "wall_s": wall, "calls_per_s": calls / wall if wall else None,
                   "errors": sum(r.get("errors", 0) for r in results)}
            return row, "%d calls in %.1f s: %.1f calls/s, %d errors" % (calls, wall, row["calls_per_s"] or 0,
                                                                        row["errors"])

        def geopyro(workers):
            def step():
                port = common.free_port()
                child = self.spawn(["-m", "geopyro.workers", "benchmarks.cpu_service:Service",
                                    "--workers", str(workers), "-n", "127.0.0.1", "-p", str(port),
                                    "--id", common.OBJECT_ID],
                                   "server-geopyro-serve-%d" % workers)
                try:
                    def serving():  # (its workers log "worker N (slot k) serving" as each one starts)
                        with open(child.log_path, "rb") as log:
                            return log.read().count(b") serving") >= workers
                    deadline = time.monotonic() + 60
                    while not serving():
                        if time.monotonic() > deadline or child.proc.poll() is not None:
                            raise StepError("geopyro-serve's %d workers did not start (log: %s)\n%s"
                                            % (workers, child.log_path, child.tail()))
                        time.sleep(0.05)
                    return measure("geopyro-serve --workers %d" % workers,
                                   "PYRO:%s@127.0.0.1:%d" % (common.OBJECT_ID, port), workers)
                finally:
                    self.stop(child)
            return step

        def pyro5():
            with self.server("pyro5", "thread") as (_, uri):
                return measure(label("pyro5", "thread"), uri, 1)

        return [("geopyro-serve --workers 1", geopyro(1)), ("geopyro-serve --workers 2", geopyro(2)),
                (label("pyro5", "thread"), pyro5)]

    def steps_bulk(self):
        size, count = self.s["bulk_size"], self.s["bulk_calls"]

        def run(impl, kind, serializer, allocator):
            def step():
                env = ALLOCATORS[allocator]
                with self.server(impl, kind, extra_env=env) as (_, uri):
                    (res,) = self.load(uri, "bulk", serializer=serializer, size=size, count=count, timeout=300,
                                       extra_env=env)
                per_call = statistics.median(res["times_s"])  # steady state: one slow call does not decide
                row = {"server": label(impl, kind), "serializer": serializer, "allocator": allocator,
                       "payload_mb": size / 1e6, "calls": count, "seconds_per_call": per_call,
                       "mb_per_s": 2 * size / per_call / 1e6, "reference_only": allocator != "default"}
                return row, "%s %.0f MB echo: %7.1f MB/s (%.3f s/call)" % (
                    serializer, size / 1e6, row["mb_per_s"], row["seconds_per_call"])
            return step

        return [("%s %s%s" % (label(i, k), ser, "" if alloc == "default" else " (%s allocator)" % alloc),
                 run(i, k, ser, alloc)) for alloc in ALLOCATORS for ser in ("serpent", "msgpack")
                for i, k in SERVERS]

    def steps_idle(self):
        n = self.s["idle_conns"]

        def run(impl, kind):
            def step():
                with self.server(impl, kind) as (server, uri):
                    self.load(uri, "idle", conns=20, procs=1)  # warm up code paths and allocator
                    time.sleep(self.s["idle_settle_s"] / 2)
                    before = common.rss_kb(server.pid)
                    measured = {}

                    def between(readies):
                        time.sleep(self.s["idle_settle_s"])
                        measured["after"] = common.rss_kb(server.pid)

                    results = self.load(uri, "idle", conns=n, procs=self.s["procs"], between=between,
                                        timeout=max(120, n / 20))
                row = self._merge_conn_results(impl, kind, n, results)
                held = row["connected"]
                row.update(held=held, rss_before_kb=before, rss_after_kb=measured["after"],
                           kb_per_connection=(measured["after"] - before) / held if held else None)
                return row, "%d conns: held %d, refused %d, %.1f KB/conn (RSS %.1f -> %.1f MB)" % (
                    n, held, row["refused"], row["kb_per_connection"] or 0, before / 1024,
                    measured["after"] / 1024)
            return step

        return [(label(i, k), run(i, k)) for i, k in SERVERS]

    def steps_oneway(self):
        count = self.s["oneway_calls"]

        def run(impl, kind):
            def step():
                with self.server(impl, kind) as (_, uri):
                    (res,) = self.load(uri, "oneway", count=count)
                row = {"server": label(impl, kind), "sent": res["sent"], "processed": res["processed"],
                       "calls_per_s": res["processed"] / res["elapsed_s"],
                       "send_rate_per_s": res["sent"] / res["send_s"]}
                return row, "%8.0f calls/s processed (%d sent, %d processed)" % (
                    row["calls_per_s"], res["sent"], res["processed"])
            return step

        return [(label(i, k), run(i, k)) for i, k in SERVERS]


def run_all(runner, scenarios):
    makers = {"latency": runner.steps_latency, "blocking": runner.steps_blocking, "fanin": runner.steps_fanin,
              "io_bound": runner.steps_io, "cpu_bound": runner.steps_cpu, "bulk": runner.steps_bulk, "idle": runner.steps_idle,
              "oneway": runner.steps_oneway}
    plan = [(scenario, name, fn) for scenario in scenarios for name, fn in makers[scenario]()]
    results = {scenario: {"rows": []} for scenario in scenarios}
    started = time.monotonic()
    for i, (scenario, name, fn) in enumerate(plan, 1):
        t0 = time.monotonic()
        try:
            row, summary = fn()
        except (StepError, programs.StepFailed) as exc:
            row, summary = {"server": name, "error": str(exc)}, "FAILED: %s" % str(exc).splitlines()[0]
        except Exception as exc:  # a broken step should not lose the others
            row, summary = {"server": name, "error": repr(exc)}, "FAILED: %r" % (exc,)
        if isinstance(row, list):  # one step measured several rows together
            results[scenario]["rows"].extend(row)
        else:
            results[scenario]["rows"].append(row)
        progress("[%2d/%d] %-8s %-32s %s  (%.1f s, total %.0f s)" % (
            i, len(plan), scenario, name, summary, time.monotonic() - t0, time.monotonic() - started))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts and durations (under a minute)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="directory for latest.json/.png and logs")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset of: %s" % ", ".join(SCENARIOS))
    parser.add_argument("--procs", type=int, default=None, help="load generator processes for fan-in/io/idle")
    publish = parser.add_mutually_exclusive_group()
    publish.add_argument("--publish", action="store_true", default=None,
                         help="also refresh benchmarks/RESULTS.md and benchmarks/latest.png")
    publish.add_argument("--no-publish", dest="publish", action="store_false")
    args = parser.parse_args(argv)

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenarios: %s" % ", ".join(sorted(unknown)))
    mode = "quick" if args.quick else "default"
    settings = dict(PROFILES[mode])
    if args.procs:
        settings["procs"] = args.procs
    output = os.path.abspath(args.output)
    if args.publish is None:
        args.publish = (not args.quick and output == os.path.abspath(DEFAULT_OUTPUT)
                        and scenarios == list(SCENARIOS))
    os.makedirs(output, exist_ok=True)
    nofile = common.raise_nofile()

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    machine = report.machine_info()
    progress("benchmarks (%s mode) on %s, %s CPUs, Python %s; RLIMIT_NOFILE soft %d; output %s" % (
        mode, machine["cpu_model"], machine["nproc"], machine["python"], nofile, output))
    runner = Runner(settings, output)
    started = time.time()
    try:
        results = run_all(runner, scenarios)
    except KeyboardInterrupt:
        progress("interrupted: stopping every benchmark process")
        return 130
    finally:
        runner.cleanup()
    data = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
                 "mode": mode, "settings": settings, "duration_s": round(time.time() - started, 1),
                 "machine": machine, "command": "python -m benchmarks" + (" --quick" if args.quick else "")},
        "scenarios": results,
    }
    data["targets"] = report.evaluate_targets(data)
    json_path = os.path.join(output, "latest.json")
    with open(json_path, "w") as f:
        json.dump(data, f, indent=2)
    text = report.markdown_tables(data)
    print(text)
    png_path = os.path.join(output, "latest.png")
    plotted = report.plot(data, png_path)
    if not plotted:
        progress("matplotlib is not installed: no plot (pip install -r benchmarks/requirements.txt)")
    if args.publish:
        # RESULTS.md is for readers choosing a server: geopyro's own goals stay in the printed tables and the JSON
        report.publish(data, report.markdown_tables(data, targets=False), png_path if plotted else None, HERE)
        progress("refreshed %s" % os.path.join(HERE, "RESULTS.md"))
    progress("wrote %s%s in %.0f s" % (json_path, " and " + png_path if plotted else "", time.time() - started))
    failed = [row for s in results.values() for row in s["rows"] if "error" in row]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
