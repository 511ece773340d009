"""``python -m conformance``: run the catalogue against one target, a wire pair, or the matrix.

Exit codes: 0 all applicable checks passed, 1 a check failed (or the run broke),
2 usage error (unknown target, missing package, incompatible pair).
"""

import argparse
import contextlib
import datetime
import importlib.util
import io
import itertools
import json
import os
import re
import sys
import tempfile
import time

from . import catalogue, harness, targets
from .targets import UsageError

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
EXECUTIONS = ("auto", "inline", "thread")
CELL = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "n/a": "n/a", "xfail": "xfail", "xpass": "XPASS"}


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m conformance",
                                 description="Run the documented Pyro behaviours against an implementation.")
    ap.add_argument("--target", help="use this target for both server and client: a target name, a module path "
                                     "(mypkg.myadapter) or a file (./my_adapter.py)")
    ap.add_argument("--server", help="server-side target of a wire-interop pair (named as for --target)")
    ap.add_argument("--client", help="client-side target of a wire-interop pair (named as for --target)")
    ap.add_argument("--server-command", metavar="COMMAND",
                    help="a server-only target: this command starts a server and prints its URI; the client-side "
                         "checks run against it over the wire ({servertype} in it becomes concurrent/multiplex)")
    ap.add_argument("--objects", help="with --server-command: the contract's object ids it registers, comma-separated "
                                      "(default: ask its daemon's registered())")
    ap.add_argument("--server-name", default="command", help="with --server-command: its name in results")
    ap.add_argument("--matrix", action="store_true", help="every target and every wire-compatible pair")
    ap.add_argument("--list", action="store_true",
                    help="print the catalogue by topic (each check's sentence, source and n/a notes) and exit")
    ap.add_argument("--list-targets", action="store_true",
                    help="print every target found (built in, entry points, and any named here) and where it came "
                         "from, then exit")
    ap.add_argument("-k", dest="keyword", help="pytest -k expression selecting checks (e.g. 'oneway or ns.')")
    ap.add_argument("--json", dest="json_file", help="write machine-readable results to this file")
    ap.add_argument("--report", dest="report_file",
                    help="write a self-contained HTML page of the results (checks by topic x pairs) to this file")
    ap.add_argument("-n", "--workers", default=None,
                    help="pytest-xdist workers (default: number of CPUs, 2..4; 0 = no xdist)")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-check time limit in seconds")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-check progress lines")
    ap.add_argument("--execution", choices=EXECUTIONS, default="auto",
                    help="where geopyro servers run calls: auto (a plain, unpatched program, as Pyro5 programs are: "
                         "calls on threads), inline (a monkey-patched program, every call in its connection's "
                         "greenlet), thread (every call on a thread); other targets ignore it")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.list:
            return list_catalogue(args)
        if args.list_targets:
            return list_targets(args)
        pairs = choose_pairs(args)
        return run(args, pairs)
    except UsageError as exc:
        print("conformance: error: %s" % exc, file=sys.stderr)
        return 2


def choose_pairs(args):
    if args.matrix:
        if args.target or args.server or args.client or args.server_command:
            raise UsageError("--matrix cannot be combined with --target/--server/--client/--server-command")
        return matrix_pairs()
    if args.server_command:
        if args.target or args.server:
            raise UsageError("--server-command is the server: choose only a --client")
        if not args.client:
            raise UsageError("--server-command needs a --client target to run the checks with (e.g. --client pyro5)")
        objects = [o.strip() for o in args.objects.split(",") if o.strip()] if args.objects else None
        args.server = targets.command_adapter(args.server_command, objects, name=args.server_name)
    elif args.objects:
        raise UsageError("--objects goes with --server-command")
    if args.target and (args.server or args.client):
        raise UsageError("use either --target or --server/--client")
    if args.target:
        server = client = targets.resolve(args.target)
    elif args.server or args.client:
        server = targets.resolve(args.server or args.client)
        client = targets.resolve(args.client or args.server)
    else:
        raise UsageError("choose what to run: --target NAME, --server NAME --client NAME, --server-command CMD "
                         "--client NAME, or --matrix (known targets: %s)" % ", ".join(targets.known_targets()))
    for name in (server, client):
        targets.check_installed(name)
    if targets.is_server_only(client):
        raise UsageError("%s is server-only (a server command): it cannot be the client" % client)
    if targets.wire_of(server) != targets.wire_of(client):
        raise UsageError("%s and %s speak different wire protocols (%s vs %s); they cannot be paired"
                         % (server, client, targets.wire_of(server), targets.wire_of(client)))
    return [(server, client)]


