"""The conformance HTML report (``python -m conformance --report FILE``, ``conformance/report.py``).

Most tests render a hand-made results dict (two pairs, two topics, every outcome, a hostile
message) and read the page back with the stdlib HTML parser; one runs the real command on
two checks; one opens the page in headless Chromium when it is installed.
"""

import html.parser
import json
import os
import subprocess
import sys

import pytest
from support import SEED_NUMBERING

from conformance import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
HOSTILE = "expected 'early' but got \"late\" <script>alert(1)</script> & <b>bold</b>"
PAIRS = [("geopyro", "geopyro"), ("geopyro", "pyro5")]
MANUAL = "Pyro5 manual, Servers chapter"
# check -> (topic, sentence, [(source title, section, quote)])
CHECKS = {
    "oneway.returns-early": ("Oneway calls", "a oneway call returns before the method has finished",
                             [(MANUAL, "Creating a Pyro class and exposing its methods and properties", None)]),
    "oneway.still-runs": ("Oneway calls", "the oneway method still runs on the server",
                          [("Pyro5 API reference: Pyro5.server", "oneway", None),
                           (MANUAL, "Server types and Concurrency model (note: ONEWAY_THREADED)",
                            "oneway method calls will be executed in a separate worker thread")]),
    "instance.session": ("Instance modes", "instance_mode 'session' gives each connection its own object",
                         [(MANUAL, "Controlling Instance modes and Instance creation", None)]),
}
# what a user must never see: the numbering of the specification files the catalogue was built from
# (check, server, client) -> (outcome, message); every outcome kind appears
OUTCOMES = {
    ("oneway.returns-early", "geopyro", "geopyro"): ("passed", ""),
    ("oneway.returns-early", "geopyro", "pyro5"): ("failed", HOSTILE),
    ("oneway.still-runs", "geopyro", "geopyro"): ("error", "cleanup failed: server did not stop"),
    ("oneway.still-runs", "geopyro", "pyro5"): ("xpass", "known geopyro bug: fixed now?"),
    ("instance.session", "geopyro", "geopyro"): ("n/a", "geopyro: no sessions here"),
    ("instance.session", "geopyro", "pyro5"): ("xfail", "known pyro5 bug: sessions leak"),
}
CELL_TEXT = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "n/a": "n/a", "xfail": "xfail", "xpass": "XPASS"}


def source_texts(check):
    return ["%s, %s" % (title, section) for title, section, _quote in CHECKS[check][2]]


def make_data():
    results = []
    for (check, server, client), (outcome, message) in sorted(OUTCOMES.items()):
        topic, sentence, sources = CHECKS[check]
        results.append({"check": check, "server": server, "client": client, "outcome": outcome,
                        "applicable": outcome != "n/a", "message": message, "duration": 0.25,
                        "topic": topic, "sentence": sentence, "title": sentence,
                        "source_title": sources[0][0], "section": sources[0][1],
                        "source": "; ".join(source_texts(check)),
                        "sources": [{"title": t, "section": sec, "quote": q, "text": "%s, %s" % (t, sec)}
                                    for t, sec, q in sources],
                        "quotes": [q for _t, _sec, q in sources if q], "servertype": "concurrent"})
    return {"ok": False, "pytest_exit_code": 1, "elapsed_seconds": 3.5,
            "pairs": [{"server": s, "client": c} for s, c in PAIRS],
            "versions": {"geopyro": "0.1.0", "pyro5": "5.17"}, "catalogue_size": 120,
            "summary": {"total": 6, "passed": 1, "failed": 1, "errors": 1, "not_applicable": 1, "xfail": 1,
                        "xpass": 1, "applicable": 5},
            "results": results}


