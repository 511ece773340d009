"""Sequential calls, side by side: every client against every server, in alternating short slices.

    python -m benchmarks.sequential [--quick | --smoke] [--rounds N] [--slice SECONDS]
                                    [--pin both | --pin | --no-pin] [--json FILE]

Why this shape: on this 2-core machine the speed of the same loop swings by +-30 % within seconds
(other work shares it), so one long run per configuration compares configurations measured at
different moments. Here every configuration is measured in every round, for a short slice
(default 0.3 s) of sequential ``echo("hello")`` calls, in a shuffled order; a configuration's
ratio to the baseline (Pyro5 client -> Pyro5 thread server, same serializer) is taken in each
round, and the table gives the MEDIAN of those per-round ratios.

Processes: each server in its own process (benchmarks/server.py; the floor server is
benchmarks/floor.py); every unpatched client (geopyro's Proxy, Pyro5's Proxy, the floor
client) in ONE client process, so they all pay the same process; a second client process,
monkey-patched, holds the patched geopyro client (and a patched Pyro5 client for reference).
Only one connection calls at a time.

CPU per call is summed over all slices of a configuration and divided by its calls: the client's
from ``time.thread_time()`` around each slice, the server's from the server process's
``time.process_time()``, read by a ``cpu()`` call on the same connection before and after the slice.

Pinned (client processes on CPU 0, servers on CPU 1, set with sched_setaffinity on every thread)
and unpinned (the OS places everything) runs alternate round by round with ``--pin both``.
Progress goes to stderr, the markdown tables to stdout.
"""

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: python benchmarks/sequential.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report, run  # noqa: E402
from benchmarks.common import progress  # noqa: E402

SERVERS = {  # key -> (label, benchmarks.server spec, or None for the floor server)
    "p-thr": ("Pyro5 thread server", dict(impl="pyro5", kind="thread")),
    "g-thr": ("geopyro server (unpatched)", dict(impl="geopyro", kind="greenlet")),
    "g-inl": ("geopyro server (patched)", dict(impl="geopyro", kind="greenlet", patch=True)),
    "g-mux": ("geopyro multiplex server", dict(impl="geopyro", kind="multiplex")),
    "p-mux": ("Pyro5 multiplex server", dict(impl="pyro5", kind="multiplex")),
    "floor": ("FLOOR server", None),
}
CLIENTS = {  # key -> (label, library, patched process)
    "pyro5": ("Pyro5 client", "pyro5", False),
    "geopyro": ("geopyro client", "geopyro", False),
    "geopyro-p": ("geopyro client (patched)", "geopyro", True),
    "pyro5-p": ("Pyro5 client (patched)", "pyro5", True),
    "floor": ("FLOOR client", "floor", False),
}
PAIRS = (  # (client, server) in table order; the first is the baseline
    ("pyro5", "p-thr"),
    ("geopyro", "g-thr"), ("geopyro-p", "g-inl"), ("geopyro", "g-inl"), ("geopyro-p", "g-thr"),
    ("geopyro", "p-thr"), ("geopyro-p", "p-thr"), ("pyro5", "g-thr"), ("pyro5", "g-inl"), ("pyro5-p", "p-thr"),
    ("pyro5", "p-mux"), ("geopyro", "g-mux"), ("geopyro", "p-mux"), ("pyro5", "g-mux"),
    ("geopyro-p", "g-mux"), ("geopyro-p", "p-mux"),
    ("floor", "floor"), ("geopyro", "floor"), ("geopyro-p", "floor"), ("pyro5", "floor"),
)
SERIALIZERS = ("serpent", "msgpack")
PROFILES = {"default": dict(rounds=12, slice_s=0.3, warmup=20), "quick": dict(rounds=3, slice_s=0.3, warmup=20),
            "smoke": dict(rounds=1, slice_s=0.05, warmup=5)}
MODES = {"pinned": "pinned: client processes on CPU {client}, server processes on CPU {server}",
         "unpinned": "unpinned: the OS places every process on any of CPUs {all}"}


def row_id(client, server, serializer):
    return "%s>%s:%s" % (client, server, serializer)


def row_label(client, server):
    return "%s -> %s" % (CLIENTS[client][0], SERVERS[server][0])


def plan_rows():
    """Every row: (id, client key, server key, serializer), in table order."""
    return [(row_id(c, s, ser), c, s, ser) for ser in SERIALIZERS for c, s in PAIRS]


BASELINE = PAIRS[0]


# --- processes and CPU affinity -----------------------------------------------------------------

