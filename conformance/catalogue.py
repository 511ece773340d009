"""The catalogue: every behaviour, the document it comes from, and where it applies.

A check is a function ``fn(ctx)`` (see :class:`conformance.harness.Ctx`) registered with
:func:`check`. It raises AssertionError with an expected-vs-actual message when the
target differs. Applicability is decided from the adapter modules alone (``LACKS``,
``SERIALIZERS``), so ``--list`` works without importing any implementation.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

from . import targets

# seed documents (in /work/shared/seeds); a check's source names one of these and a section
S000 = "000 Pyro5.server API"
S001 = "001 Pyro4.core API"
S002 = "002 Pyro 4.21 Servers"
S004 = "004 Pyro5 Servers (rst)"

CATALOGUE = []

# Known bugs of an implementation, found by this suite: {(check id, target): reason}.
# The check stays in the run as an expected failure (xfail) for that target until fixed.
KNOWN_BUGS: Dict[Tuple[str, str], str] = {}


@dataclasses.dataclass
class Check:
    id: str
    title: str
    source: str
    fn: Callable
    servertype: str = "concurrent"
    needs: Tuple[str, ...] = ()
    serializer: Optional[str] = None
    side: str = "both"      # "server": verified inside the server process; "client": client-side API only

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


def check(check_id, source, title, servertypes=("concurrent",), needs=(), serializer=None, side="both"):
    """Register the decorated function as one check per server type."""
    def deco(fn):
        for servertype in servertypes:
            cid = check_id if len(servertypes) == 1 or servertype == "concurrent" else "%s-%s" % (check_id, servertype)
            suffix = " [multiplex server]" if servertype == "multiplex" and len(servertypes) > 1 else ""
            CATALOGUE.append(Check(cid, title + suffix, source, fn, servertype, tuple(needs), serializer, side))
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
