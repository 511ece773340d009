"""The conformance suite (``python -m conformance``) stays green on geopyro, on Pyro5, and across the wire.

Each test runs the whole catalogue in a subprocess (which uses pytest-xdist itself) and reads
its ``--json`` report: exit code 0, at least 60 checks, every applicable check passed. The
catalogue's own tests: every check has exactly one topic and names its sources by document
title and section; ``--list`` groups the checks by topic.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from support import SEED_NUMBERING

from conformance import catalogue

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




def test_every_check_has_exactly_one_topic():
    checks = catalogue.all_checks()
    areas = [area for _name, topic_areas in catalogue.TOPICS for area in topic_areas]
    assert len(areas) == len(set(areas)), "an id area is in two topics: %s" % areas
    assert len(set(catalogue.TOPIC_NAMES)) == len(catalogue.TOPIC_NAMES)
    grouped = catalogue.by_topic()
    for chk in checks:
        assert isinstance(chk.topic, str) and chk.topic in catalogue.TOPIC_NAMES, (chk.id, chk.topic)
        assert [topic for topic, group in grouped.items() if chk in group] == [chk.topic], chk.id
    assert sum(len(group) for group in grouped.values()) == len(checks)
    assert list(grouped) == list(catalogue.TOPIC_NAMES), "a topic without checks: %s" % (
        set(catalogue.TOPIC_NAMES) - set(grouped))


def test_a_check_without_a_topic_is_refused():
    source = catalogue.PYRO5_SERVERS("Autoproxying")
    with pytest.raises(ValueError, match="no topic for its area 'nosuch'"):
        catalogue.check("nosuch.thing", source, "a sentence")
    with pytest.raises(ValueError, match="unknown topic"):
        catalogue.check("oneway.thing", source, "a sentence", topic="Not a topic")
    with pytest.raises(TypeError, match="Citation"):
        catalogue.check("oneway.thing", "004 Pyro5 Servers (rst) \u00a7Autoproxying", "a sentence")
    assert catalogue.topic_for("expose.x") == "Exposure and private names"
    assert catalogue.topic_for("execution.x", topic="Oneway calls") == "Oneway calls"


def test_every_check_names_its_sentence_and_sources_by_title():
    titles = {doc.title for doc in catalogue.DOCUMENTS}
    for chk in catalogue.all_checks():
        assert chk.sentence and chk.title.startswith(chk.sentence), chk.id
        assert chk.sources and all(c.document.title in titles and c.section for c in chk.sources), chk.id
        for line in chk.describe():
            assert not SEED_NUMBERING.search(line), (chk.id, line)
    cited = catalogue.PYRO5_SERVERS("Creating a Daemon", "nathost, natport")
    assert cited.text() == 'Pyro5 manual, Servers chapter, section "Creating a Daemon" (nathost, natport)'
    assert catalogue.PYRO5_SERVER_API("Daemon.uriFor").text() == "Pyro5 API reference: Pyro5.server, Daemon.uriFor"


def test_list_groups_the_checks_by_topic():
    proc = subprocess.run([sys.executable, "-m", "conformance", "--list"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not SEED_NUMBERING.search(out), out
    lines = out.splitlines()
    headings = [line for i, line in enumerate(lines) if i + 1 < len(lines) and re.fullmatch(r"=+", lines[i + 1])]
    assert [re.sub(r" \(\d+ checks?\)$", "", h) for h in headings] == list(catalogue.TOPIC_NAMES), headings
    # under "Oneway calls": every oneway.* check, each with its quoted sentence and its source
    start = lines.index(next(h for h in headings if h.startswith("Oneway calls")))
    end = lines.index(headings[headings.index(lines[start]) + 1])
    section = lines[start:end]
    ids = [line.split()[0] for line in section if line.startswith("  ") and not line.startswith("    ")]
    assert ids == [c.id for c in catalogue.all_checks() if c.id.startswith("oneway.")], section
    at = section.index("  oneway.still-runs")
    assert section[at + 1] == '    verifies: "the oneway method still runs on the server"'
    assert section[at + 2] == ('    source: Pyro5 manual, Servers chapter, section "Creating a Pyro class and exposing '
                               'its methods and properties" (the @oneway decorator)')
    assert lines[-1] == "%d checks in %d topics" % (len(catalogue.all_checks()), len(catalogue.TOPICS))
