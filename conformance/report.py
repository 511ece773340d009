"""``--report FILE``: the conformance results as one self-contained HTML page.

The terminal table and ``--json`` serve people at a shell and programs; this page is
for sharing a run with someone who will open it in a browser, perhaps offline or
attached to a ticket. It therefore carries everything inline (CSS and a few lines of
optional JavaScript, no external resources) and renders only from the plain data that
:func:`conformance.cli.results_data` returns, so it can be rebuilt from a saved
``--json`` file as well: ``write_html(path, json.load(open(json_file)))``.

Layout: a summary line, a legend, links to the topics, then one table with the checks as
rows, grouped by topic (each result's ``topic``; for results saved before topics existed, the
check id up to its first "."), and the (server, client) pairs as columns; the header row and
the check column stay in view while scrolling.
Every outcome is shown as a word plus a symbol, not by colour alone. The sentence a check
verifies, its sources (document title and section, and the documentation's words where the
catalogue quotes them) and the messages of its non-passing cells are in its row's ``<details>``
(reachable with the keyboard) and in ``title`` attributes (on hover).
"""

import datetime
import html
import logging
import re

log = logging.getLogger(__name__)

# outcome -> (css class, symbol, cell text, meaning for the legend)
OUTCOMES = {
    "passed": ("pass", "\u2713", "pass", "as documented"),
    "failed": ("fail", "\u2717", "FAIL", "differs from the documented behaviour"),
    "error": ("error", "!", "ERROR", "the check could not run (setup or cleanup broke)"),
    "n/a": ("na", "\u2013", "n/a", "not applicable: the target lacks the feature"),
    "xfail": ("xfail", "~", "xfail", "known bug (catalogue.KNOWN_BUGS)"),
    "xpass": ("xpass", "\u2605", "XPASS", "known bug no longer seen"),
}
# summary key -> how the summary line names it (the order of the terminal's last line)
SUMMARY_WORDS = (("passed", "passed"), ("failed", "failed"), ("errors", "errors"),
                 ("not_applicable", "not applicable"), ("xfail", "xfail"), ("xpass", "xpass"))
NOT_RUN = ("notrun", "\u00b7", "not run", "this pair did not run the check")

CSS = """
:root { --line: #d8dee4; --muted: #57606a; --head: #f6f8fa; --topic: #eaeef2; }
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 24px 40px; color: #1f2328; background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code, pre, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
header { position: sticky; left: 24px; max-width: calc(100vw - 48px); }
h1 { font-size: 22px; margin: 0 0 6px; font-weight: 600; }
.summary { margin: 0 0 2px; }
.meta { margin: 0 0 12px; color: var(--muted); font-size: 13px; }
.badge { display: inline-block; padding: 0 9px; border-radius: 10px; font-weight: 700; color: #fff; }
.badge.ok { background: #1a7f37; }
.badge.bad { background: #cf222e; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 10px; padding: 0; list-style: none;
          font-size: 12.5px; color: var(--muted); }
.chip { display: inline-block; min-width: 5.2em; padding: 0 6px; border-radius: 3px; font-weight: 600;
        font-size: 12px; }
.topics { position: sticky; left: 24px; max-width: calc(100vw - 48px); margin: 0 0 10px; font-size: 13px;
          color: var(--muted); line-height: 1.9; }
.topics a { text-decoration: none; padding: 1px 7px; border-radius: 10px; margin-right: 2px; white-space: nowrap; }
.topics a:hover, .topics a:focus { text-decoration: underline; }
.controls { position: sticky; left: 24px; margin: 0 0 10px; font-size: 13px; }
.controls button { font: inherit; padding: 2px 10px; margin-right: 6px; border: 1px solid #c4ccd4;
                   border-radius: 6px; background: var(--head); cursor: pointer; }
.controls label { margin-left: 8px; }
table { border-collapse: separate; border-spacing: 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; vertical-align: top; }
thead th { position: sticky; top: 0; z-index: 3; background: var(--head); text-align: center; vertical-align: top;
           border-bottom: 2px solid #8c959f; font-weight: 600; white-space: nowrap; padding: 6px 12px; }
thead th.corner { left: 0; z-index: 4; text-align: left; }
thead th.title { text-align: left; }
thead .client { display: block; font-weight: 400; color: var(--muted); font-size: 12px; }
th.check { position: sticky; left: 0; z-index: 2; background: #fff; text-align: left; font-weight: 400;
           min-width: 19em; max-width: 36em; border-right: 1px solid var(--line); }
td.title { color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
           max-width: max(22em, calc(100vw - 31em - var(--pairs, 1) * 7em));
           border-left: 1px solid var(--line); }
tbody tr:hover th.check, tbody tr:hover td.title { background-color: #f3f6fa; }
tbody tr:hover td.cell { background-color: #f3f6fa; }
tr.topic th, tr.topic td { background: var(--topic); border-top: 1px solid #afb8c1; padding-top: 5px;
                           padding-bottom: 5px; }
tr.topic th { position: sticky; left: 0; z-index: 2; text-align: left; font-weight: 600; }
tr.topic td { text-align: center; color: var(--muted); white-space: nowrap; font-size: 12px; }
tr.topic .count { font-weight: 400; color: var(--muted); margin-left: 8px; font-size: 12px; }
tr.topic .count-fail, tr.topic .count-error { color: #a40e26; font-weight: 700; }
summary { cursor: pointer; white-space: nowrap; }
.detail { margin: 4px 0 6px 14px; white-space: normal; }
.detail p { margin: 2px 0; }
.detail .label { color: var(--muted); }
.detail ul { margin: 4px 0 0; padding-left: 0; list-style: none; }
.detail li { margin: 3px 0; }
.detail .why { color: var(--muted); }
.detail pre { margin: 3px 0 4px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px;
              background: var(--head); border: 1px solid var(--line); padding: 4px 6px; border-radius: 4px; }
td.cell { padding: 2px 3px; min-width: 6.5em; }
td.cell .chip { display: block; padding: 1px 6px; text-align: center; white-space: nowrap; font-size: 13px; }
.sym { display: inline-block; width: 1.2em; text-align: center; }
.pass { background: #dafbe1; color: #116329; }
.fail { background: #ffcecb; color: #82071e; }
.error { background: #ffd8b5; color: #7c2d00; }
.na { background: #f0f2f4; color: #57606a; font-weight: 400; }
.xfail { background: #fff8c5; color: #6b4300; font-weight: 400; }
.xpass { background: #e9d7fe; color: #5a1ea8; }
.notrun { background: #fff; color: #8c959f; font-weight: 400; }
td .fail, td .error, td .xpass { box-shadow: inset 0 0 0 1.5px currentColor; }
.hide-pass tr.allpass { display: none; }
footer { position: sticky; left: 24px; max-width: calc(100vw - 48px); margin-top: 16px; color: var(--muted);
         font-size: 12px; }
"""