def matrix_pairs():
    """Every installed target against itself, and every wire-compatible (server, client) pair."""
    installed = _found_targets(targets.check_installed, "leaving %s out of the matrix")
    clients = [t for t in installed if not targets.is_server_only(t)]
    pairs = [(t, t) for t in clients]
    pairs += [(s, c) for s, c in itertools.permutations(installed, 2)
              if c in clients and targets.wire_of(s) == targets.wire_of(c)]
    return pairs


def _found_targets(usable, note):
    """The names of the targets found for which ``usable(name)`` raises no UsageError (a note says why not)."""
    names = []
    for name in targets.known_targets():
        try:
            usable(name)
            names.append(name)
        except UsageError as exc:
            print("conformance: note: %s: %s" % (note % name, exc), file=sys.stderr)
    return names


def list_targets(args):
    for spec in filter(None, (args.target, args.server, args.client)):
        targets.resolve(spec)
    if args.server_command:
        targets.resolve(targets.command_adapter(args.server_command, name=args.server_name))
    rows = targets.describe_targets()
    width = max(len(name) for name, _, _ in rows)
    for name, origin, status in rows:
        print("%-*s  %s" % (width, name, status))
        print("%-*s  from: %s" % (width, "", origin))
    return 0


def _selected(chk, keyword):
    return not keyword or any(word in chk.id or word in chk.title or word in chk.topic
                              for word in re.split(r"\s+or\s+|\s+", keyword) if word not in ("and", "not"))


def list_catalogue(args):
    checks = [c for c in catalogue.all_checks() if _selected(c, args.keyword)]
    names = _found_targets(targets.adapter_module, "target %s left out")
    groups = catalogue.by_topic(checks)
    for topic, group in groups.items():
        heading = "%s (%d check%s)" % (topic, len(group), "" if len(group) == 1 else "s")
        print("%s\n%s" % (heading, "=" * len(heading)))
        for chk in group:
            print("  %s%s" % (chk.id, "" if chk.servertype == "concurrent" else "  [%s server]" % chk.servertype))
            for line in chk.describe():
                print(line)
            for name in names:
                na = chk.not_applicable(name, name)
                if na:
                    print("    n/a for %s: %s" % (name, na))
                bug = chk.known_bug(name, name)
                if bug:
                    print("    xfail for %s: %s" % (name, bug))
        print()
    print("%d check%s in %d topic%s" % (len(checks), "" if len(checks) == 1 else "s",
                                        len(groups), "" if len(groups) == 1 else "s"))
    return 0


class Collector:
    """Receives test reports (from xdist workers too), prints progress, keeps results."""

    def __init__(self, quiet, out):
        self.quiet = quiet
        self.out = out
        self.total = None
        self.done = 0
        self.results = {}

    # collection size, with and without xdist
    def pytest_collection_finish(self, session):
        if self.total is None:
            self.total = len(session.items)

    def pytest_xdist_node_collection_finished(self, node, ids):
        if self.total is None:
            self.total = len(ids)

    def pytest_runtest_logreport(self, report):
        m = re.search(r"\[(.*)\]$", report.nodeid)
        if not m:
            return
        pair_text, check_id = m.group(1).split(":", 1)
        key = (pair_text, check_id)
        outcome = None
        message = ""
        if report.when == "setup":
            if report.skipped:
                outcome, message = "n/a", _skip_reason(report).replace("not applicable: ", "", 1)
            elif report.failed:
                outcome, message = "error", _failure_text(report)
        elif report.when == "call":
            if hasattr(report, "wasxfail"):
                outcome = "xfail" if report.skipped else "xpass"
                message = report.wasxfail
            elif report.passed:
                outcome = "passed"
            elif report.failed:
                outcome, message = "failed", _failure_text(report)
            else:
                outcome, message = "n/a", _skip_reason(report)
        elif report.when == "teardown" and report.failed:
            prev = self.results.get(key)
            if prev and prev["outcome"] == "passed":
                prev["outcome"], prev["message"] = "error", "cleanup failed: " + _failure_text(report)
            return
        if outcome is None:
            return
        self.results[key] = {"outcome": outcome, "message": message, "duration": round(report.duration, 3)}
        self.done += 1
        if not self.quiet:
            total = self.total or "?"
            line = "[%*d/%s] %-5s %-17s %s" % (len(str(total)), self.done, total, CELL[outcome], pair_text, check_id)
            if outcome in ("failed", "error"):
                line += "  -- " + message.splitlines()[0][:160] if message else ""
            print(line, file=self.out, flush=True)


