"""Profile both sides of the latency scenario with py-spy (sampling; attaches to the running processes).

    python -m benchmarks.profile_latency [--duration 6] [--output benchmarks/results/profile]

For each pairing (geopyro client -> geopyro greenlet server, geopyro client -> Pyro5 thread server,
Pyro5 client -> Pyro5 thread server) it samples the server and the client while one client makes
sequential echo(42) calls, keeps py-spy's raw (collapsed) stacks, and prints the hottest functions,
self and inclusive, as a percentage of the non-idle samples.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import run  # noqa: E402

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def short(frame):
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return "%s (%s)" % (m.group("func"), path)


def analyse(raw_path, top=25):
    self_counts = collections.Counter()
    incl_counts = collections.Counter()
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count)
            frames = [short(fr) for fr in stack.split(";") if not fr.startswith("process ") and
                      not fr.startswith("thread ")]
            if not frames:
                continue
            total += count
            self_counts[frames[-1]] += count
            for fr in set(frames):
                incl_counts[fr] += count
    return {"samples": total,
            "self": [(f, round(100.0 * c / total, 1)) for f, c in self_counts.most_common(top)],
            "inclusive": [(f, round(100.0 * c / total, 1)) for f, c in incl_counts.most_common(top)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--output", default=os.path.join(run.HERE, "results", "profile"))
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        sys.exit("py-spy not found: pip install py-spy")
    os.makedirs(args.output, exist_ok=True)
    runner = run.Runner(dict(run.PROFILES["default"]), args.output)
    summary = {}
    try:
        for impl, kind, client in (("geopyro", "greenlet", "geopyro"), ("pyro5", "thread", "geopyro"),
                                   ("pyro5", "thread", "pyro5")):
            name = "%s-client_%s-%s-server" % (client, impl, kind)
            with runner.server(impl, kind) as (server, uri):
                spies = []

                def between(readies, server=server):
                    loads = [c for c in runner.children if "load-latency" in c.name]
                    for role, pid in (("server", server.pid), ("client", loads[-1].pid)):
                        out = os.path.join(args.output, "%s.%s.raw.txt" % (name, role))
                        spies.append((role, out, subprocess.Popen(
                            [pyspy, "record", "--pid", str(pid), "-r", str(args.rate), "-d",
                             str(int(args.duration)), "-f", "raw", "--nonblocking", "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
                    time.sleep(0.5)

                try:
                    (res,) = runner.load(uri, "latency", duration=args.duration + 1.0, client=client,
                                         between=between)
                finally:
                    for _, _, spy in spies:
                        try:
                            spy.wait(args.duration + 15)
                        except subprocess.TimeoutExpired:
                            spy.kill()
                            spy.wait()
                summary[name] = {"calls_per_s_while_profiled": res["calls"] / res["elapsed_s"]}
                for role, out, _ in spies:
                    summary[name][role] = analyse(out)
    except KeyboardInterrupt:
        return 130
    finally:
        runner.cleanup()
    with open(os.path.join(args.output, "profile.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for name, parts in summary.items():
        print("\n=== %s (%.0f calls/s while sampled)" % (name, parts["calls_per_s_while_profiled"]))
        for role in ("server", "client"):
            p = parts[role]
            print("--- %s: %d samples; self %% | inclusive %%" % (role, p["samples"]))
            for (fs, ps), (fi, pi) in zip(p["self"], p["inclusive"]):
                print("  %5.1f %-70s | %5.1f %s" % (ps, fs[:70], pi, fi[:90]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