# Optional: expand/collapse every row and hide rows that passed everywhere. The page
# is complete without it; the controls stay hidden when scripts do not run.
SCRIPT = """
(function () {
  var controls = document.getElementById("controls");
  controls.hidden = false;
  function openAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand").onclick = function () { openAll(true); };
  document.getElementById("collapse").onclick = function () { openAll(false); };
  document.getElementById("problems").onchange = function (e) {
    document.body.classList.toggle("hide-pass", e.target.checked);
  };
})();
"""


def write_html(path, data):
    """Write the report for ``data`` (what ``cli.results_data`` returns) to ``path``."""
    page = render(data)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    log.debug("conformance report written to %s (%d bytes)", path, len(page))


def render(data):
    """The whole page as a string."""
    pairs = _pairs(data)
    checks = _checks(data)
    cells = {(r["check"], r["server"], r["client"]): r for r in data.get("results", [])}
    heading = _heading(pairs)
    body = [
        "<header><h1>%s</h1>" % _esc(heading),
        _summary(data),
        _meta(data),
        _legend(),
        "</header>",
        _topic_index(checks, cells),
        _controls(),
        _table(pairs, checks, cells),
        "<footer>Written by <code>python -m conformance --report</code>. Hover a cell for its outcome and "
        "message; open a check (click or Enter) for the sentence it verifies, its source and every message "
        "that is not a pass. Rows with FAIL, ERROR or XPASS start open.</footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n%s\n<script>%s</script>\n</body>\n</html>\n"
            % (_esc(heading), CSS, "\n".join(body), SCRIPT))


# --- data -------------------------------------------------------------------------------

def _pairs(data):
    """The (server, client) columns: the run's pairs, then any others the results mention."""
    pairs = [(p["server"], p["client"]) for p in data.get("pairs", [])]
    for r in data.get("results", []):
        if (r["server"], r["client"]) not in pairs:
            pairs.append((r["server"], r["client"]))
    return pairs


def _checks(data):
    """{topic: {check id: a result row (for sentence/sources)}}, in the order the results list them."""
    topics = {}
    for r in data.get("results", []):
        topics.setdefault(r.get("topic") or topic_of(r["check"]), {}).setdefault(r["check"], r)
    return topics