def _skip_reason(report):
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).replace("Skipped: ", "", 1)
    return str(lr)


def _failure_text(report):
    """What went wrong, without pytest's decoration: a check's own mismatch message as it is (it says what
    was expected and what was seen), any other exception with its type."""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and crash.message:
        return re.sub(r"^AssertionError: ", "", crash.message)
    return report.longreprtext[-800:]


def _have_xdist():
    return importlib.util.find_spec("xdist") is not None


def run(args, pairs):
    started = time.monotonic()
    workers = args.workers
    if workers is None:
        workers = max(2, min(4, os.cpu_count() or 2))
    workers = int(workers)
    # workers (and server subprocesses) must import this package
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [harness.PACKAGE_PARENT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["CONFORMANCE_EXECUTION"] = args.execution  # read by the geopyro adapter in server processes
    pair_text = ",".join("%s/%s" % p for p in pairs)
    print("conformance: %s  (%d checks in the catalogue, %s, execution %s)"
          % (", ".join("server %s / client %s" % p for p in pairs), len(catalogue.all_checks()),
             "%d xdist workers" % workers if workers and _have_xdist() else "no xdist", args.execution),
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        ini = os.path.join(tmp, "pytest.ini")
        with open(ini, "w") as f:
            f.write("[pytest]\n")
        pytest_args = [os.path.join(PKG_DIR, "_entry.py"), "-c", ini, "--rootdir", harness.PACKAGE_PARENT,
                       "-p", "conformance.plugin", "--conformance-pairs", pair_text, "-p", "no:cacheprovider",
                       "-q"]
        if importlib.util.find_spec("pytest_timeout") is not None:
            pytest_args += ["--timeout", str(args.timeout)]
        if workers and _have_xdist():
            pytest_args += ["-n", str(workers)]
        if args.keyword:
            pytest_args += ["-k", args.keyword]
        collector = Collector(args.quiet, sys.stderr)
        captured = io.StringIO()
        import pytest
        with contextlib.redirect_stdout(captured):
            rc = pytest.main(pytest_args, plugins=[collector])
    elapsed = time.monotonic() - started
    rc = int(rc)
    broken = rc not in (0, 1, 5)
    if broken:
        sys.stderr.write(captured.getvalue()[-6000:])
        print("conformance: pytest stopped with exit code %d" % rc, file=sys.stderr)

    results = collector.results
    if not results and not broken:
        print("conformance: error: no checks selected%s" % (" by -k %r" % args.keyword if args.keyword else ""),
              file=sys.stderr)
        return 2
    checks = catalogue.by_id()
    ran = {cid for _pt, cid in results}
    pair_texts = ["%s/%s" % p for p in pairs]
    print_table(catalogue.by_topic([c for c in catalogue.all_checks() if c.id in ran]), pair_texts, results)
    counts = {k: sum(1 for r in results.values() if r["outcome"] == k) for k in CELL}
    problems = [(k, r) for k, r in sorted(results.items()) if r["outcome"] in ("failed", "error")]
    if problems:
        print("\nFailures:")
        for (pt, cid), r in problems:
            print("\n".join(failure_lines(pt, checks.get(cid), cid, r)))
    nas = [(k, r) for k, r in sorted(results.items()) if r["outcome"] == "n/a"]
    if nas:
        print("\nNot applicable:")
        for (pt, cid), r in nas:
            print("  %s %s: %s" % (pt, cid, r["message"]))
    xfails = [(k, r) for k, r in sorted(results.items()) if r["outcome"] in ("xfail", "xpass")]
    if xfails:
        print("\nKnown bugs (expected failures):")
        for (pt, cid), r in xfails:
            print("  %s %s: %s%s" % (pt, cid, r["message"], "  (now passes!)" if r["outcome"] == "xpass" else ""))
    ok = not problems and not broken and bool(results)
    print("\n%s: %d passed, %d failed, %d errors, %d not applicable, %d xfail, %d xpass in %.1fs"
          % ("OK" if ok else "FAILED", counts["passed"], counts["failed"], counts["error"], counts["n/a"],
             counts["xfail"], counts["xpass"], elapsed))
    if args.json_file or args.report_file:
        data = results_data(pairs, results, checks, counts, ok, elapsed, rc)
        if args.json_file:
            with open(args.json_file, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
        if args.report_file:
            from . import report
            report.write_html(args.report_file, data)
    return 0 if ok else 1


def failure_lines(pair_text, chk, check_id, result):
    """A failed (or broken) check, readable on its own: what failed where, the failure message, the sentence
    the check verifies and where the documentation says so."""
    servertype = "  [%s server]" % chk.servertype if chk is not None and chk.servertype != "concurrent" else ""
    lines = ["", "%s  %s  %s%s" % (CELL[result["outcome"]], pair_text, check_id, servertype)]
    message = (result["message"] or "(no message)").rstrip()
    lines.append("    " + message.replace("\n", "\n    "))
    if chk is not None:
        lines += chk.describe()
    return lines


def print_table(groups, pair_texts, results):
    """The behaviour x pair table, its rows under their topics ({topic: [checks]})."""
    ids = [c.id for group in groups.values() for c in group]
    width = max([len(i) + 2 for i in ids] + [9])
    colw = [max(len(p), 5) for p in pair_texts]
    print("\n%-*s  %s" % (width, "behaviour", "  ".join("%-*s" % (w, p) for w, p in zip(colw, pair_texts))))
    print("%s  %s" % ("-" * width, "  ".join("-" * w for w in colw)))
    for topic, group in groups.items():
        print(topic)
        for chk in group:
            cells = [CELL[results[(p, chk.id)]["outcome"]] if (p, chk.id) in results else "-" for p in pair_texts]
            print(("  %-*s  %s" % (width - 2, chk.id, "  ".join("%-*s" % (w, c) for w, c in zip(colw, cells))))
                  .rstrip())


def check_data(chk):
    """What --json says about a check besides its outcome: its topic, the sentence it verifies (``sentence``;
    ``title`` is the same, with "[multiplex server]" on a multiplex variant), its first source as
    ``source_title`` + ``section``, every source in ``sources`` (title, section, quote, text), all of them
    as one line in ``source``, and the documentation's words (``quotes``)."""
    if chk is None:
        return {"topic": None, "sentence": None, "title": None, "source_title": None, "section": None,
                "source": None, "sources": [], "quotes": [], "servertype": None}
    first = chk.sources[0]
    return {"topic": chk.topic, "sentence": chk.sentence, "title": chk.title, "source_title": first.document.title,
            "section": first.section_text(),
            "source": chk.source, "sources": [c.as_dict() for c in chk.sources], "quotes": chk.quotes,
            "servertype": chk.servertype}


def results_data(pairs, results, checks, counts, ok, elapsed, rc):
    """The results as plain data: what --json writes and what --report renders."""
    versions = {}
    for name in sorted({n for p in pairs for n in p}):
        try:
            versions[name] = targets.version_of(name)
        except Exception as exc:  # noqa: BLE001
            versions[name] = "unknown (%s)" % exc
    rows = []
    # by topic (in the order of catalogue.TOPICS), then catalogue order, then pair
    topic_order = {name: index for index, name in enumerate(catalogue.TOPIC_NAMES)}
    catalogue_order = {cid: (topic_order[chk.topic], index) for index, (cid, chk) in enumerate(checks.items())}
    pair_order = {"%s/%s" % pair: index for index, pair in enumerate(pairs)}
    for (pt, cid), r in sorted(results.items(), key=lambda item: (catalogue_order.get(item[0][1], (len(checks),)),
                                                                  pair_order.get(item[0][0], len(pairs)),
                                                                  item[0])):
        server, client = pt.split("/", 1)
        rows.append(dict({"check": cid, "server": server, "client": client, "outcome": r["outcome"],
                          "applicable": r["outcome"] != "n/a", "message": r["message"], "duration": r["duration"]},
                         **check_data(checks.get(cid))))
    finished = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"ok": ok, "pytest_exit_code": rc, "elapsed_seconds": round(elapsed, 2), "finished": finished,
            "pairs": [{"server": s, "client": c} for s, c in pairs], "versions": versions,
            "catalogue_size": len(checks), "topics": list(catalogue.by_topic(list(checks.values()))),
            "summary": {"total": len(rows), "passed": counts["passed"], "failed": counts["failed"],
                        "errors": counts["error"], "not_applicable": counts["n/a"], "xfail": counts["xfail"],
                        "xpass": counts["xpass"], "applicable": len(rows) - counts["n/a"]},
            "results": rows}
    return data