def set_affinity(pid, cpus):
    """Every thread of ``pid`` onto ``cpus`` (threads made later inherit their creator's mask)."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tids = [str(pid)]
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # a thread that just ended
            pass


@contextlib.contextmanager
def started_processes(runner, warmup):
    """Start the servers and the two client processes; yield {server key: child}, {patched: child}."""
    keys = [k for k in SERVERS if SERVERS[k][1] is not None]
    with runner.servers([SERVERS[k][1] for k in keys]) as started:
        servers = {k: child for k, (child, _) in zip(keys, started)}
        uris = {k: uri for k, (_, uri) in zip(keys, started)}
        servers["floor"] = runner.spawn(["-m", "benchmarks.floor"], "floor-server")
        uris["floor"] = servers["floor"].expect("URI", 30)
        clients = {}
        try:
            for patched in (False, True):
                rows = [{"id": rid, "client": CLIENTS[c][1], "uri": uris[s], "serializer": ser}
                        for rid, c, s, ser in plan_rows() if CLIENTS[c][2] == patched]
                args = ["-m", "benchmarks.seqclient", "--rows", json.dumps(rows), "--warmup", str(warmup)]
                clients[patched] = runner.spawn(args + (["--patch"] if patched else []),
                                                "seqclient-%s" % ("patched" if patched else "unpatched"))
            for patched, child in clients.items():
                ready = json.loads(child.expect("READY", 120))
                progress("client process (%s): %d connections, geopyro's client on %s sockets" % (
                    "patched" if patched else "unpatched", ready["rows"],
                    "gevent" if ready["geopyro_client_uses_gevent"] else "blocking"))
            yield servers, clients
        finally:
            for child in list(clients.values()) + [servers["floor"]]:
                runner.stop(child)


def place(mode, servers, clients, cpus):
    if mode == "pinned":
        client_cpus, server_cpus = {cpus[0]}, {cpus[1]}
    else:
        client_cpus = server_cpus = set(cpus)
    for child in clients.values():
        set_affinity(child.pid, client_cpus)
    for child in servers.values():
        set_affinity(child.pid, server_cpus)
    for child, wanted in [(c, client_cpus) for c in clients.values()] + [(c, server_cpus) for c in servers.values()]:
        if os.sched_getaffinity(child.pid) != wanted:  # the main thread's mask, read back
            progress("warning: %s runs on CPUs %s, not %s" % (child.name, os.sched_getaffinity(child.pid), wanted))


# --- measuring ----------------------------------------------------------------------------------

def run_rounds(settings, modes, servers, clients, cpus, seed):
    """{mode: {row id: [one slice result per round]}}; modes alternate which goes first each round."""
    rows = plan_rows()
    data = {mode: {rid: [] for rid, _, _, _ in rows} for mode in modes}
    for r in range(settings["rounds"]):
        for m, mode in enumerate(modes if r % 2 == 0 else modes[::-1]):
            place(mode, servers, clients, cpus)
            order = list(rows)
            random.Random(seed * 1000 + r * 10 + m).shuffle(order)
            t0 = time.monotonic()
            for rid, client, _, _ in order:
                child = clients[CLIENTS[client][2]]
                child.send("SLICE %s %r" % (rid, settings["slice_s"]))
                data[mode][rid].append(json.loads(child.expect("DONE", 60)))
            progress("round %d/%d %-8s %s  (%.1f s)" % (r + 1, settings["rounds"], mode,
                                                        round_line(data[mode], r), time.monotonic() - t0))
    return data


def rate(piece):
    return piece["calls"] / piece["elapsed_s"]


def round_line(slices, r):
    """This round's serpent rate of the baseline and a few ratios to it, for the progress log."""
    base = rate(slices[row_id(*BASELINE, "serpent")][r])
    parts = ["P5->P5 %.0f/s" % base]
    for client, server in (("geopyro", "g-thr"), ("geopyro-p", "g-inl"), ("floor", "floor")):
        parts.append("%s %.2fx" % (short_name(client, server), rate(slices[row_id(client, server, "serpent")][r]) / base))
    return "serpent: " + ", ".join(parts)


def short_name(client, server):
    return "%s->%s" % (client.replace("geopyro", "g").replace("pyro5", "P5"), server)


def summarize(slices):
    """One dict per row: median rate, median per-round ratio (and middle half), CPU per call."""
    out = []
    for rid, client, server, ser in plan_rows():
        pieces = slices[rid]
        base = slices[row_id(*BASELINE, ser)]
        ratios = [rate(x) / rate(b) for x, b in zip(pieces, base)]
        calls = sum(x["calls"] for x in pieces)
        q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 3
        out.append({
            "id": rid, "row": row_label(client, server), "client": CLIENTS[client][0], "server": SERVERS[server][0],
            "client_process": "patched" if CLIENTS[client][2] else "unpatched", "serializer": ser,
            "rounds": len(pieces), "calls": calls,
            "calls_per_s": statistics.median(rate(x) for x in pieces),
            "calls_per_s_rounds": [round(rate(x)) for x in pieces],
            "vs_baseline": statistics.median(ratios), "vs_baseline_middle_half": [q[0], q[2]],
            "client_us_per_call": sum(x["client_cpu_s"] for x in pieces) / calls * 1e6,
            "client_process_us_per_call": sum(x["client_process_cpu_s"] for x in pieces) / calls * 1e6,
            "server_us_per_call": sum(x["server_cpu_s"] for x in pieces) / calls * 1e6,
        })
    return out


