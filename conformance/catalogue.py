"""The catalogue: every behaviour, the document it comes from, its topic, and where it applies.

A check is a function ``fn(ctx)`` (see :class:`conformance.harness.Ctx`) registered with
:func:`check`. It raises AssertionError with an expected-vs-actual message when the
target differs. Applicability is decided from the adapter modules alone (``LACKS``,
``SERIALIZERS``), so ``--list`` works without importing any implementation.

Every check carries

* its *sentence*: the one-line documented behaviour it verifies (``Check.title``);
* its *sources*: one or more :class:`Citation` - a :class:`Document` (by the title a Pyro
  user knows it by) and a section of it, optionally with the documentation's own words;
* exactly one *topic* from :data:`TOPICS`, taken from its id's area ("oneway.still-runs" ->
  "oneway") unless ``@check(..., topic=...)`` names it.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

from . import targets


# ---- the documents the checks cite -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Document:
    """A document the behaviours come from. ``key`` is for code; users only ever see ``title``."""
    key: str
    title: str
    manual: bool  # a manual chapter (sections are headings, shown quoted) or an API reference (API names)

    def __call__(self, section, note="", quote=""):
        """A :class:`Citation` of ``section`` of this document."""
        return Citation(self, section, note, quote)


@dataclasses.dataclass(frozen=True)
class Citation:
    """Where a behaviour is documented: a section of a document, optionally with the part of it
    (``note``: a note box, a keyword argument, ...) and the documentation's own words (``quote``)."""
    document: Document
    section: str
    note: str = ""
    quote: str = ""

    def about(self, note):
        """The same section, naming the part of it meant (a note box, an argument, ...)."""
        return dataclasses.replace(self, note=note)

    def section_text(self):
        """The section with the part meant: 'Creating a Daemon (nathost, natport)', 'URI (PYRONAME)'."""
        return "%s (%s)" % (self.section, self.note) if self.note else self.section

    def where(self):
        """The section as a reader finds it: 'section "Autoproxying"' in a manual, the API name in a reference."""
        text = 'section "%s"' % self.section if self.document.manual else self.section
        return "%s (%s)" % (text, self.note) if self.note else text

    def text(self):
        """'<document title>, <section>': how output names this source."""
        return "%s, %s" % (self.document.title, self.where())

    def as_dict(self):
        """--json's form: document title, section_text(), the documentation's words (or None), and text()."""
        return {"title": self.document.title, "section": self.section_text(), "quote": self.quote or None,
                "text": self.text()}


# The specification documents geopyro is built from (the seed files, in the order of their README).
PYRO5_SERVER_API = Document("pyro5-server-api", "Pyro5 API reference: Pyro5.server", manual=False)
PYRO4_CORE_API = Document("pyro4-core-api", "Pyro4 API reference: Pyro4.core", manual=False)
PYRO421_SERVERS = Document("pyro421-servers", "Pyro 4.21 manual, Servers chapter", manual=True)
# "Servers: hosting Pyro objects"; its plain-text and reStructuredText forms are one document
PYRO5_SERVERS = Document("pyro5-servers", "Pyro5 manual, Servers chapter", manual=True)
DOCUMENTS = (PYRO5_SERVER_API, PYRO4_CORE_API, PYRO421_SERVERS, PYRO5_SERVERS)


# ---- topics: how --list, the result table and the report group the checks -------------------

# (topic, the id areas - the part of a check id before the first "." - whose checks it holds), in output order
TOPICS = (
    ("Exposure and private names", ("expose", "private")),
    ("Oneway calls", ("oneway",)),
    ("Instance modes", ("instance",)),
    ("Autoproxy and callbacks", ("autoproxy",)),
    ("Registering objects", ("register", "attrs")),
    ("The daemon's Pyro interface", ("daemon",)),
    ("Binding, NAT and URIs", ("bind", "nat", "uri")),
    ("Request loop and serve()", ("loop", "serve")),
    ("Server types and concurrency", ("servertype", "execution")),
    ("Errors", ("errors",)),
    ("Handshake, annotations and call context", ("handshake", "annotations", "context", "disconnect")),
    ("Proxy connections and timeouts", ("proxy", "timeout")),
    ("Batch calls", ("batch",)),
    ("Streams and serialized blobs", ("stream", "blob")),
    ("Serializers", ("serializer",)),
    ("Name server", ("ns",)),
)
TOPIC_NAMES = tuple(name for name, _areas in TOPICS)
_TOPIC_OF_AREA = {area: name for name, areas in TOPICS for area in areas}


def topic_for(check_id, topic=None):
    """The one topic of a check: ``topic`` when given (it must be one of TOPICS), else its id's area's."""
    if topic is None:
        topic = _TOPIC_OF_AREA.get(check_id.split(".", 1)[0])
        if topic is None:
            raise ValueError("check %r: no topic for its area %r; add the area to catalogue.TOPICS or pass topic="
                             % (check_id, check_id.split(".", 1)[0]))
    elif topic not in TOPIC_NAMES:
        raise ValueError("check %r: unknown topic %r (one of: %s)" % (check_id, topic, ", ".join(TOPIC_NAMES)))
    return topic


CATALOGUE = []

# Known bugs of an implementation, found by this suite: {(check id, target): reason}.
# The check stays in the run as an expected failure (xfail) for that target until fixed.
KNOWN_BUGS: Dict[Tuple[str, str], str] = {}


