"""Tables, targets, the plot and the committed RESULTS.md for a benchmark run."""

import os
import platform
import shutil
import subprocess
import sys

BLOCKING_LIMIT = 1.3  # concurrent blocking calls on geopyro's thread pool: at most 1.3x Pyro5's wall time
BULK_TOLERANCE = 0.95  # "no slower than Pyro5": within 5 % (run-to-run noise on a shared 2-core box)
MARK_BEGIN = "<!-- BEGIN GENERATED RESULTS (python -m benchmarks rewrites this part) -->"
MARK_END = "<!-- END GENERATED RESULTS -->"
README_BEGIN = "<!-- BEGIN BENCHMARK SUMMARY (python -m benchmarks rewrites this part) -->"
README_END = "<!-- END BENCHMARK SUMMARY -->"
SUMMARY_SCENARIOS = ("latency", "blocking", "fanin", "io_bound", "cpu_bound", "bulk", "idle", "oneway")  # summarized
WORKERS_TARGET = 1.7  # CPU-bound calls/s with geopyro-serve --workers 2 vs --workers 1, on 2 cores


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        nproc = str(len(os.sched_getaffinity(0)))
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for name in ("geopyro", "Pyro5", "gevent", "greenlet", "serpent", "msgpack"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", getattr(module, "version", "?"))
            if isinstance(versions[name], tuple):
                versions[name] = ".".join(map(str, versions[name]))
        except ImportError:
            versions[name] = None
    return {"nproc": nproc, "cpu_model": cpu, "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "mem_gb": mem, "versions": versions}


# --- targets -----------------------------------------------------------------------------------

def _row(data, scenario, server, **match):
    for row in data["scenarios"].get(scenario, {}).get("rows", []):
        if row.get("server") == server and "error" not in row and row.get("applies", True) \
                and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


FANIN_PATCHED = "geopyro greenlet (patched: calls inline)"  # the fan-in row of the patched server process
FANIN_CPU_LIMIT = 0.85  # [Performance] target: server CPU per call at 200 connections vs Pyro5 multiplex

ALLOCATOR_KEPT = "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=268435456"


def _ratio(a, b):
    return a / b if a is not None and b else None


def evaluate_targets(data):
    """Each geopyro target (for the default server type, greenlet) as met / not met with the measured ratio."""
    targets = []

    def add(name, requirement, measured, met, detail):
        targets.append({"target": name, "requirement": requirement,
                        "measured": round(measured, 3) if isinstance(measured, float) else measured,
                        "met": None if measured is None else bool(met), "detail": detail})

    g = _row(data, "latency", "geopyro greenlet")
    p = _row(data, "latency", "Pyro5 thread")
    r = _row(data, "latency", "raw ceiling")
    if "latency" in data["scenarios"]:
        ratio = _ratio(g and g["calls_per_s"], p and p["calls_per_s"])
        add("latency: calls/s vs Pyro5 thread", ">= 1.5x", ratio, ratio is not None and ratio >= 1.5,
            "geopyro greenlet %s vs Pyro5 thread %s calls/s" % (_n(g, "calls_per_s"), _n(p, "calls_per_s")))
        ratio = _ratio(g and g["calls_per_s"], r and r["calls_per_s"])
        add("latency: calls/s vs raw gevent ceiling", ">= 0.65x", ratio, ratio is not None and ratio >= 0.65,
            "geopyro greenlet %s vs raw %s calls/s" % (_n(g, "calls_per_s"), _n(r, "calls_per_s")))
    if "blocking" in data["scenarios"]:
        g = _row(data, "blocking", "geopyro server (unpatched)")
        p = _row(data, "blocking", "Pyro5 thread server")
        ratio = g and g.get("vs_pyro5")
        add("blocking: %s concurrent time.sleep calls, wall vs Pyro5 thread" % (g and g["clients"]), "<= 1.3x",
            ratio, ratio is not None and ratio <= BLOCKING_LIMIT,
            "geopyro server (unpatched) %s vs Pyro5 thread %s ms, median of %s" % (
                _n(g, "wall_s", 1000), _n(p, "wall_s", 1000), g and g["reps"]))
    if "fanin" in data["scenarios"]:
        levels = sorted({row["connections"] for row in data["scenarios"]["fanin"]["rows"] if "connections" in row})
        level = 1000 if 1000 in levels else (levels[-1] if levels else None)
        g = _row(data, "fanin", "geopyro greenlet", connections=level)
        p = _row(data, "fanin", "Pyro5 multiplex", connections=level)
        ratio = _ratio(g and g["calls_per_s"], p and p["calls_per_s"])
        add("fan-in at %s connections: calls/s vs Pyro5 multiplex" % level, ">= 2x", ratio,
            ratio is not None and ratio >= 2, "geopyro greenlet %s vs Pyro5 multiplex %s calls/s" % (
                _n(g, "calls_per_s"), _n(p, "calls_per_s")))
        level = 200 if 200 in levels else (levels[0] if levels else None)
        p = _row(data, "fanin", "Pyro5 multiplex", connections=level)
        for server in (FANIN_PATCHED, "geopyro greenlet"):
            g = _row(data, "fanin", server, connections=level)
            ratio = _ratio(g and g.get("server_cpu_us"), p and p.get("server_cpu_us"))
            add("fan-in at %s connections: server CPU per call vs Pyro5 multiplex, %s" % (level, server),
                "<= %.2fx" % FANIN_CPU_LIMIT, ratio, ratio is not None and ratio <= FANIN_CPU_LIMIT,
                "%s us vs %s us per call" % (_n(g, "server_cpu_us"), _n(p, "server_cpu_us")))
    if "io_bound" in data["scenarios"]:
        g = _row(data, "io_bound", "geopyro greenlet")
        x = g["x_ideal"] if g else None
        ok = x is not None and x <= 3 and g["completed"] == g["connections"]
        add("I/O-bound: wall time vs the %s ms ideal" % (int(g["sleep_s"] * 1000) if g else "?"), "<= 3x", x, ok,
            "%s calls, %s completed, median wall %s ms of %s bursts" % (
                g and g["connections"], g and g["completed"], _n(g, "wall_s", 1000), g and g.get("bursts", 1)))
    if "cpu_bound" in data["scenarios"]:
        one = _row(data, "cpu_bound", "geopyro-serve --workers 1")
        two = _row(data, "cpu_bound", "geopyro-serve --workers 2")
        ratio = _ratio(two and two["calls_per_s"], one and one["calls_per_s"])
        add("CPU-bound: calls/s with 2 worker processes vs 1", ">= %.1fx" % WORKERS_TARGET, ratio,
            ratio is not None and ratio >= WORKERS_TARGET and not (one["errors"] or two["errors"]),
            "%s vs %s calls/s of %s ms each" % (_n(two, "calls_per_s"), _n(one, "calls_per_s"), _n(one, "work_ms")))
    if "idle" in data["scenarios"]:
        g = _row(data, "idle", "geopyro greenlet")
        kb = g["kb_per_connection"] if g else None
        ok = kb is not None and kb <= 20 and g["held"] == g["connections"]
        add("idle: server memory per connection (%s held of %s)" % (g and g["held"], g and g["connections"]),
            "<= 20 KB", kb, ok, "RSS %s -> %s KB" % (g and g["rss_before_kb"], g and g["rss_after_kb"]))
    if "bulk" in data["scenarios"]:
        for ser in ("serpent", "msgpack"):
            g = _row(data, "bulk", "geopyro greenlet", serializer=ser, allocator="default")
            p = _row(data, "bulk", "Pyro5 thread", serializer=ser, allocator="default")
            ratio = _ratio(g and g["mb_per_s"], p and p["mb_per_s"])
            add("bulk %s: MB/s vs Pyro5 thread" % ser, ">= 1x (%.2f with noise allowance)" % BULK_TOLERANCE,
                ratio, ratio is not None and ratio >= BULK_TOLERANCE,
                "geopyro greenlet %s vs Pyro5 thread %s MB/s" % (_n(g, "mb_per_s"), _n(p, "mb_per_s")))
    return targets


def _n(row, key, scale=1.0):
    if not row or row.get(key) is None:
        return "n/a"
    return "{:,.1f}".format(row[key] * scale)


# --- tables ------------------------------------------------------------------------------------

# how some rows are named in the tables (the results keep the short names)
DISPLAY_NAMES = {
    "raw ceiling": "raw gevent echo, no Pyro (ceiling)",
    "Pyro5 client -> Pyro5 thread": "Pyro5 thread, called by Pyro5's own client",
}


def _fmt(value, spec="{:,.0f}"):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return spec.format(value)
    return str(value)


def _table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out)


def _errors(rows, width):
    return [[row["server"], "FAILED: " + row["error"].splitlines()[0][:120]] + [""] * (width - 2)
            for row in rows if "error" in row]


def _name(row):
    """A row's server as the tables show it."""
    return DISPLAY_NAMES.get(row["server"], row["server"]) + (" (reference)" if row.get("reference_only") else "")


def _pool(row):
    """How many connections Pyro5's thread server serves at once: its THREADPOOL_SIZE (results without it: the
    number of connections it accepted)."""
    return row.get("threadpool") or row.get("connected")


def _pool_phrase(rows):
    """' (THREADPOOL_SIZE = 80)' from the first Pyro5 thread row that refused connections, or ''."""
    for r in rows:
        if r.get("server") == "Pyro5 thread" and r.get("refused") and _pool(r):
            return " (THREADPOOL_SIZE = %s)" % _fmt(_pool(r))
    return ""


def refusal_note(row):
    """Why a row's server did not take every connection offered, in words; '' when it took them all."""
    if not row.get("refused"):
        return ""
    note = "%s of %s connections refused" % (_fmt(row["refused"]), _fmt(row.get("connections")))
    if row["server"].startswith("Pyro5 thread") and _pool(row):
        note += ": Pyro5's thread server serves one connection per thread of its pool (%s threads)" % _fmt(_pool(row))
    return note


def _setting(data, key, spec="{:g}"):
    value = data.get("meta", {}).get("settings", {}).get(key)
    return "?" if value is None else spec.format(value)


def markdown_tables(data, targets=True):
    """Every table of a run, each with a short note on what its rows measure. ``targets`` adds the table of
    geopyro's own performance goals (printed by the runner, not published in RESULTS.md)."""
    sc = data["scenarios"]
    parts = []
    if "latency" in sc:
        rows = [r for r in sc["latency"]["rows"] if r.get("table") != "pairs"]
        base = _row(data, "latency", "Pyro5 thread")
        raw = _row(data, "latency", "raw ceiling")
        cells = [[_name(r), _fmt(r["calls_per_s"]),
                  _fmt(r["p50_us"], "{:,.1f}"), _fmt(r["p99_us"], "{:,.1f}"),
                  _fmt(_ratio(r["calls_per_s"], base and base["calls_per_s"]), "{:.2f}x"),
                  _fmt(_ratio(r["calls_per_s"], raw and raw["calls_per_s"]), "{:.0%}"),
                  _fmt(r.get("server_cpu_us"), "{:,.0f}"), _fmt(r.get("load_cpu_us"), "{:,.0f}")]
                 for r in rows if "error" not in r]
        parts.append(
            "### 1. Latency: one client, sequential echo(42) calls (serpent)\n\n"
            "Each row: one connection from geopyro's client (Pyro5's own client in the reference row) calls "
            "`echo(42)` one call after another for %s s, after a warm-up; the server processes are not "
            "monkey-patched. The *raw gevent echo* row is not a Pyro server: a plain gevent socket server reads "
            "each call's bytes and answers with a precomputed reply, decoding nothing, the least a Python "
            "server can do per call on this machine. CPU us/call: the CPU time the server process, and the client process, used in the run divided by the "
            "calls; lower is better.\n\n" % _setting(data, "latency_s") + _table(
                ["server", "calls/s", "p50 us", "p99 us", "vs Pyro5 thread", "of raw ceiling", "server CPU us/call",
                 "client CPU us/call"], cells + _errors(rows, 8)))
        pairs = [r for r in sc["latency"]["rows"] if r.get("table") == "pairs"]
        if pairs:
            parts.append(pairs_table(pairs))
    if "blocking" in sc:
        parts.append(blocking_table(sc["blocking"]["rows"]))
    if "fanin" in sc:
        rows = sc["fanin"]["rows"]

        def cpu_vs_multiplex(r):
            base = _row(data, "fanin", "Pyro5 multiplex", connections=r["connections"])
            return _ratio(r.get("server_cpu_us"), base and base.get("server_cpu_us"))
        cells = [[r["server"], _fmt(r["connections"]), _fmt(r["connected"]), _fmt(r["refused"]),
                  _fmt(r["errors"]), _fmt(r["calls_per_s"]), _fmt(r["p50_ms"], "{:,.2f}"),
                  _fmt(r["p99_ms"], "{:,.2f}"), _fmt(r.get("server_cpu_us"), "{:,.0f}"),
                  _fmt(cpu_vs_multiplex(r), "{:.2f}x"), _fmt(r.get("load_cpu_us"), "{:,.0f}")] for r in sorted(
                      (r for r in rows if "error" not in r), key=lambda r: r["connections"])]
        parts.append(
            "### 2. Fan-in: concurrent connections, each calling echo(42) in a loop\n\n"
            "Each row: that many connections, spread over %s load processes, connect first; then every one "
            "calls `echo(42)` in a loop for %s s. calls/s counts the calls of all connections together; p50 and "
            "p99 are the time of one call. The server processes are not monkey-patched, so geopyro runs `echo` "
            "on its pool threads; the *patched* row is geopyro's greenlet server in a monkey-patched process, "
            "where calls run inline in the connections' greenlets. **refused**: Pyro5's thread server serves one "
            "connection per pool thread%s and refuses the rest, so its rows count only the calls of the "
            "connections it accepted. CPU per call moves less from run to run than calls/s; the column after it "
            "compares it with Pyro5 multiplex's at the same number of connections (lower is better).\n\n" % (
                _setting(data, "procs"), _setting(data, "fanin_s"), _pool_phrase(rows)) + _table(
                ["server", "connections", "accepted", "refused", "errors", "calls/s", "p50 ms", "p99 ms",
                 "server CPU us/call", "server CPU vs Pyro5 multiplex", "clients CPU us/call"], cells + _errors(rows, 11)))
    if "io_bound" in sc:
        parts.append(io_bound_table(data))
    if "cpu_bound" in sc:
        rows = sc["cpu_bound"]["rows"]
        one = _row(data, "cpu_bound", "geopyro-serve --workers 1")
        pyro5 = _row(data, "cpu_bound", "Pyro5 thread")
        cells = [[r["server"], _fmt(r["workers"]), _fmt(r["connections"]), _fmt(r["work_ms"], "{:.0f}"),
                  _fmt(r["calls"]), _fmt(r["errors"]), _fmt(r["calls_per_s"], "{:,.1f}"),
                  _fmt(_ratio(r["calls_per_s"], one and one["calls_per_s"]), "{:.2f}x"),
                  _fmt(_ratio(r["calls_per_s"], pyro5 and pyro5["calls_per_s"]), "{:.2f}x")]
                 for r in rows if "error" not in r]
        parts.append("### 3b. CPU-bound: concurrent calls to a method doing ~20 ms of pure Python each\n\n"
                     "Each row: %s connections call, over and over for %s s, a method that computes in pure "
                     "Python (holding the GIL). One Python process runs such calls one at a time whatever its "
                     "threads, Pyro5's included; geopyro-serve runs the service in several worker processes "
                     "sharing one port (geopyro.workers).\n\n" % (
                         _setting(data, "cpu_conns"), _setting(data, "cpu_s")) + _table(
                         ["server", "processes", "connections", "ms per call", "calls", "errors", "calls/s",
                          "vs 1 worker", "vs Pyro5 thread"], cells + _errors(rows, 9)))
    if "bulk" in sc:
        rows = sc["bulk"]["rows"]
        cells = []
        for r in rows:
            if "error" in r:
                continue
            alloc = r.get("allocator", "default")
            base = _row(data, "bulk", "Pyro5 thread", serializer=r["serializer"], allocator=alloc)
            cells.append([_name(r), r["serializer"],
                          alloc, _fmt(r["payload_mb"], "{:g}"), _fmt(r["calls"]),
                          _fmt(r["seconds_per_call"], "{:.3f}"), _fmt(r["mb_per_s"], "{:,.1f}"),
                          _fmt(_ratio(r["mb_per_s"], base and base["mb_per_s"]), "{:.2f}x")])
        parts.append("### 4. Bulk: echo of a bytes payload (MB/s counts both directions)\n\n"
                     "Each row: one connection sends a `bytes` payload and gets it back: one unmeasured call, "
                     "then the calls counted; s/call is the median call. allocator `default`: the processes as "
                     "they normally run; `kept`: every process run with `GLIBC_TUNABLES=%s`, which keeps freed "
                     "memory in the process instead of handing it back to the kernel after each call (for "
                     "reference).\n\n" % ALLOCATOR_KEPT + _table(
                         ["server", "serializer", "allocator", "payload MB", "calls", "s/call", "MB/s",
                          "vs Pyro5 thread (same allocator)"], cells + _errors(rows, 8)))
    if "idle" in sc:
        rows = sc["idle"]["rows"]
        cells = [[r["server"], _fmt(r["connections"]), _fmt(r["held"]), _fmt(r["refused"]),
                  _fmt(r["rss_before_kb"] / 1024, "{:,.1f}"), _fmt(r["rss_after_kb"] / 1024, "{:,.1f}"),
                  _fmt(r["kb_per_connection"], "{:,.1f}")] for r in rows if "error" not in r]
        parts.append("### 5. Idle connections: server RSS per held connection\n\n"
                     "Each row: a fresh server process, a warm-up of 20 connections, its resident memory (RSS); "
                     "then connections that complete the handshake and make no calls are held open, and RSS is "
                     "read again. KB/connection = (after - before) / held. Pyro5's thread server holds only as many "
                     "connections as its pool has threads%s and refuses the rest.\n\n" % _pool_phrase(rows) + _table(
                         ["server", "requested", "held", "refused", "RSS before MB", "RSS after MB", "KB/connection"],
                         cells + _errors(rows, 7)))
    if "oneway" in sc:
        rows = sc["oneway"]["rows"]
        cells = [[r["server"], _fmt(r["sent"]), _fmt(r["processed"]), _fmt(r["calls_per_s"]),
                  _fmt(r["send_rate_per_s"])] for r in rows if "error" not in r]
        parts.append("### 6. Oneway: one client sending oneway calls (rate = processed by the server)\n\n"
                     "Each row: one connection sends oneway calls back to back. *calls/s processed* counts until the "
                     "server has run all of them (checked with a normal call), so a server that only buffers them "
                     "does not look fast; *calls/s sent* is how fast the client handed them over.\n\n" + _table(
                         ["server", "sent", "processed", "calls/s processed", "calls/s sent"], cells + _errors(rows, 5)))
    if targets and data.get("targets"):
        cells = [[t["target"], t["requirement"], _fmt(t["measured"], "{:,.2f}"),
                  {True: "**met**", False: "**not met**", None: "no data"}[t["met"]], t["detail"]]
                 for t in data["targets"]]
        parts.append("### Targets (geopyro's default server type, greenlet)\n\n" + _table(
            ["target", "required", "measured", "status", "detail"], cells))
    return "\n\n".join(parts) + "\n"


def io_bound_table(data):
    """Concurrent sleeping calls. A server that refused connections did not do the same work, so it gets no wall
    time, only the reason."""
    rows = data["scenarios"]["io_bound"]["rows"]
    measured = [r for r in rows if "error" not in r and r.get("applies", True)]
    r0 = measured[0] if measured else {}
    cells = []
    for r in rows:
        if "error" in r:
            continue
        if not r.get("applies", True):
            cells.append([_name(r), "-", "-", "-", "-", "-", "n/a: " + r["note"], "-"])
            continue
        if r.get("refused"):
            wall, x_ideal, walls = "-", "n/a: " + refusal_note(r), "-"
        else:
            wall = _fmt(r["wall_s"] and r["wall_s"] * 1000, "{:,.1f}")
            x_ideal = _fmt(r["x_ideal"], "{:.2f}x")
            walls = " / ".join("{:,.0f}".format(w) for w in r.get("walls_ms", []))
        cells.append([_name(r), r["method"], _fmt(r["connections"]), _fmt(r["completed"]), _fmt(r["refused"]),
                      wall, x_ideal, walls])
    sleep_ms = _fmt(r0.get("sleep_s") and r0["sleep_s"] * 1000, "{:g}")
    return ("### 3. I/O-bound: concurrent calls to a method sleeping %s ms (median of %s bursts)\n\n"
            "Each row: %s connections connect first, then all of them at once call a method that waits %s ms, "
            "standing in for a call that waits on the network (a database, another service): `gevent.sleep` on "
            "geopyro (the method is marked `@cooperative`, so it runs inline in its connection's greenlet, without "
            "a thread), `time.sleep` on Pyro5's thread server, as its users write it. wall ms: from the start of "
            "the burst to the last reply (the median burst); the ideal is one sleep, %s ms. The multiplex servers "
            "run one call at a time, so they are not measured. Pyro5's thread server serves one connection per "
            "pool thread%s and refuses the rest; a burst it could not run in full gets no wall time. The row with "
            "a larger `THREADPOOL_SIZE` gives it a thread per connection, for reference (not its default).\n\n"
            % (sleep_ms, r0.get("bursts", 1), _fmt(r0.get("connections")), sleep_ms, sleep_ms, _pool_phrase(rows))
            + _table(["server", "sleep", "calls", "completed (each burst)", "refused", "wall ms", "vs ideal",
                      "every burst, ms"], cells + _errors(rows, 8)))


def pairs_table(rows):
    """Client/server pairs: every ratio is a median of per-round ratios (see benchmarks/programs.py)."""
    first = rows[0]
    cells = [[r["server"], r["process"] + (", %s sockets" % r["client_sockets"] if r.get("client_sockets") else ""),
              r["serializer"], _fmt(r["calls_per_s"]), _fmt(r["p50_us"], "{:,.1f}"),
              _fmt(r["vs_baseline"], "{:.2f}x"), "%.2f-%.2f" % tuple(r["vs_baseline_iqr"]),
              _fmt(r.get("vs_patched_baseline"), "{:.2f}x")] for r in rows]
    return ("### 1b. Latency by client and server program: echo(\"hello\"), one connection per row\n\n"
            "Each row: one client program calls one server program over one connection, one call after another. "
            "The clients run in two load processes, one ordinary (*unpatched*) and one monkey-patched by gevent "
            "(`patch_all()` first). geopyro server (unpatched): default settings, calls on its pool threads; "
            "(patched): the same server in a monkey-patched process, calls inline in the connection's greenlet. "
            "Every row is measured for %g s per round after a few unmeasured calls, %d rounds; in each round and "
            "for each serializer the two load processes take turns (which goes first alternates). calls/s and "
            "p50: medians over the rounds. **vs baseline**: median of the per-round ratios to `%s` measured in the "
            "same round by the unpatched process with the same serializer (above 1.00x is faster); *middle half*: "
            "25th-75th percentile of those ratios, how much one round moves. The last column compares rows of the "
            "patched process with `Pyro5 client (patched) -> Pyro5 thread server` in that same process.\n\n"
            % (first["slice_s"], first["rounds"], first["baseline"].split(" (")[0])
            + _table(["client -> server", "load process", "serializer", "calls/s", "p50 us", "vs baseline",
                      "middle half", "vs patched-process baseline"], cells))


def blocking_table(rows):
    measured = [r for r in rows if "error" not in r]
    r0 = measured[0] if measured else {}
    cells = [[r["server"], r["client"], _fmt(r["clients"]), _fmt(r["wall_s"], "{:.3f}"), _fmt(r["x_ideal"], "{:.2f}x"),
              _fmt(r.get("vs_pyro5"), "{:.2f}x"), _fmt(r.get("vs_pyro5_per_rep"), "{:.2f}x"),
              " / ".join("{:,.0f}".format(w) for w in r["walls_ms"])] for r in measured]
    return ("### 1c. Blocking: concurrent calls to a method doing time.sleep(%s s), median of %s repetitions\n\n"
            "Each row: %s threads of one client process, each with its own connection, call at the same moment a "
            "method that blocks in `time.sleep`, as a database driver or a C library does. The server processes "
            "are not monkey-patched, so geopyro runs the method on its pool threads. Wall time runs from the "
            "release of all calls to the last reply; the ideal is one sleep (every call overlapping). The "
            "servers take turns in every repetition.\n\n" % (r0.get("sleep_s"), r0.get("reps"), _fmt(r0.get("clients")))
            + _table(["server", "client", "calls at once", "wall s", "vs ideal", "vs Pyro5 thread (medians)",
                      "vs Pyro5 thread (median per repetition)", "every repetition, ms"], cells + _errors(rows, 8)))


# --- plot --------------------------------------------------------------------------------------

def plot(data, path):
    """Write the PNG; False when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sc = data["scenarios"]
    colors = {"geopyro greenlet": "#1b9e77", "geopyro multiplex": "#66c2a5", "Pyro5 thread": "#d95f02",
              "Pyro5 multiplex": "#fc8d62", "raw ceiling": "#7570b3"}
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle("geopyro vs Pyro5 — %s, %s CPUs, Python %s (%s mode)" % (
        data["meta"]["machine"]["cpu_model"], data["meta"]["machine"]["nproc"], data["meta"]["machine"]["python"],
        data["meta"]["mode"]))

    def bars(ax, rows, key, title, ylabel, name=lambda r: r["server"]):
        rows = [r for r in rows if "error" not in r and r.get("applies", True) and r.get(key) is not None]
        names = [name(r) for r in rows]
        values = [r[key] for r in rows]
        ax.bar(range(len(rows)), values, color=[colors.get(r["server"], "#999999") for r in rows])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        for i, v in enumerate(values):
            ax.annotate("{:,.0f}".format(v) if v >= 10 else "{:.2f}".format(v), (i, v), ha="center",
                        va="bottom", fontsize=7)

    if "latency" in sc:
        bars(axes[0][0], [r for r in sc["latency"]["rows"] if not r.get("reference_only") and r.get("table") != "pairs"],
             "calls_per_s",
             "1. latency: sequential calls/s (one client)", "calls/s")
    if "fanin" in sc:
        ax = axes[0][1]
        for server, color, style in [(s, c, "-") for s, c in colors.items()] + [
                (FANIN_PATCHED, colors["geopyro greenlet"], "--")]:
            pts = sorted((r["connections"], r["calls_per_s"]) for r in sc["fanin"]["rows"]
                         if r.get("server") == server and "error" not in r)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=server, color=color,
                        linestyle=style)
        ax.set_xscale("log")
        levels = sorted({r["connections"] for r in sc["fanin"]["rows"] if "connections" in r})
        ax.set_xticks(levels, ["{:,}".format(n) for n in levels], minor=False)
        ax.minorticks_off()
        ax.set_title("2. fan-in: aggregate calls/s vs connections", fontsize=10)
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel("calls/s")
        ax.legend(fontsize=7)
    if "io_bound" in sc:
        ax = axes[0][2]
        bars(ax, sc["io_bound"]["rows"], "wall_s", "3. I/O-bound: wall time of concurrent 50 ms calls", "seconds",
             name=lambda r: "%s\n(%d/%d done)" % (r["server"], r["completed"], r["connections"]))
        ideal = [r["sleep_s"] for r in sc["io_bound"]["rows"] if r.get("sleep_s")]
        if ideal:
            ax.axhline(ideal[0], color="black", linestyle="--", linewidth=1, label="ideal (one sleep)")
            ax.legend(fontsize=7)
        notes = ["%s: only %s of %s served,\n%s refused (pool of %s threads)" % (
            r["server"], _fmt(r.get("completed")), _fmt(r.get("connections")), _fmt(r["refused"]), _fmt(_pool(r)))
            for r in sc["io_bound"]["rows"] if "error" not in r and r.get("refused")]
        if notes:  # a server that refused connections has no bar: say why
            ax.text(0.02, 0.86, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="top")
    if "bulk" in sc:
        bars(axes[1][0], [r for r in sc["bulk"]["rows"] if not r.get("reference_only")], "mb_per_s", "4. bulk: MB/s echoing a %g MB payload" % (
            sc["bulk"]["rows"][0].get("payload_mb", 0)), "MB/s",
             name=lambda r: "%s\n%s" % (r["server"], r["serializer"]))
    if "idle" in sc:
        bars(axes[1][1], sc["idle"]["rows"], "kb_per_connection", "5. idle: server KB per held connection", "KB",
             name=lambda r: "%s\n(%d held)" % (r["server"], r["held"]))
    if "oneway" in sc:
        bars(axes[1][2], sc["oneway"]["rows"], "calls_per_s", "6. oneway: calls/s processed", "calls/s")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# --- the committed copy ------------------------------------------------------------------------

def machine_line(meta):
    m = meta["machine"]
    v = m["versions"]
    return ("%s; `nproc` = %s; %s GB RAM; %s %s on %s; geopyro %s, Pyro5 %s, gevent %s, greenlet %s, serpent %s, "
            "msgpack %s" % (m["cpu_model"], m["nproc"], m["mem_gb"], m["implementation"], m["python"],
                            m["platform"], v.get("geopyro"), v.get("Pyro5"), v.get("gevent"), v.get("greenlet"),
                            v.get("serpent"), v.get("msgpack")))


def publish(data, tables, png_path, bench_dir):
    """Rewrite the generated part of benchmarks/RESULTS.md and of the README's summary, and copy the plot
    to benchmarks/latest.png."""
    meta = data["meta"]
    block = "\n".join([
        MARK_BEGIN, "",
        "**Run:** %s, `%s` (%s mode, %.0f s)  " % (meta["date"], meta["command"], meta["mode"], meta["duration_s"]),
        "**Machine:** %s" % machine_line(meta), "",
        "![benchmark plot](latest.png)" if png_path else "(no plot: matplotlib was not installed)", "",
        tables.rstrip(), "", MARK_END])
    _replace_block(os.path.join(bench_dir, "RESULTS.md"), MARK_BEGIN, MARK_END, block,
                   "# Benchmark results\n\n## Latest full run\n\n%s\n%s\n" % (MARK_BEGIN, MARK_END))
    readme = os.path.join(os.path.dirname(os.path.abspath(bench_dir)), "README.md")
    if meta["mode"] != "default" or set(data["scenarios"]) != set(SUMMARY_SCENARIOS):
        print("the README's summary is kept: it comes from full runs only (this one: %s mode, %s)"
              % (meta["mode"], ", ".join(sorted(data["scenarios"]))), file=sys.stderr)
    elif os.path.exists(readme):
        _replace_block(readme, README_BEGIN, README_END, "\n".join([README_BEGIN, readme_summary(data), README_END]),
                       create=False)
    if png_path:
        shutil.copyfile(png_path, os.path.join(bench_dir, "latest.png"))


def _replace_block(path, begin, end, block, empty="", create=True):
    """Put ``block`` in place of the one marked by ``begin`` ... ``end`` in the file. Without exactly one such
    pair, in that order, the block is appended (``create``) or the file left alone with a warning."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = empty
    start, stop = text.find(begin), text.find(end)
    if text.count(begin) == 1 and text.count(end) == 1 and start < stop:
        text = text[:start] + block + text[stop + len(end):]
    elif create:
        text = text.rstrip() + "\n\n" + block + "\n"
    else:
        print("%s: not rewritten, it needs exactly one %r followed by one %r" % (path, begin, end), file=sys.stderr)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def readme_summary(data):
    """The README's table: one line per scenario, from the same run as RESULTS.md, worded for a reader choosing
    a server type (each cell says what its number is, refusals included)."""
    meta, sc = data["meta"], data["scenarios"]
    machine = meta["machine"]
    servers = ("geopyro greenlet", "geopyro multiplex", "Pyro5 thread", "Pyro5 multiplex")

    def row(scenario, server, **match):
        return _row(data, scenario, server, **match) or {}

    def pair(serializer):
        cells = []
        for name in ("geopyro client -> geopyro server (unpatched)",
                     "geopyro client (patched) -> geopyro server (patched)"):
            r = row("latency", name, serializer=serializer, table="pairs")
            cells.append(_fmt(r.get("vs_baseline"), "{:.2f}x"))
        return "%s (patched program: %s)" % tuple(cells)

    def refused(r):
        return "" if not r.get("refused") else ", %s refused" % _fmt(r["refused"])

    def fanin(server, n):
        r = row("fanin", server, connections=n)
        if not r:
            return "-"
        if r.get("refused"):
            return "%s from the %s connections it accepted%s" % (
                _fmt(r.get("calls_per_s")), _fmt(r.get("connected")), refused(r))
        return _fmt(r.get("calls_per_s"))

    def cpu200(server):
        r = row("fanin", server, connections=200)
        base = row("fanin", "Pyro5 multiplex", connections=200)
        if not r:
            return "-"
        return "%s µs (%s)%s" % (_fmt(r.get("server_cpu_us")), _fmt(_ratio(r.get("server_cpu_us"),
                                                                         base.get("server_cpu_us")), "{:.2f}x"),
                                 refused(r))

    def bulk(server):
        return " / ".join(_fmt(row("bulk", server, serializer=ser, allocator="default").get("mb_per_s"))
                          for ser in ("msgpack", "serpent"))

    def io(server):
        rows = [r for r in sc.get("io_bound", {}).get("rows", []) if r.get("server") == server]
        r = rows[0] if rows else None
        if r is None or "error" in r:
            return "failed" if r else "-"
        if not r.get("applies", True):
            return "not measured: one call at a time"
        if r.get("refused"):
            pool = " (%s threads, one per connection)" % _fmt(_pool(r)) if _pool(r) else ""
            return "only %s of %s run, %s connections refused%s" % (
                _fmt(r.get("completed")), _fmt(r.get("connections")), _fmt(r["refused"]), pool)
        return "%s ms" % _fmt(r["wall_s"] * 1000 if r.get("wall_s") is not None else None)

    def idle(server):
        r = row("idle", server)
        return "%s (%s held%s)" % (_fmt(r.get("kb_per_connection"), "{:.1f}"), _fmt(r.get("held")), refused(r))

    blocking = row("blocking", "geopyro server (unpatched)")
    io_row = next((r for r in sc.get("io_bound", {}).get("rows", []) if r.get("sleep_s")), {})
    bulk_row = row("bulk", servers[0], serializer="msgpack", allocator="default")
    lines = [
        "Latest full run: %s, %s, %s CPUs, %s %s, Pyro5 %s, gevent %s; compare numbers within this one run. "
        "The server programs are not monkey-patched (Pyro5 programs are not), so geopyro runs calls on its thread "
        "pool; *patched program* is the same geopyro server in a program that ran `gevent.monkey.patch_all()`, "
        "where calls run inline. Pyro5's thread server serves one connection per pool thread and refuses the "
        "rest." % (
            meta["date"], machine["cpu_model"], machine["nproc"], machine["implementation"], machine["python"],
            machine["versions"].get("Pyro5"), machine["versions"].get("gevent")), "",
        "| scenario | geopyro greenlet | geopyro multiplex | Pyro5 thread | Pyro5 multiplex |",
        "| --- | --- | --- | --- | --- |",
        "| one client, sequential calls, serpent: geopyro client and server vs Pyro5's, calls/s (median ratio) "
        "| %s | | 1.00x | |" % pair("serpent"),
        "| the same with msgpack | %s | | 1.00x | |" % pair("msgpack"),
        "| %s calls at once to a method blocking %s s in `time.sleep`: time to the last reply | %s s | | %s s | |" % (
            _fmt(blocking.get("clients")), _fmt(blocking.get("sleep_s"), "{:g}"),
            _fmt(blocking.get("wall_s"), "{:.3f}"),
            _fmt(row("blocking", "Pyro5 thread server").get("wall_s"), "{:.3f}")),
        "| 200 connections calling nonstop: server CPU per call (vs Pyro5 multiplex; lower is better) "
        "| %s; patched program %s | %s | %s | %s |" % (
            cpu200(servers[0]), cpu200(FANIN_PATCHED), cpu200(servers[1]), cpu200(servers[2]), cpu200(servers[3])),
        "| 1,000 connections calling nonstop: calls/s, all together | %s; patched program %s | %s | %s | %s |" % (
            fanin(servers[0], 1000), fanin(FANIN_PATCHED, 1000), fanin(servers[1], 1000), fanin(servers[2], 1000),
            fanin(servers[3], 1000)),
        "| %s calls at once to a method waiting %s ms on I/O (geopyro: `gevent.sleep` in a `@cooperative` method, "
        "inline; Pyro5: `time.sleep`): time to the last reply (median) | %s |" % (
            _fmt(io_row.get("connections")), _fmt(io_row.get("sleep_s") and io_row["sleep_s"] * 1000, "{:g}"),
            " | ".join(io(s) for s in servers)),
        "| method computing 20 ms in pure Python: calls/s in 1 process; `geopyro-serve --workers 2` "
        "| %s; %s (%s) | | %s | |" % (
            _fmt(row("cpu_bound", "geopyro-serve --workers 1").get("calls_per_s"), "{:,.1f}"),
            _fmt(row("cpu_bound", "geopyro-serve --workers 2").get("calls_per_s"), "{:,.1f}"),
            _fmt(_ratio(row("cpu_bound", "geopyro-serve --workers 2").get("calls_per_s"),
                        row("cpu_bound", "geopyro-serve --workers 1").get("calls_per_s")), "{:.2f}x"),
            _fmt(row("cpu_bound", "Pyro5 thread").get("calls_per_s"), "{:,.1f}")),
        "| echo of a %s MB `bytes` payload: MB/s, msgpack / serpent | %s |" % (
            _fmt(bulk_row.get("payload_mb"), "{:g}"), " | ".join(bulk(s) for s in servers)),
        "| %s idle connections: server memory per connection, KB | %s |" % (
            _fmt(row("idle", servers[0]).get("connections")), " | ".join(idle(s) for s in servers)),
        "| %s oneway calls from one client: calls/s the server ran | %s |" % (
            _fmt(row("oneway", servers[0]).get("sent")),
            " | ".join(_fmt(row("oneway", s).get("calls_per_s")) for s in servers)),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit("use python -m benchmarks")