class TableReader(html.parser.HTMLParser):
    """Collects the table's rows: each a list of cells {"tag", "attrs", "text"}; also the row's attrs."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append({"attrs": dict(attrs), "cells": []})
        elif tag in ("td", "th") and self.rows:
            self.cell = {"tag": tag, "attrs": dict(attrs), "text": ""}
            self.rows[-1]["cells"].append(self.cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "report.html"
    report.write_html(str(path), make_data())
    return path.read_text(encoding="utf-8")


@pytest.fixture
def rows(page):
    reader = TableReader()
    reader.feed(page)
    return reader.rows


def check_rows(rows):
    """{check id: row} for the rows of checks (not the header, not the topic rows)."""
    found = {}
    for row in rows:
        first = row["cells"][0]
        if first["tag"] == "th" and first["attrs"].get("scope") == "row":
            found[first["text"].split()[0]] = row
    return found


def test_report_is_a_complete_html_document(page):
    assert page.startswith("<!DOCTYPE html>")
    for part in ('<html lang="en">', '<meta charset="utf-8">', "<head>", "</head>", "<body>", "</body>", "<table",
                 "</table>"):
        assert part in page, part
    assert page.rstrip().endswith("</html>")
    assert "<title>Pyro conformance: geopyro, geopyro / pyro5</title>" in page


def test_report_has_no_external_references(page):
    lowered = page.lower()
    for needle in ('src="http', "src='http", 'href="http', "href='http", "<link", "@import", "url(", "//cdn"):
        assert needle not in lowered, needle


def test_report_has_a_column_per_pair(rows):
    header = [cell["text"] for cell in rows[0]["cells"]]
    assert header[0].startswith("check") and "server / client" in header[0]
    assert header[1:] == ["geopyro", "geopyro/ pyro5", "behaviour"]
    assert rows[0]["cells"][2]["attrs"]["title"] == "server geopyro, client pyro5"


def test_report_has_a_group_header_per_topic(rows):
    topics = [row for row in rows if row["attrs"].get("class") == "topic"]
    assert [row["cells"][0]["text"] for row in topics] == ["Instance modes0/1 pass", "Oneway calls1/4 pass"]
    # per pair: geopyro/geopyro has one n/a instance check (nothing to count), geopyro/pyro5 an xfail
    assert [cell["text"] for cell in topics[0]["cells"][1:3]] == ["n/a", "0/1 pass"]
    assert [cell["text"] for cell in topics[1]["cells"][1:3]] == ["1/2 pass", "0/2 pass"]
    assert topics[1]["cells"][1]["attrs"]["class"] == "count-error"


def test_report_cells_carry_the_outcome_words(rows):
    by_check = check_rows(rows)
    assert set(by_check) == set(CHECKS)
    for (check, server, client), (outcome, message) in OUTCOMES.items():
        cell = by_check[check]["cells"][1 + PAIRS.index((server, client))]
        assert cell["text"].endswith(CELL_TEXT[outcome]), (check, server, client, cell)
        assert cell["attrs"]["class"] == "cell"
        # the hover text names the outcome and carries the message (failure text, n/a reason, ...)
        assert CELL_TEXT[outcome] in cell["attrs"]["title"]
        assert message in cell["attrs"]["title"]


def test_report_colours_come_with_symbols(page):
    for css_class, symbol, word in (("pass", "\u2713", "pass"), ("fail", "\u2717", "FAIL"), ("error", "!", "ERROR"),
                                    ("na", "\u2013", "n/a"), ("xfail", "~", "xfail"),
                                    ("xpass", "\u2605", "XPASS")):
        chip = '<span class="chip %s"><span class="sym" aria-hidden="true">%s</span>%s</span>' % (
            css_class, symbol, word)
        assert chip in page, chip


def test_report_escapes_hostile_messages(page, rows):
    assert "<script>alert" not in page
    assert "<b>bold" not in page
    assert page.count("<script>") == 1  # the page's own small script, nothing from the data
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # read back through a parser, attributes and text give the message unchanged
    failed = check_rows(rows)["oneway.returns-early"]
    assert failed["cells"][2]["attrs"]["title"].endswith(HOSTILE)
    assert HOSTILE in failed["cells"][0]["text"]


def test_report_shows_sentence_and_sources(rows):
    by_check = check_rows(rows)
    for check, (_topic, sentence, sources) in CHECKS.items():
        first = by_check[check]["cells"][0]
        hover = "%s\n%s" % (sentence, "\n".join("source: " + text for text in source_texts(check)))
        assert first["attrs"]["title"] == hover  # on hover
        assert "verifies: \u201c%s\u201d" % sentence in first["text"]  # in the <details>, for the keyboard
        for text in source_texts(check):
            assert "source: " + text in first["text"]
        for _title, _section, quote in sources:
            if quote:
                assert "the documentation says: " + quote in first["text"]
        assert by_check[check]["cells"][-1]["text"] == sentence  # the behaviour column


def test_report_groups_results_without_a_topic_by_their_id(tmp_path):
    """A --json file written before checks had topics and sources still renders: topic = the id's area."""
    data = make_data()
    for row in data["results"]:
        for key in ("topic", "sentence", "source_title", "section", "sources", "quotes"):
            del row[key]
    page = report.render(data)
    reader = TableReader()
    reader.feed(page)
    topics = [row["cells"][0]["text"] for row in reader.rows if row["attrs"].get("class") == "topic"]
    assert topics == ["instance0/1 pass", "oneway1/4 pass"]
    first = check_rows(reader.rows)["oneway.still-runs"]["cells"][0]
    assert first["attrs"]["title"] == "the oneway method still runs on the server\nsource: %s" \
        % "; ".join(source_texts("oneway.still-runs"))