def topic_of(check_id):
    """The topic of a result without one (saved by an older version): its check id up to the first "."."""
    return check_id.split(".", 1)[0]


def topic_anchor(topic):
    """The page anchor of a topic: "Binding, NAT and URIs" -> "topic-binding-nat-and-uris"."""
    return "topic-" + (re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-") or "other")


def _sources(row):
    """[(source text, quote or None)] of a result row: its ``sources`` list, or the older one-line ``source``."""
    if row.get("sources"):
        return [(c.get("text") or "%s, %s" % (c.get("title"), c.get("section")), c.get("quote"))
                for c in row["sources"]]
    return [(row.get("source") or "unknown", None)]


def pair_label(server, client):
    """How a pair is named on the page: one name when a target runs against itself."""
    return server if server == client else "%s / %s" % (server, client)


def _heading(pairs):
    if len(pairs) <= 2:
        return "Pyro conformance: %s" % ", ".join(pair_label(s, c) for s, c in pairs)
    names = sorted({name for pair in pairs for name in pair})
    return "Pyro conformance: %d pairs of %s" % (len(pairs), ", ".join(names))


def _look(outcome):
    """(css class, symbol, word, meaning) of an outcome; None means the pair did not run the check."""
    if outcome is None:
        return NOT_RUN
    return OUTCOMES.get(outcome, ("notrun", "?", outcome, "unknown outcome"))


def _topic_outcomes(rows, cells, pair=None):
    return [r["outcome"] for (cid, server, client), r in cells.items()
            if cid in rows and (pair is None or (server, client) == pair)]


def _pass_count(outcomes):
    """ "3/4 pass" (n/a cells are not counted), "n/a", or "" when there is nothing to count."""
    applicable = [o for o in outcomes if o != "n/a"]
    if not outcomes:
        return ""
    if not applicable:
        return "n/a"
    return "%d/%d pass" % (applicable.count("passed"), len(applicable))


def _health(outcomes):
    """The css class summing up several outcomes: the worst one wins."""
    for outcome, cls in (("failed", "fail"), ("error", "error"), ("xpass", "xpass"), ("xfail", "xfail")):
        if outcome in outcomes:
            return cls
    return "pass" if "passed" in outcomes else "na"


# --- html pieces ----------------------------------------------------------------------

def _esc(text):
    return html.escape("" if text is None else str(text), quote=True)


def _summary(data):
    s = data.get("summary", {})
    badge = '<span class="badge ok">OK</span>' if data.get("ok") else '<span class="badge bad">FAILED</span>'
    counts = ", ".join("%d %s" % (s.get(key, 0), "error" if key == "errors" and s.get(key) == 1 else word)
                       for key, word in SUMMARY_WORDS)
    return ('<p class="summary">%s &nbsp;%s results: %s &mdash; in %.1f s</p>'
            % (badge, _esc(s.get("total", len(data.get("results", [])))), _esc(counts),
               float(data.get("elapsed_seconds") or 0)))


def _meta(data):
    versions = ", ".join("%s %s" % (name, version) for name, version in sorted(data.get("versions", {}).items()))
    n_checks = len({r["check"] for r in data.get("results", [])})
    parts = ["versions: %s" % (versions or "unknown"),
             "%d of %s catalogue checks selected" % (n_checks, data.get("catalogue_size", "?")),
             "pytest exit code %s" % data.get("pytest_exit_code", "?"),
             "run finished %s" % data["finished"] if data.get("finished") else
             "generated %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")]
    return '<p class="meta">%s</p>' % " &middot; ".join(_esc(p) for p in parts)


def _legend():
    items = ['<li><span class="chip %s">%s</span> %s</li>' % (cls, _badge_text(sym, word), _esc(meaning))
             for cls, sym, word, meaning in list(OUTCOMES.values()) + [NOT_RUN]]
    return '<ul class="legend" aria-label="legend">%s</ul>' % "".join(items)


def _topic_index(checks, cells):
    links = []
    for topic, rows in checks.items():
        outcomes = _topic_outcomes(rows, cells)
        links.append('<a class="%s" href="#%s" title="%s">%s</a>'
                     % (_health(outcomes), _esc(topic_anchor(topic)), _esc(_pass_count(outcomes)), _esc(topic)))
    return '<nav class="topics" aria-label="topics">Topics: %s</nav>' % " ".join(links)


def _controls():
    return ('<div class="controls" id="controls" hidden>'
            '<button type="button" id="expand">Expand all</button>'
            '<button type="button" id="collapse">Collapse all</button>'
            '<label><input type="checkbox" id="problems"> hide checks that passed everywhere</label></div>')


