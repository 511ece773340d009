"""Reading a large serpent text with Python's parser in steps, none of which holds the interpreter lock long.

serpent reads with ``ast.literal_eval``, whose parser is C code that keeps the
interpreter lock from the first byte to the last: about 4 µs per item, so a
text of 500,000 small items stops every other thread (the hub serving the
other clients among them) for two seconds, even when it is parsed on a thread.

Here a large text is cut along its own structure instead. The outermost
container is scanned for its top-level commas (strings and nested brackets
skipped, by a regular expression); runs of small elements are handed to
``ast.literal_eval`` ``PIECE`` characters at a time, and an element larger
than that is read the same way, recursively. Each leaf is still read by
``literal_eval``, so nothing but literals can come out. For texts serpent
writes (and any text made of plain literals) the value equals
``ast.literal_eval(text)``; tests/test_serpent_steps.py checks this on
generated texts. A text this cannot cut (triple-quoted strings, nesting of
large containers deeper than ``MAX_DEPTH``, unbalanced brackets) is refused.
"""

import ast
import re

__all__ = ["read", "PIECE"]

PIECE = 32 * 1024  # characters handed to the parser at once: about 10,000 small items, some 40 ms
MAX_DEPTH = 64  # large containers nested deeper than this are refused (each level scans its text again)
MAX_NESTING = 200  # brackets nested deeper are refused at once, as Python's tokenizer refuses them
_TRIPLE_QUOTES = ("'''", '"""')
_STRUCTURE = re.compile("'''|\"\"\"|" + r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*'?|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|#[^\n]*|[\[\](){},:]""",
                        re.DOTALL)  # (a string without its closing quote is matched to the line's end: linear)
_SPACE = re.compile(r"(?:\s|#[^\n]*)*")
_NUMBER = r"(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d[\d_]*)?[jJ]?"
_NUMBER_TOKEN = re.compile(r"[-+]?(?:%s|[A-Za-z_]\w*)(?:[-+]%s)?" % (_NUMBER, _NUMBER))
_STRING_TOKEN = re.compile(r"""[bBrRuU]{0,2}(?:'[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")""",
                           re.DOTALL)
_CLOSER = {"[": "]", "(": ")", "{": "}"}


def read(text):
    """The literal in ``text`` (a str), parsed in steps of at most PIECE characters."""
    return _value(text, 0, len(text), 0)


def _value(text, start, end, depth):
    """The value of the literal ``text[start:end]``."""
    if end - start <= PIECE:
        return ast.literal_eval(text[start:end].strip())  # (an element of an indented text starts on a new line)
    first = _SPACE.match(text, start, end).end()
    last = len(text[first:end].rstrip()) + first - 1  # (comments after the value: literal_eval rejects them too)
    opener = text[first] if first < end else ""
    if opener not in _CLOSER or text[last] != _CLOSER[opener]:
        if last + 1 - first <= PIECE:  # small, after a long comment (serpent's header, say)
            return ast.literal_eval(text[start:end].strip())
        return _large_leaf(text[first:last + 1])
    if depth >= MAX_DEPTH:
        raise ValueError("large containers nested more than %d deep" % MAX_DEPTH)
    return _container(text, opener, first + 1, last, depth + 1)


def _large_leaf(text):
    """A large element that is not a container: one string (or bytes) literal, or one number (a complex one's
    two parts), is read in one step; anything else that large (``1+1+1...``) would hold the parser, and the
    lock, for seconds."""
    text = text.strip()
    if not (_STRING_TOKEN.fullmatch(text) or _NUMBER_TOKEN.fullmatch(text)):
        raise ValueError("a serpent element of %d characters that is neither a container nor a string" % len(text))
    return ast.literal_eval(text)


