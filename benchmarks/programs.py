"""Client and server programs, monkey-patched by gevent or not: the latency pairs and the blocking scenario.

A geopyro server runs calls on OS threads in a plain program and inline in a patched one, and
geopyro's client follows its program too. The pairs step measures each client/server combination
that matters against Pyro5's client and thread server. The machine's speed swings by +-30 %
within seconds, so every row is measured in every round, in short alternating slices, by load
processes that keep one proxy per row; each row is then judged by the median of its per-round
ratios to the baseline measured in the same round.
"""

import json
import statistics

from benchmarks.common import progress

# the servers, each in its own process (benchmarks/server.py)
SERVERS = {
    "Pyro5 thread server": dict(impl="pyro5", kind="thread"),
    "geopyro server (unpatched)": dict(impl="geopyro", kind="greenlet"),
    "geopyro server (patched)": dict(impl="geopyro", kind="greenlet", patch=True),
}
UNPATCHED, PATCHED = "unpatched", "patched"  # the two load generator processes
# (client library, load process, server); the first row of each process is its baseline
PAIRS = (
    ("pyro5", UNPATCHED, "Pyro5 thread server"),
    ("geopyro", UNPATCHED, "geopyro server (unpatched)"),
    ("geopyro", PATCHED, "geopyro server (patched)"),
    ("pyro5", UNPATCHED, "geopyro server (unpatched)"),
    ("geopyro", UNPATCHED, "Pyro5 thread server"),
    ("pyro5", UNPATCHED, "geopyro server (patched)"),
    ("pyro5", PATCHED, "Pyro5 thread server"),
)
SERIALIZERS = ("serpent", "msgpack")
BLOCKING_SERVERS = ("geopyro server (unpatched)", "Pyro5 thread server")


def pair_name(client, process, server):
    return "%s client%s -> %s" % ({"pyro5": "Pyro5", "geopyro": "geopyro"}[client],
                                  " (patched)" if process == PATCHED else "", server)


BASELINE = pair_name(*PAIRS[0])
PATCHED_BASELINE = pair_name(*PAIRS[-1])


def slice_key(name, serializer):
    return "%s [%s]" % (name, serializer)


class StepFailed(RuntimeError):
    pass


# --- latency pairs ------------------------------------------------------------------------------

def load_rows(process, uris):
    """The rows one load process measures (every serializer), as its --rows JSON."""
    return json.dumps([{"name": slice_key(pair_name(client, proc, server), ser), "client": client,
                        "uri": uris[server], "serializer": ser}
                       for ser in SERIALIZERS for client, proc, server in PAIRS if proc == process])


def load_args(process, uris, slice_s):
    args = ["-m", "benchmarks.load", "--mode", "pairs", "--rows", load_rows(process, uris),
            "--duration", str(slice_s)]
    return args + (["--patch"] if process == PATCHED else [])


def pairs_step(runner):
    """Every round: per serializer, both load processes one after the other (alternating which goes first)."""
    s = runner.s
    names = list(SERVERS)
    with runner.servers([SERVERS[n] for n in names]) as started:
        uris = {name: uri for name, (_, uri) in zip(names, started)}
        loads = {p: runner.spawn(load_args(p, uris, s["pairs_slice_s"]), "load-pairs-" + p)
                 for p in (UNPATCHED, PATCHED)}
        try:
            ready = {p: json.loads(child.expect("READY", 120)) for p, child in loads.items()}
            rounds = {p: [] for p in loads}
            for r in range(s["pairs_rounds"]):
                for p in loads:
                    rounds[p].append({})
                for i, ser in enumerate(SERIALIZERS):
                    for p in (UNPATCHED, PATCHED) if (r + i) % 2 == 0 else (PATCHED, UNPATCHED):
                        loads[p].send("GO %d %s" % (r, ser))
                        rounds[p][r].update(json.loads(loads[p].expect("ROUND", 120))["rows"])
                progress("         pairs round %d/%d: %s" % (r + 1, s["pairs_rounds"], round_line(rounds, r)))
            for child in loads.values():
                child.send("STOP")
            for child in loads.values():
                child.expect("RESULT", 30)
        finally:
            for child in loads.values():
                runner.stop(child)
    rows = pair_rows(rounds, s["pairs_slice_s"], ready)
    return rows, "%d rounds; serpent: %s" % (s["pairs_rounds"], ", ".join(
        "%s %.2fx" % (short(r["server"]), r["vs_baseline"]) for r in rows
        if r["serializer"] == "serpent" and r["server"] != BASELINE))


