"""Fast paths for the plain serpent data most calls carry; anything else is left to serpent itself.

Reading. ``serpent.loads`` parses with ``ast.literal_eval``, which first compiles the
text into a Python syntax tree: for a small call that is most of the CPU the
whole request costs, on the client and on the server. Plain data as serpent
writes it is very nearly JSON, which the standard library parses in C. When
the text has no double quote and no backslash, every ``'`` delimits a string,
so the text outside the strings can be rewritten safely: None/True/False
become null/true/false, and a parenthesized group becomes a JSON object with
one reserved key ("\\x00", which no string of such a text can hold), that the
decoder's object hook turns back into a tuple, or into the bare value of
``(x)``. A trailing comma before ``)`` is marked, so that ``(x,)`` stays a
tuple.

``read`` returns ``NOT_READ`` for anything outside that subset: strings with
quotes, escapes or control characters, sets, non-string dict keys, trailing
commas elsewhere, comments, line breaks and tabs between tokens (serpent's
indented form), other number forms, JSON-only words. The caller
then hands the text to serpent, which reads it or reports what is wrong with
it. Whatever ``read`` returns equals what ``ast.literal_eval`` returns for the
same text (tests/test_serpent_fastpath.py checks this on generated texts).

Writing. ``serpent.dumps`` is a pure-Python visitor with a dispatch table,
registries and cycle bookkeeping. ``write`` writes plain data (exactly str,
int, bool, None, float, and tuples, lists and dicts of those) to the very
text serpent would write, and returns None for anything else, so the caller
asks serpent.
"""

import json
import re

__all__ = ["read", "write", "NOT_READ"]

NOT_READ = object()

_HEADER = "# serpent utf-8 python3.2\n"
_PART_SEPARATOR = "\x02"  # joins the text outside the strings while it is rewritten
_GROUP, _GROUP_END, _TRAILING_COMMA = "\x00", "\x03", "\x01"  # markers only the rewriting can produce
MAX_READ_DEPTH = 100  # Python's parser gives up on deep nesting sooner than JSON's: deeper texts go to serpent
# what may stand outside the strings besides the letters of None, True and False. Of whitespace only the
# space: serpent writes it in the dicts it makes of bytes (": ", ", "), and between tokens it means the same
# to JSON and to Python; JSON refuses where Python reads more (``- 1``, ``'a' 'b'``). Line breaks and tabs
# are refused (Python's rules for them are not JSON's), and so is a leading space (Python 3.9's parser
# refuses it as an indent).
_NOT_LETTERS = str.maketrans("", "", "()[]{},:0123456789.eE+- " + _PART_SEPARATOR)
_ONLY_CONSTANTS = re.compile(r"(?:Non|Tru|Fals)*\Z")  # the letters left of None, True, False ('e' removed)


def _refuse_constant(name):
    raise ValueError("not a Python literal: " + name)  # NaN, Infinity: JSON-only words


def _group(obj):
    """Object hook: a rewritten ``( ... )`` back to a tuple (or to the bare value of ``(x)``)."""
    items = obj.get(_GROUP)
    if items is None and _GROUP_END not in obj:
        return obj
    if items is None or _GROUP_END not in obj or len(obj) != 2:
        raise ValueError("mismatched brackets")  # '(' closed by ']' or '}', or '[', '{' closed by ')'
    if items and items[-1] == _TRAILING_COMMA:
        del items[-1]
        return tuple(items)
    if len(items) == 1:
        return items[0]
    return tuple(items)


_decode = json.JSONDecoder(object_hook=_group, parse_constant=_refuse_constant).decode


_BRACKETS = re.compile(r"[^()\[\]{}]")


def _too_deep(outside):
    """True when brackets nest deeper than MAX_READ_DEPTH (only counted when there are that many at all)."""
    if len(outside) < MAX_READ_DEPTH * 2:
        return False
    depth = deepest = 0
    for bracket in _BRACKETS.sub("", outside):
        if bracket in "([{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest > MAX_READ_DEPTH


def read(text):
    """The value of serpent ``text`` (a str, with or without serpent's header line), or NOT_READ."""
    if '"' in text or "\\" in text:
        return NOT_READ
    if text.startswith(_HEADER):
        text = text[len(_HEADER):]
    if text[:1] == " ":
        return NOT_READ
    if text[:1] == "'" and text.count("'") == 2 and text[-1:] == "'" and text.isprintable():
        return text[1:-1]  # one plain string, the most common reply
    parts = text.split("'")  # outside, string, outside, string, ..., outside
    if not len(parts) & 1:
        return NOT_READ  # a quote left open
    outside = _PART_SEPARATOR.join(parts[0::2])
    letters = outside.translate(_NOT_LETTERS)
    if letters:
        if not _ONLY_CONSTANTS.match(letters):
            return NOT_READ  # a name, a comment, a JSON word, a control character, ...
        outside = outside.replace("None", "null").replace("True", "true").replace("False", "false")
    if _too_deep(outside):
        return NOT_READ
    if "(" in outside or ")" in outside:
        # ')' also closes with a second key: a ']' or '}' closing a '(' (or ')' closing the others) is caught
        outside = (outside.replace("()", '{"\\u0000":[],"\\u0003":0}').replace(",)", ',"\\u0001"],"\\u0003":0}')
                   .replace("(", '{"\\u0000":[').replace(")", '],"\\u0003":0}'))
    pieces = outside.split(_PART_SEPARATOR)
    if len(pieces) != len(parts) // 2 + 1:
        return NOT_READ
    parts[0::2] = pieces
    try:
        return _decode('"'.join(parts))
    except (ValueError, RecursionError):  # not JSON after all: serpent decides
        return NOT_READ


_REPR_TYPES = frozenset((str, int, bool, type(None)))
_KEY_TYPES = frozenset((str, int, bool))  # dict keys serpent writes as they are (it refuses None)
MAX_WRITE_DEPTH = 50  # deeper data goes to serpent (which also tells a cycle from depth)


def write(value):
    """serpent's bytes for plain ``value``, header line included, or None when serpent must write it."""
    out = [_HEADER]
    try:
        if not _write(value, out, 0):
            return None
        return "".join(out).encode("utf-8")
    except (RecursionError, UnicodeEncodeError, ValueError):
        return None  # serpent says what is wrong (a lone surrogate, an int too long for text, ...)


def _write(value, out, depth):
    kind = type(value)
    if kind in _REPR_TYPES:
        out.append(repr(value))
        return True
    if kind is float:
        if value != value:
            out.append("{'__class__':'float','value':'nan'}")  # there is no literal for NaN
        elif value in (_INFINITY, -_INFINITY):
            out.append("1e30000" if value > 0 else "-1e30000")  # a literal that overflows to infinity
        else:
            out.append(repr(value))
        return True
    if depth >= MAX_WRITE_DEPTH:
        return False
    depth += 1
    if kind is tuple:
        out.append("(")
        for item in value:
            if not _write(item, out, depth):
                return False
            out.append(",")
        if len(value) > 1:
            out[-1] = ")"
        else:
            out.append(")")
        return True
    if kind is list:
        out.append("[")
        for item in value:
            if not _write(item, out, depth):
                return False
            out.append(",")
        if value:
            out[-1] = "]"
        else:
            out.append("]")
        return True
    if kind is dict:
        out.append("{")
        for key, item in value.items():
            if type(key) not in _KEY_TYPES or not _write(key, out, depth):
                return False
            out.append(":")
            if not _write(item, out, depth):
                return False
            out.append(",")
        if value:
            out[-1] = "}"
        else:
            out.append("}")
        return True
    return False


_INFINITY = float("inf")