def _container(text, opener, start, end, depth):
    """The list, tuple, dict or set whose elements are ``text[start:end]``."""
    parts, commas, is_dict = _parts(text, start, end)
    if opener == "(" and commas == 0:
        return _value(text, start, end, depth) if parts else ()  # (x) is x; () the empty tuple
    if opener == "{" and not is_dict and not parts:
        return {}
    items = [] if opener != "{" else {} if is_dict else set()
    for kind, part_start, part_end, colon in parts:
        if kind == "run":
            run = ast.literal_eval(("{%s}" if opener == "{" else "[%s]") % text[part_start:part_end])
            if is_dict and not isinstance(run, dict) or opener == "{" and not is_dict and not isinstance(run, set):
                raise ValueError("malformed node or string: a dict or set mixes entries with and without keys")
            if opener == "{":
                items.update(run)
            else:
                items.extend(run)
        elif is_dict:
            if colon < 0:
                raise ValueError("malformed node or string: a dict entry without a key")
            key = text[part_start:colon]
            items[ast.literal_eval(key.strip()) if len(key) <= PIECE else _large_leaf(key)] = \
                _value(text, colon + 1, part_end, depth)
        elif opener == "{":
            items.add(_value(text, part_start, part_end, depth))
        else:
            items.append(_value(text, part_start, part_end, depth))
    return tuple(items) if opener == "(" else items


def _parts(text, start, end):
    """Cut a container's inside at its top-level commas: runs of small elements (up to PIECE characters
    together) and single large elements, as (kind, start, end, colon); also the number of top-level
    commas and whether the first element has a top-level colon (a dict)."""
    parts = []
    nesting = 0
    commas = 0
    is_dict = None
    run_start = element_start = start
    colon = -1
    for match in _STRUCTURE.finditer(text, start, end):
        char = text[match.start()]
        if char in "'\"":
            token = match.group()
            if token in _TRIPLE_QUOTES:
                raise ValueError("a large serpent text with triple-quoted strings cannot be read in steps")
            if len(token) < 2 or token[-1] != char or token[-2] == "\\" and not _closed(token):
                raise ValueError("malformed node or string: a string without its closing quote")
            continue
        if char in "([{":
            nesting += 1
            if nesting >= MAX_NESTING:
                raise ValueError("too many nested parentheses")
        elif char in ")]}":
            nesting -= 1
            if nesting < 0:
                raise ValueError("malformed node or string: unbalanced brackets")
        elif nesting == 0 and char == ":":
            if colon < 0:
                colon = match.start()
        elif nesting == 0 and char == ",":
            position = match.start()
            if not text[element_start:position].strip():
                raise ValueError("malformed node or string: an empty element")
            if is_dict is None:
                is_dict = colon >= 0
            commas += 1
            run_start = _close_element(text, parts, run_start, element_start, position, colon)
            element_start, colon = position + 1, -1
    if nesting != 0:
        raise ValueError("malformed node or string: unbalanced brackets")
    if is_dict is None:
        is_dict = colon >= 0
    if commas and not text[element_start:end].strip():
        _add_run(text, parts, run_start, element_start - 1)  # up to a trailing comma (which makes (x,) a tuple)
    else:
        run_start = _close_element(text, parts, run_start, element_start, end, colon)
        _add_run(text, parts, run_start, end)
    return parts, commas, is_dict


def _closed(token):
    """True when a quoted token ends with its quote rather than an escaped one."""
    backslashes = len(token) - 1 - len(token[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _close_element(text, parts, run_start, element_start, element_end, colon):
    """Account for the element ``text[element_start:element_end]``; returns where the current run starts.

    A run never grows past PIECE: an element that would make it do so starts the next one.
    """
    if element_end - element_start > PIECE:
        _add_run(text, parts, run_start, element_start - 1)  # the run before it, without its comma
        parts.append(("one", element_start, element_end, colon))
        return element_end + 1
    if element_end - run_start > PIECE:
        _add_run(text, parts, run_start, element_start - 1)
        return element_start
    return run_start


def _add_run(text, parts, start, end):
    if end > start and text[start:end].strip():
        parts.append(("run", start, end, -1))
