"""Which names a client's ``prefix`` or ``regex`` selects, with regexes that could run away refused first."""

import math
import re
import sys
import time

from .errors import NamingError

try:
    from re import _parser as _re_parser  # Python 3.11 and later
except ImportError:  # pragma: no cover - Python 3.9, 3.10
    import sre_parse as _re_parser

# --- filters ----------------------------------------------------------------------------------------------------

_CHARACTER_OPS = frozenset({"LITERAL", "NOT_LITERAL", "ANY", "IN", "AT", "CATEGORY", "RANGE", "NEGATE"})
_REPEAT_OPS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
_GROUP_OPS = {"SUBPATTERN": lambda av: av[-1], "ATOMIC_GROUP": lambda av: av, "ASSERT": lambda av: av[1],
              "ASSERT_NOT": lambda av: av[1]}


class _NameRegex:
    """A client's ``regex`` for list/remove, refused when matching it could run away.

    Python's ``re`` backtracks, and a match runs in C holding the GIL: no
    thread or greenlet switch can interrupt it, so one ``(a+)+$`` against
    ``'a'*40 + '!'`` would stop the whole process for hours. Running it on a
    thread does not help, and a subprocess per query is a heavy answer. So the
    pattern is read first (with ``re``'s own parser) and its worst case bounded:

    * backreferences and conditional groups are refused (matching with them is
      NP-hard);
    * an open-ended quantifier (``*``, ``+``, ``{m,}``, or more than 64) may
      only repeat a fixed sequence of characters (``[a-z]+``, ``(ab)*``): a
      nested quantifier or an alternation under one (``(a+)+``, ``(a|ab)*``)
      can backtrack exponentially and is refused. A bounded count of anything
      (``(\\w+\\.){1,3}``) is counted as if written out;
    * what is left backtracks at most ``choices * C(n + splits, splits)`` ways
      on a name of n characters, where ``splits`` counts the open-ended
      quantifiers (``*``, ``+``, ``{m,}``) and ``choices`` multiplies the
      alternatives and optional parts. That must stay under STEP_BUDGET (10**6,
      at most tens of milliseconds for one match) for every registered name,
      else the query is refused: ``.*foo.*`` is fine up to 1,400-character
      names, ``.*a.*b.*c.*d`` up to 67;
    * patterns longer than MAX_LENGTH characters are refused.

    Matching runs on the name server's query thread and gives up (NamingError)
    after TIME_BUDGET seconds; since each single match is short, the GIL goes
    back to the hub between names and other clients keep being served.
    """

    MAX_LENGTH = 1000
    STEP_BUDGET = 10 ** 6
    TIME_BUDGET = 5.0

    def __init__(self, pattern):
        if not isinstance(pattern, str):
            raise TypeError("regex must be a str")
        if len(pattern) > self.MAX_LENGTH:
            raise NamingError("regex refused: longer than %d characters" % self.MAX_LENGTH)
        try:
            self.regex = re.compile(pattern)
            parsed = _re_parser.parse(pattern)
        except (re.error, OverflowError) as exc:
            raise NamingError("invalid regex: " + str(exc)) from None
        except RecursionError:
            raise NamingError("regex refused: nested too deeply") from None
        self.splits, self.choices = self._cost(parsed)
        self.longest = self._longest_name(self.splits, self.choices)

    @classmethod
    def _refuse(cls, why):
        raise NamingError("regex refused: %s (the name server only takes patterns whose backtracking stays "
                          "bounded; see geopyro.nameserver._NameRegex)" % why)

    @classmethod
    def _cost(cls, parsed):
        """(splits, choices) of a parsed (sub)pattern; refuses what could run away."""
        splits, choices = 0, 1
        for op, av in parsed:
            kind = getattr(op, "name", None) or str(op)
            if kind in _CHARACTER_OPS:
                continue
            if kind in _GROUP_OPS:
                part_splits, part_choices = cls._cost(_GROUP_OPS[kind](av))
            elif kind == "BRANCH":
                costs = [cls._cost(alternative) for alternative in av[1]]
                part_splits, part_choices = max(s for s, _ in costs), sum(c for _, c in costs)
            elif kind in _REPEAT_OPS:
                part_splits, part_choices = cls._repeat_cost(*av)
            elif kind.startswith("GROUPREF"):
                cls._refuse("backreferences and conditional groups can take exponential time")
            else:
                cls._refuse("%s is not supported in a name server regex" % kind.lower())
            splits += part_splits
            choices *= part_choices
            if choices > cls.STEP_BUDGET:
                cls._refuse("too many alternatives and optional parts (more than %d ways to match)"
                            % cls.STEP_BUDGET)
            if splits > 64:
                cls._refuse("too many open-ended quantifiers")
        return splits, choices

    @classmethod
    def _repeat_cost(cls, low, high, body):
        splits, choices = cls._cost(body)
        if splits == 0 and choices == 1:  # a fixed sequence: only the count varies
            if low == high:
                return 0, 1
            if high != _re_parser.MAXREPEAT and high - low < 64:
                return 0, high - low + 1
            return 1, 1
        if high <= 64:  # a bounded count: as if each count were written out, as alternatives
            return splits * high, choices ** high * (high - low + 1)
        cls._refuse("a quantifier repeats something that can itself match in several ways (a nested quantifier "
                    "or an alternation), which can backtrack exponentially")

    @classmethod
    def _longest_name(cls, splits, choices):
        """The longest name the pattern may be matched against within STEP_BUDGET."""
        if splits == 0:
            return sys.maxsize
        low, high = 0, cls.STEP_BUDGET
        while low < high:
            middle = (low + high + 1) // 2
            if choices * math.comb(middle + splits, splits) <= cls.STEP_BUDGET:
                low = middle
            else:
                high = middle - 1
        return low

    def select(self, names):
        """The entries of ``names`` (name -> uri) whose name matches at its start, as ``re.match`` does."""
        longest = max(names, key=len, default="")
        if len(longest) > self.longest:
            self._refuse("with %d open-ended quantifiers it could backtrack too long on the %d-character name %r"
                         % (self.splits, len(longest), longest[:40] + ("..." if len(longest) > 40 else "")))
        match = self.regex.match
        deadline = time.monotonic() + self.TIME_BUDGET
        found = {}
        for name, uri in names.items():
            if match(name):
                found[name] = uri
            if time.monotonic() > deadline:
                raise NamingError("regex query stopped: it ran for more than %g s" % self.TIME_BUDGET)
        return found


class _NamePrefix:
    def __init__(self, prefix):
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        self.prefix = prefix

    def select(self, names):
        prefix = self.prefix
        return {name: uri for name, uri in names.items() if name.startswith(prefix)}


def _name_filter(prefix, regex):
    if prefix:
        return _NamePrefix(prefix)
    if regex:
        return _NameRegex(regex)
    return None