def rate(measured):
    return measured["calls"] / measured["elapsed_s"]


def short(name):
    """A row name for one-line progress: 'geopyro client (patched) -> geopyro server (patched)' -> 'g(p)->g(p)'."""
    client, server = name.split(" -> ")
    abbrev = {"Pyro5": "P5", "geopyro": "g"}

    def one(part):
        return abbrev[part.split()[0]] + ("(p)" if "(patched)" in part else "")
    return one(client) + "->" + one(server)


def round_line(rounds, r):
    """This round's ratios (serpent) to the unpatched process's baseline, for the progress log."""
    base = rate(rounds[UNPATCHED][r][slice_key(BASELINE, "serpent")])
    parts = ["base %.0f/s" % base]
    for client, process, server in PAIRS[1:]:
        name = pair_name(client, process, server)
        parts.append("%s %.2f" % (short(name), rate(rounds[process][r][slice_key(name, "serpent")]) / base))
    return ", ".join(parts)


def quartiles(values):
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def ratios(slices, bases):
    return [rate(x) / rate(b) for x, b in zip(slices, bases)]


def pair_rows(rounds, slice_s, ready):
    """One row per pair and serializer: median calls/s and median per-round ratios to the baselines."""
    rows = []
    for ser in SERIALIZERS:
        base = [r[slice_key(BASELINE, ser)] for r in rounds[UNPATCHED]]
        patched_base = [r[slice_key(PATCHED_BASELINE, ser)] for r in rounds[PATCHED]]
        for client, process, server in PAIRS:
            name = pair_name(client, process, server)
            slices = [r[slice_key(name, ser)] for r in rounds[process]]
            vs_base = ratios(slices, base)
            row = {"server": name, "table": "pairs", "client": client, "server_program": server,
                   "process": process, "serializer": ser, "rounds": len(slices), "slice_s": slice_s,
                   "calls_per_s": statistics.median(rate(x) for x in slices),
                   "calls_per_s_rounds": [round(rate(x)) for x in slices],
                   "p50_us": statistics.median(x["p50_us"] for x in slices),
                   "p99_us": statistics.median(x["p99_us"] for x in slices),
                   "vs_baseline": statistics.median(vs_base), "vs_baseline_iqr": quartiles(vs_base),
                   "baseline": BASELINE + " (unpatched load process, same round, same serializer)"}
            if client == "geopyro":  # as the load process found it: it follows the program
                row["client_sockets"] = "gevent" if ready[process]["geopyro_client_uses_gevent"] else "blocking"
            if process == PATCHED:
                row["vs_patched_baseline"] = statistics.median(ratios(slices, patched_base))
            rows.append(row)
    return rows


# --- blocking calls -----------------------------------------------------------------------------

def blocking_step(runner):
    """4 threads of one unpatched process call time.sleep(...) on the server at once; servers alternate."""
    s = runner.s
    sleep, reps, clients = s["blocking_sleep"], s["blocking_reps"], s["blocking_clients"]
    with runner.servers([SERVERS[n] for n in BLOCKING_SERVERS]) as started:
        spec = [{"name": name, "client": "geopyro", "uri": uri} for name, (_, uri) in zip(BLOCKING_SERVERS, started)]
        (res,) = runner.load(None, "blocking", conns=clients, rows=json.dumps(spec), sleep=sleep, count=reps,
                             timeout=60 + 4 * reps * sleep * len(spec))
    walls = res["walls_s"]
    if res["errors"] or any(None in w for w in walls.values()):
        raise StepFailed("blocking calls failed: %s" % ("; ".join(res["errors"]) or "incomplete repetitions"))
    rows = [{"server": name, "client": "geopyro client, %d threads (unpatched)" % clients, "clients": clients,
             "method": "time.sleep", "sleep_s": sleep, "reps": reps, "wall_s": statistics.median(walls[name]),
             "walls_ms": [round(w * 1000, 1) for w in walls[name]]} for name in BLOCKING_SERVERS]
    for row in rows:
        row["x_ideal"] = row["wall_s"] / sleep
    geo, pyro = rows
    geo["vs_pyro5"] = geo["wall_s"] / pyro["wall_s"]
    geo["vs_pyro5_per_rep"] = statistics.median(a / b for a, b in zip(walls[geo["server"]], walls[pyro["server"]]))
    return rows, "%d x time.sleep(%g): geopyro %.3f s, Pyro5 %.3f s: %.2fx" % (
        clients, sleep, geo["wall_s"], pyro["wall_s"], geo["vs_pyro5"])
