"""The conformance suite (``python -m conformance``) stays green on geopyro, on Pyro5, and across the wire.

Each test runs the whole catalogue in a subprocess (which uses pytest-xdist itself) and reads
its ``--json`` report: exit code 0, at least 60 checks, every applicable check passed.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_conformance(tmp_path, *selection):
    report = tmp_path / "conformance.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    proc = subprocess.run([sys.executable, "-m", "conformance", *selection, "-q", "-n", "2", "--json", str(report)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, "conformance %s exited %d:\n%s" % (" ".join(selection), proc.returncode, output)
    data = json.loads(report.read_text())
    return data, output


@pytest.mark.parametrize("selection", [
    ("--target", "geopyro"),
    ("--target", "geopyro", "--execution", "inline"),
    ("--target", "geopyro", "--execution", "thread"),
    ("--target", "pyro5"),
    ("--server", "geopyro", "--client", "pyro5"),
    ("--server", "pyro5", "--client", "geopyro"),
    ("--server", "geopyro", "--client", "pyro5", "--execution", "inline"),
    ("--server-command", "%s -m conformance.contract_server --package Pyro5 --servertype {servertype}" % sys.executable,
     "--client", "geopyro"),
    ("--target", "geopyro4"),
    ("--server", "pyro4", "--client", "geopyro4"),
    ("--server", "geopyro4", "--client", "pyro4"),
], ids=["geopyro", "geopyro-inline", "geopyro-thread", "pyro5", "geopyro-server-pyro5-client",
        "pyro5-server-geopyro-client", "geopyro-inline-server-pyro5-client", "pyro5-server-command-geopyro-client",
        "geopyro4", "pyro4-server-geopyro4-client", "geopyro4-server-pyro4-client"])
def test_conformance_suite_passes(tmp_path, selection):
    data, output = run_conformance(tmp_path, *selection)
    assert data["ok"] is True, output
    results = data["results"]
    assert len(results) >= 60, "only %d checks ran" % len(results)
    bad = [r for r in results if r["applicable"] and r["outcome"] not in ("passed", "xfail", "xpass")]
    assert not bad, "applicable checks that did not pass: %s" % [(r["check"], r["outcome"], r["message"]) for r in bad]
    for r in results:
        if not r["applicable"]:
            assert r["message"], "check %s is not applicable without a reason" % r["check"]
    assert data["summary"]["applicable"] >= 60


def test_unknown_target_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "conformance", "--target", "no-such-target"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "geopyro" in proc.stderr and "pyro5" in proc.stderr, proc.stderr
