"""A fast reader for the serpent text most calls carry; anything else is left to serpent itself.

``serpent.loads`` parses with ``ast.literal_eval``, which first compiles the
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
commas elsewhere, comments, whitespace between tokens (serpent's indented
form), other number forms, JSON-only words. The caller
then hands the text to serpent, which reads it or reports what is wrong with
it. Whatever ``read`` returns equals what ``ast.literal_eval`` returns for the
same text (tests/test_serpent_reader.py checks this on generated texts).
"""

import json
import re

__all__ = ["read", "NOT_READ"]

NOT_READ = object()

_HEADER = "# serpent utf-8 python3.2\n"
_PART_SEPARATOR = "\x02"  # joins the text outside the strings while it is rewritten
_GROUP, _TRAILING_COMMA = "\x00", "\x01"  # markers only the rewriting can produce
# what may stand outside the strings besides the letters of None, True and False; no whitespace: serpent
# writes none there, and Python's rules for it (indentation, line breaks) are not JSON's
_NOT_LETTERS = str.maketrans("", "", "()[]{},:0123456789.eE+-" + _PART_SEPARATOR)
_ONLY_CONSTANTS = re.compile(r"(?:Non|Tru|Fals)*\Z")  # the letters left of None, True, False ('e' removed)


def _refuse_constant(name):
    raise ValueError("not a Python literal: " + name)  # NaN, Infinity: JSON-only words


def _group(obj):
    """Object hook: a rewritten ``( ... )`` back to a tuple (or to the bare value of ``(x)``)."""
    items = obj.get(_GROUP)
    if items is None:
        return obj
    if items and items[-1] == _TRAILING_COMMA:
        del items[-1]
        return tuple(items)
    if len(items) == 1:
        return items[0]
    return tuple(items)


_decode = json.JSONDecoder(object_hook=_group, parse_constant=_refuse_constant).decode


def read(text):
    """The value of serpent ``text`` (a str, with or without serpent's header line), or NOT_READ."""
    if '"' in text or "\\" in text:
        return NOT_READ
    if text.startswith(_HEADER):
        text = text[len(_HEADER):]
    parts = text.split("'")  # outside, string, outside, string, ..., outside
    if not len(parts) & 1:
        return NOT_READ  # a quote left open
    outside = _PART_SEPARATOR.join(parts[0::2])
    letters = outside.translate(_NOT_LETTERS)
    if letters:
        if not _ONLY_CONSTANTS.match(letters):
            return NOT_READ  # a name, a comment, a JSON word, a control character, ...
        outside = outside.replace("None", "null").replace("True", "true").replace("False", "false")
    if "(" in outside or ")" in outside:
        outside = (outside.replace("()", '{"\\u0000":[]}').replace(",)", ',"\\u0001"]}')
                   .replace("(", '{"\\u0000":[').replace(")", "]}"))
    pieces = outside.split(_PART_SEPARATOR)
    if len(pieces) != len(parts) // 2 + 1:
        return NOT_READ
    parts[0::2] = pieces
    try:
        return _decode('"'.join(parts))
    except (ValueError, RecursionError):  # not JSON after all: serpent decides
        return NOT_READ
