"""Run Pyro5's own test suite on geopyro and report what passes, file by file.

    python compat/pyro5_suite.py [--version 5.17] [--workdir DIR] [--markdown]

The script downloads Pyro5's source distribution from the package index
(``pip download --no-binary :all:``), unpacks its ``tests`` and ``certs``,
and runs every test file twice, each in its own pytest process:

* on Pyro5 itself, the baseline: what passes on this machine at all;
* on geopyro, through ``python -m geopyro.run -m pytest``, so each
  ``import Pyro5...`` in the tests loads geopyro (no test is edited).

A small conftest placed beside the tests checks, in each run, that
``Pyro5`` really is the implementation that run is meant to test.

The score is the share of the baseline's passing tests that also pass on
geopyro. ``test_threadpool.py`` is left out: it tests the internals of
Pyro5's thread pool, which geopyro replaces with greenlets.
"""

import argparse
import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree

LEFT_OUT = {"test_threadpool.py": "Pyro5's thread-pool internals; geopyro serves connections with greenlets"}
TEST_TIMEOUT = 120      # seconds one test may take (pytest-timeout)
FILE_TIMEOUT = 1200     # seconds one file's run may take

_CONFTEST = '''\
import os
import Pyro5

_expected = os.environ["PYRO5_SUITE_EXPECTS"]
_actual = "geopyro" if Pyro5.__name__ == "geopyro" else "Pyro5"
if _actual != _expected:
    raise RuntimeError("this run should test %s but Pyro5 is %s" % (_expected, Pyro5.__file__))


def pytest_configure(config):
    config.addinivalue_line("markers", "network: Pyro5's own marker for tests that use the network")
'''


def fetch_suite(version, workdir):
    """The tests folder in workdir: Pyro5's sdist is downloaded and its tests and certs unpacked there
    unless it is there already; the conftest that checks which Pyro5 is tested is (re)written."""
    tests = os.path.join(workdir, "tests")
    if not os.path.isdir(tests):
        _download(version, workdir)
    with open(os.path.join(tests, "conftest.py"), "w", encoding="utf-8") as f:
        f.write(_CONFTEST)
    return tests


def _download(version, workdir):
    download = os.path.join(workdir, "download")
    os.makedirs(download, exist_ok=True)
    print("downloading the Pyro5 %s source distribution ..." % version, flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                    "--dest", download, "Pyro5==%s" % version], check=True)
    archive, = glob.glob(os.path.join(download, "*.tar.gz"))
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        wanted = [m for m in tar.getmembers() if m.name.split("/")[1:2] in (["tests"], ["certs"])]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(download, members=wanted, filter="data")  # no links or paths out of the folder
        else:
            tar.extractall(download, members=wanted)
    for part in ("tests", "certs"):
        shutil.move(os.path.join(download, top, part), os.path.join(workdir, part))


def run_file(tests, filename, target):
    """Run one test file on one target; returns {test id: outcome}, outcome one of passed/failed/error/skipped."""
    report = os.path.join(tests, ".results", "%s-%s.xml" % (filename, target))
    os.makedirs(os.path.dirname(report), exist_ok=True)
    command = [sys.executable]
    if target == "geopyro":
        command += ["-m", "geopyro.run"]
    command += ["-m", "pytest", filename, "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                "--timeout", str(TEST_TIMEOUT), "--junitxml", report]
    env = dict(os.environ, PYRO5_SUITE_EXPECTS=target, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    try:
        subprocess.run(command, cwd=tests, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=FILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {}
    return read_junit(report)


def read_junit(path):
    outcomes = {}
    if not os.path.exists(path):
        return outcomes
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        name = "%s::%s" % (case.get("classname", ""), case.get("name"))
        tags = {child.tag for child in case}
        if "failure" in tags:
            outcomes[name] = "failed"
        elif "error" in tags:
            outcomes[name] = "error"
        elif "skipped" in tags:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", default=_installed_pyro5_version(), help="Pyro5 release whose suite to run")
    parser.add_argument("--workdir", help="where to unpack the suite (default: a fresh temporary folder)")
    parser.add_argument("--jobs", type=int, default=2, help="test files run at the same time (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print the per-file table as Markdown")
    args = parser.parse_args(argv)

    workdir = args.workdir or tempfile.mkdtemp(prefix="pyro5-suite-")
    tests = fetch_suite(args.version, workdir)
    files = sorted(f for f in os.listdir(tests) if f.startswith("test_") and f.endswith(".py"))
    runs = [(f, target) for f in files if f not in LEFT_OUT for target in ("Pyro5", "geopyro")]
    started = time.monotonic()
    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_file, tests, f, target): (f, target) for f, target in runs}
        for done in concurrent.futures.as_completed(futures):
            f, target = futures[done]
            results[f, target] = done.result()
            print("  ran %-24s on %-7s (%d of %d, %.0f s)" % (f, target, len(results), len(runs),
                                                             time.monotonic() - started), flush=True)
    return report(args.version, files, results, args.markdown)


def report(version, files, results, markdown):
    rows = []
    failures = []
    total_base = total_ok = 0
    for f in files:
        if f in LEFT_OUT:
            rows.append((f, "-", "-", "left out: " + LEFT_OUT[f]))
            continue
        base, ours = results[f, "Pyro5"], results[f, "geopyro"]
        baseline = [name for name, outcome in base.items() if outcome == "passed"]
        ok = [name for name in baseline if ours.get(name) == "passed"]
        total_base += len(baseline)
        total_ok += len(ok)
        missing = [name for name in baseline if ours.get(name) != "passed"]
        failures += [(name, ours.get(name, "not run (collection failed)")) for name in missing]
        rows.append((f, str(len(baseline)), str(len(ok)), "%.0f%%" % (100.0 * len(ok) / len(baseline))
                     if baseline else "-"))
    share = 100.0 * total_ok / total_base if total_base else 0.0
    header = ("file", "pass on Pyro5", "pass on geopyro", "share")
    if markdown:
        print("| %s |" % " | ".join(header))
        print("|---|---:|---:|---|")
        for row in rows:
            print("| %s |" % " | ".join(row))
        print("| **all** | %d | %d | **%.1f%%** |" % (total_base, total_ok, share))
    else:
        print("\n%-24s %14s %16s  %s" % header)
        for row in rows:
            print("%-24s %14s %16s  %s" % row)
        print("%-24s %14d %16d  %.1f%%" % ("all", total_base, total_ok, share))
    print("\nPyro5 %s suite on geopyro: %d of %d baseline tests pass (%.1f%%)" % (version, total_ok, total_base, share))
    if failures:
        print("\nnot passing on geopyro:")
        for name, outcome in failures:
            print("  %s: %s" % (name, outcome))
    return 0 if total_base else 1


def _installed_pyro5_version():
    try:
        from importlib.metadata import version
        return version("Pyro5")
    except Exception:
        return "5.17"


if __name__ == "__main__":
    sys.exit(main())