def test_report_details_hold_every_non_pass_message(page):
    for (check, server, client), (outcome, message) in OUTCOMES.items():
        if outcome in ("failed", "error"):
            assert "<pre>%s</pre>" % report.html.escape(message) in page, check
        elif outcome != "passed":  # n/a reasons and known bugs: inline
            assert '<span class="why">%s</span>' % report.html.escape(message) in page, check
    # rows with a failure, an error or an xpass start open; the others closed
    assert page.count("<details open>") == 2
    assert page.count("<details>") == 1


def test_summary_line(page):
    assert "1 passed, 1 failed, 1 error, 1 not applicable, 1 xfail, 1 xpass" in page
    assert "FAILED" in page and "3.5 s" in page
    assert "geopyro 0.1.0, pyro5 5.17" in page
    assert "3 of 120 catalogue checks selected" in page
    assert "generated 20" in page


def test_cli_writes_report(tmp_path):
    out, out_json = tmp_path / "report.html", tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    proc = subprocess.run([sys.executable, "-m", "conformance", "--target", "geopyro",
                           "-k", "oneway.returns-early or private.single-underscore", "-q", "-n", "0",
                           "--report", str(out), "--json", str(out_json)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out_json.read_text())
    ids = {r["check"] for r in data["results"]}
    assert ids == {"oneway.returns-early", "private.single-underscore"}
    page = out.read_text(encoding="utf-8")
    for check_id in ids:
        assert '<span class="id">%s</span>' % check_id in page
    assert 'id="topic-oneway-calls"' in page and 'id="topic-exposure-and-private-names"' in page
    assert "source: Pyro5 manual, Servers chapter, section &quot;Creating a Pyro class" in page
    assert not SEED_NUMBERING.search(page) and not SEED_NUMBERING.search(out_json.read_text())


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium at %s (apt-get install chromium)" % CHROMIUM)
def test_report_in_headless_chromium(tmp_path):
    """The page renders offline from a file: a screenshot with content, a DOM with the table, the script ran."""
    path = tmp_path / "report.html"
    report.write_html(str(path), make_data())
    shot = tmp_path / "report.png"
    common = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--user-data-dir=%s" % (tmp_path / "profile"), "--window-size=1400,900"]
    done = subprocess.run(common + ["--screenshot=%s" % shot, path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), "chromium wrote no screenshot (exit %s): %s" % (done.returncode, done.stderr[-2000:])
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 15000, "a %d-byte screenshot is about blank" % len(png)  # a blank 1400x900 page is ~6 KB
    done = subprocess.run(common + ["--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "</html>" in dom, "chromium printed no page (exit %s): %s" % (done.returncode, done.stderr[-2000:])
    assert "<table" in dom and "<thead>" in dom
    assert '<span class="id">oneway.returns-early</span>' in dom
    assert '<div class="controls" id="controls">' in dom  # the script un-hid the controls