# --- output -------------------------------------------------------------------------------------

def markdown(results, settings, meta):
    lines = ["Sequential echo(\"hello\") calls, one connection per row; %d round%s of %g s slices per row; "
             "%s." % (settings["rounds"], "" if settings["rounds"] == 1 else "s", settings["slice_s"], meta["date"]),
             "Machine: %s; nproc = %s; CPython %s; geopyro %s, Pyro5 %s." % (
                 meta["machine"]["cpu_model"], meta["machine"]["nproc"], meta["machine"]["python"],
                 meta["machine"]["versions"].get("geopyro"), meta["machine"]["versions"].get("Pyro5")),
             "Ratio: median over rounds of (row / `%s`, same round, same serializer, same placement). "
             "Client CPU: the client thread's; server CPU: the whole server process's. "
             "FLOOR rows are not a product: benchmarks/floor.py, the least Python + gevent + serpent "
             "can do per call." % row_label(*BASELINE)]
    for mode, rows in results.items():
        lines += ["", "#### %s" % meta["placement"][mode], "",
                  "| row | serializer | calls/s (median) | vs Pyro5 -> Pyro5 thread (median ratio) | middle half "
                  "| client us/call | server us/call |",
                  "|---|---|---|---|---|---|---|"]
        for row in rows:
            lines.append("| %s | %s | %s | %.2fx | %.2f-%.2f | %.0f | %.0f |" % (
                row["row"], row["serializer"], format(round(row["calls_per_s"]), ","), row["vs_baseline"],
                row["vs_baseline_middle_half"][0], row["vs_baseline_middle_half"][1],
                row["client_us_per_call"], row["server_us_per_call"]))
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sequential", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="3 rounds")
    size.add_argument("--smoke", action="store_true", help="1 round of 0.05 s slices: proves it runs (tests)")
    parser.add_argument("--rounds", type=int, help="rounds (default 12, quick 3, smoke 1)")
    parser.add_argument("--slice", type=float, dest="slice_s", help="seconds per slice (default 0.3)")
    parser.add_argument("--pin", nargs="?", const="on", default="both", choices=("both", "on", "off"),
                        help="pinned and unpinned rounds (both, the default), pinned only (--pin) or unpinned only")
    parser.add_argument("--no-pin", dest="pin", action="store_const", const="off", help="unpinned only")
    parser.add_argument("--seed", type=int, default=1, help="seed of the slice order")
    parser.add_argument("--json", help="also write the results and every slice to this file")
    parser.add_argument("--output", default=run.DEFAULT_OUTPUT, help="directory for logs/ (default %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = dict(PROFILES["smoke" if args.smoke else "quick" if args.quick else "default"])
    for key in ("rounds", "slice_s"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    cpus = sorted(os.sched_getaffinity(0))
    modes = {"both": ["pinned", "unpinned"], "on": ["pinned"], "off": ["unpinned"]}[args.pin]
    if len(cpus) < 2 and "pinned" in modes:
        progress("only one CPU available: no pinned rounds")
        modes = ["unpinned"]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": report.machine_info(), "settings": settings,
            "placement": {m: MODES[m].format(client=cpus[0], server=cpus[-1], all=",".join(map(str, cpus)))
                          for m in modes},
            "command": "python -m benchmarks.sequential " + " ".join(argv if argv is not None else sys.argv[1:])}
    progress("sequential benchmark: %d rows x %s, %d rounds of %g s slices" % (
        len(plan_rows()), "/".join(modes), settings["rounds"], settings["slice_s"]))
    runner = run.Runner(settings, os.path.abspath(args.output))
    started = time.monotonic()
    try:
        with started_processes(runner, settings["warmup"]) as (servers, clients):
            data = run_rounds(settings, modes, servers, clients, cpus, args.seed)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        runner.cleanup()
    results = {mode: summarize(data[mode]) for mode in modes}
    meta["duration_s"] = round(time.monotonic() - started, 1)
    print(markdown(results, settings, meta))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results, "slices": data}, f, indent=1)
        progress("wrote %s" % args.json)
    progress("done in %.0f s" % meta["duration_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