@dataclasses.dataclass(repr=False)
class Check:
    id: str
    title: str              # the sentence, and "[multiplex server]" on a multiplex variant of a check
    sources: Tuple[Citation, ...]
    fn: Callable
    servertype: str = "concurrent"
    needs: Tuple[str, ...] = ()
    serializer: Optional[str] = None
    side: str = "both"      # "server": verified inside the server process; "client": client-side API only
    topic: str = ""
    sentence: str = ""      # the documented behaviour this check verifies, in one sentence

    @property
    def source(self):
        """Every source as text: '<document title>, <section>', joined by '; '."""
        return "; ".join(c.text() for c in self.sources)

    @property
    def quotes(self):
        """The documentation's own words, where the catalogue quotes them."""
        return [c.quote for c in self.sources if c.quote]

    def __repr__(self):
        return "<Check %s>" % self.id

    def describe(self, indent="    "):
        """The lines that say what this check verifies: its sentence (quoted), the documentation's own words
        where the catalogue quotes them, and each source as '<document title>, <section>'."""
        lines = ['%sverifies: "%s"' % (indent, self.sentence)]
        lines += ['%sthe documentation says: "%s"' % (indent, quote) for quote in self.quotes]
        lines += ["%ssource: %s" % (indent, citation.text()) for citation in self.sources]
        return lines

    def not_applicable(self, server, client):
        """The reason this check does not apply to the (server, client) pair, or None."""
        if targets.is_server_only(server):
            if self.side == "server":
                return "%s is a server command: this check runs inside a server process of the conformance " \
                       "package" % server
            if self.servertype not in targets.server_types_of(server):
                return "%s is a server command without {servertype}: it runs one server type only" % server
            if "daemon_hooks" in self.needs:
                return "%s is a server command: this check needs the test daemon's own hooks (validateHandshake, " \
                       "annotations) of objects.make_daemon_class" % server
        for feature in self.needs:
            for name in dict.fromkeys((server, client)):
                reason = getattr(targets.adapter_module(name), "LACKS", {}).get(feature)
                if reason:
                    return "%s: %s" % (name, reason)
        if self.serializer:
            for name in dict.fromkeys((server, client)):
                mod = targets.adapter_module(name)
                note = getattr(mod, "SERIALIZER_NOTES", {}).get(self.serializer)
                if self.serializer not in mod.SERIALIZERS and note:
                    return "%s: %s" % (name, note)
                if self.serializer not in mod.SERIALIZERS:
                    return "%s has no %r serializer (it has %s)" % (
                        name, self.serializer, ", ".join(targets.adapter_module(name).SERIALIZERS))
        return None

    def known_bug(self, server, client):
        for name in dict.fromkeys((server, client)):
            reason = KNOWN_BUGS.get((self.id, name))
            if reason:
                return "known %s bug: %s" % (name, reason)
        return None


def check(check_id, source, title, servertypes=("concurrent",), needs=(), serializer=None, side="both",
          topic=None):
    """Register the decorated function as one check per server type.

    ``source`` is a :class:`Citation` or a tuple of them; ``title`` is the sentence the check verifies;
    ``topic`` (one of TOPICS) is needed only when the id's area has none or belongs elsewhere.
    """
    sources = (source,) if isinstance(source, Citation) else tuple(source)
    if not sources or not all(isinstance(c, Citation) for c in sources):
        raise TypeError("check %r: source must be a Citation or a tuple of them, got %r" % (check_id, source))
    topic = topic_for(check_id, topic)

    def deco(fn):
        for servertype in servertypes:
            cid = check_id if len(servertypes) == 1 or servertype == "concurrent" else "%s-%s" % (check_id, servertype)
            suffix = " [multiplex server]" if servertype == "multiplex" and len(servertypes) > 1 else ""
            CATALOGUE.append(Check(cid, title + suffix, sources, fn, servertype, tuple(needs), serializer, side,
                                   topic, title))
        return fn
    return deco


def all_checks():
    from . import checks  # noqa: F401 - importing it registers the checks
    from . import checks_execution  # noqa: F401
    ids = [c.id for c in CATALOGUE]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuntimeError("duplicate check ids: %s" % sorted(dupes))
    return list(CATALOGUE)


def by_id():
    return {c.id: c for c in all_checks()}


def by_topic(checks=None):
    """{topic: [checks]} in the order of TOPICS (topics without checks left out), catalogue order inside."""
    checks = all_checks() if checks is None else checks
    grouped = {name: [] for name in TOPIC_NAMES}
    for chk in checks:
        grouped[chk.topic].append(chk)
    return {name: group for name, group in grouped.items() if group}


# ---- assertion helpers: every failure says what was expected and what was seen ----------

def expect(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def expect_true(condition, what, actual=None):
    if not condition:
        raise AssertionError("%s%s" % (what, "" if actual is None else " (got %r)" % (actual,)))


def expect_raises(exc_types, fn, what, contains=None):
    """Call fn; it must raise one of exc_types (with ``contains`` in its message). Returns the exception."""
    try:
        result = fn()
    except exc_types as exc:
        if contains is not None and contains not in str(exc):
            raise AssertionError("%s: expected %s mentioning %r, got %s: %s"
                                 % (what, _names(exc_types), contains, type(exc).__name__, exc))
        return exc
    except Exception as exc:  # noqa: BLE001 - reported as a mismatch
        raise AssertionError("%s: expected %s, got %s.%s: %s"
                             % (what, _names(exc_types), type(exc).__module__, type(exc).__name__, exc)) from exc
    raise AssertionError("%s: expected %s, but it returned %r" % (what, _names(exc_types), result))


def _names(exc_types):
    if isinstance(exc_types, tuple):
        return " or ".join(t.__name__ for t in exc_types)
    return exc_types.__name__