def _badge_text(symbol, word):
    return '<span class="sym" aria-hidden="true">%s</span>%s' % (_esc(symbol), _esc(word))


def _table(pairs, checks, cells):
    head = "".join(_column_header(s, c) for s, c in pairs)
    out = ['<table style="--pairs: %d">' % len(pairs),
           '<thead><tr><th class="corner" scope="col">check <span class="client">server / client &rarr;</span></th>'
           '%s<th class="title" scope="col">behaviour</th></tr></thead>' % head]
    for topic, rows in checks.items():
        out.append('<tbody id="%s">' % _esc(topic_anchor(topic)))
        out.append(_topic_row(topic, rows, pairs, cells))
        out.extend(_check_row(cid, row, pairs, cells) for cid, row in rows.items())
        out.append("</tbody>")
    out.append("</table>")
    return "\n".join(out)


def _column_header(server, client):
    if server == client:
        return '<th scope="col" title="server and client: %s">%s</th>' % (_esc(server), _esc(server))
    return ('<th scope="col" title="server %s, client %s">%s<span class="client">/ %s</span></th>'
            % (_esc(server), _esc(client), _esc(server), _esc(client)))


def _topic_row(topic, rows, pairs, cells):
    everything = _topic_outcomes(rows, cells)
    tds = []
    for pair in pairs:
        outcomes = _topic_outcomes(rows, cells, pair)
        tds.append('<td class="count-%s">%s</td>' % (_health(outcomes), _esc(_pass_count(outcomes))))
    return ('<tr class="topic"><th scope="rowgroup">%s<span class="count count-%s">%s</span></th>%s<td></td></tr>'
            % (_esc(topic), _health(everything), _esc(_pass_count(everything)), "".join(tds)))


def _check_row(cid, row, pairs, cells):
    results = [cells.get((cid, s, c)) for s, c in pairs]
    outcomes = {r["outcome"] for r in results if r is not None}
    row_class = ' class="allpass"' if outcomes <= {"passed"} else ""
    hover = "%s\n%s" % (row.get("sentence") or row.get("title") or cid,
                        "\n".join("source: %s" % text for text, _quote in _sources(row)))
    opened = bool(outcomes & {"failed", "error", "xpass"})
    tds = "".join(_cell(cid, pair, r) for pair, r in zip(pairs, results))
    return ('<tr%s><th class="check" scope="row" title="%s">%s</th>%s<td class="title" title="%s">%s</td></tr>'
            % (row_class, _esc(hover),
               _details(cid, row, pairs, results, opened), tds, _esc(hover), _esc(row.get("title") or "")))


def _details(cid, row, pairs, results, opened):
    lines = ['<details%s><summary><span class="id">%s</span></summary>' % (" open" if opened else "", _esc(cid)),
             '<div class="detail">',
             '<p><span class="label">verifies:</span> &ldquo;%s&rdquo;</p>'
             % _esc(row.get("sentence") or row.get("title") or "(no sentence)")]
    for text, quote in _sources(row):
        if quote:
            lines.append('<p><span class="label">the documentation says:</span> <q>%s</q></p>' % _esc(quote))
        lines.append('<p><span class="label">source:</span> %s</p>' % _esc(text))
    if row.get("servertype"):
        lines.append('<p><span class="label">server type:</span> %s</p>' % _esc(row["servertype"]))
    notes = [_note(pair, r) for pair, r in zip(pairs, results) if r is None or r["outcome"] != "passed"]
    if notes:
        lines.append("<ul>%s</ul>" % "".join(notes))
    lines.append("</div></details>")
    return "\n".join(lines)


def _note(pair, result):
    """One pair's non-pass outcome: failures and errors with their message as a block, reasons inline."""
    cls, symbol, word, _meaning = _look(result and result["outcome"])
    text = '<li><span class="chip %s">%s</span> %s' % (cls, _badge_text(symbol, word), _esc(pair_label(*pair)))
    message = result and result.get("message")
    if message and (result["outcome"] in ("failed", "error") or "\n" in message):
        text += "<pre>%s</pre>" % _esc(message)
    elif message:
        text += ': <span class="why">%s</span>' % _esc(message)
    return text + "</li>"


def _cell(cid, pair, result):
    cls, symbol, word, _meaning = _look(result and result["outcome"])
    hover = "%s on %s: %s" % (cid, pair_label(*pair), word)
    if result and result.get("duration") is not None:
        hover += " (%.2f s)" % result["duration"]
    if result and result.get("message"):
        hover += "\n" + result["message"]
    return '<td class="cell" title="%s"><span class="chip %s">%s</span></td>' % (
        _esc(hover), cls, _badge_text(symbol, word))
