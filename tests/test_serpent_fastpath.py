"""The serpent fast paths: the reader reads exactly what ast.literal_eval reads, or declines (NOT_READ);
the writer writes exactly what serpent writes, or declines (None)."""

import ast
import math

import serpent
from hypothesis import given, settings
from hypothesis import strategies as st

from geopyro import serializers
from geopyro.serpent_fastpath import NOT_READ, read, write


def same(a, b):
    """Equal in value and in type, all the way down (1 == 1.0 == True is not good enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) and same(k, kb) for k, kb in zip(a, b))
    if isinstance(a, (set, frozenset)):
        return a == b
    return a == b


def agrees(text):
    """read(text) declines, or gives what literal_eval gives; returns whether it read."""
    value = read(text)
    if value is NOT_READ:
        return False
    expected = ast.literal_eval(text)  # must not raise: read only accepts real literals
    assert same(value, expected), (text, value, expected)
    return True


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(st.text(), inner)
                   | st.dictionaries(st.integers(), inner) | st.frozensets(st.integers()).map(set)),
    max_leaves=20))
@settings(max_examples=600, deadline=None)
def test_serpent_output_is_read_as_serpent_reads_it(data):
    text = serpent.dumps(data).decode()
    agrees(text)


# what repr() writes as it is: printable characters, and no quotes or backslashes
PLAIN_TEXT = st.text(st.characters(blacklist_characters="'\"\\",
                                   blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
                     | st.just(" "))


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.floats(allow_nan=False) | PLAIN_TEXT,
    lambda inner: st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(PLAIN_TEXT, inner),
    max_leaves=20))
@settings(max_examples=400, deadline=None)
def test_plain_data_takes_the_fast_path(data):
    text = serpent.dumps(data).decode()
    assert agrees(text), text


SERPENTISH = st.lists(st.sampled_from(list("'\"()[]{},:-+.0123456789eE \t\n#\\\x00\x01\x02jx_")
                                      + ["None", "True", "False", "null", "true", "NaN", "Infinity", "abc"]),
                      max_size=40).map("".join)


@given(SERPENTISH)
@settings(max_examples=3000, deadline=None)
def test_odd_texts_are_read_as_literal_eval_reads_them_or_declined(text):
    agrees(text)


def test_cases():
    for text, expected in [
        ("(1)", 1), ("(1,)", (1,)), ("()", ()), ("((1,),)", ((1,),)), ("((1))", 1),
        ("('a','b')", ("a", "b")), ("{'k':(1,2)}", {"k": (1, 2)}), ("[None,True,False]", [None, True, False]),
        ("1e30000", math.inf), ("-1e30000", -math.inf), ("-0.0", -0.0), ("'caf\u00e9 \u20ac'", "caf\u00e9 \u20ac"),
        ("# serpent utf-8 python3.2\n('s','echo',('hello',),{})", ("s", "echo", ("hello",), {})),
        ("[1, 2]", [1, 2]), ("( )", ()), ("(1 )", 1), ("{'data': 'AAEC', 'encoding': 'base64'}",
                                                     {"data": "AAEC", "encoding": "base64"}),
    ]:
        assert same(read(text), expected), text
    for text in ["0\n ", " 1", "# serpent utf-8 python3.2\n 1", "- 1", "(1, )", "No ne", "NaN", "Infinity", "null", "true", "[1,]", "{1,2}", "{1:2}", "'a\\n'", '"it\'s"', "(,)", "1j",
                 "0x10", "01", "1.", ".5", "+1", "'a' 'b'", "# comment\n1", "'\x00'", "x", "'unclosed", "[1]]",
                 "1" * 5000, "(1]}", "{'a':[1)", "{'a':[1,)", "(1,2],'a':3}", "[" * 150 + "]" * 150]:
        assert read(text) is NOT_READ, text


def test_the_serpent_serializer_reads_the_same_either_way():
    serializer = serializers.get_serializer("serpent")
    for value in [("s", "echo", ("hello",), {}), "hello", [1, 2.5, None, {"a": [True]}], {"x": (1,)},
                  {1: "non-string key"}, {1, 2}, "it's", "two\nlines", b"bytes", 10 ** 100]:
        data = serializer.dumps(value)
        assert serializer.loads(data) == serpent.loads(data) if not isinstance(value, bytes) else True
    assert serializer.loadsCall(serializer.dumpsCall("obj", "method", (1, "x"), {"k": None})) == \
        ("obj", "method", (1, "x"), {"k": None})


ANY_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.complex_numbers(),
    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(st.text(), inner)
                   | st.dictionaries(st.integers() | st.floats(allow_nan=False) | st.none(), inner)
                   | st.frozensets(st.integers()) | st.frozensets(st.integers()).map(set)),
    max_leaves=25)


@given(ANY_DATA)
@settings(max_examples=600, deadline=None)
def test_writer_writes_what_serpent_writes_or_declines(data):
    written = write(data)
    if written is not None:
        assert written == serpent.dumps(data, module_in_classname=True)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple)
                                   | st.dictionaries(st.text() | st.integers(), inner)), max_leaves=25))
@settings(max_examples=400, deadline=None)
def test_plain_data_is_written_by_the_fast_path(data):
    try:
        data_text = serpent.dumps(data, module_in_classname=True)
    except UnicodeEncodeError:
        assert write(data) is None  # a lone surrogate: serpent reports it
        return
    assert write(data) == data_text


SERPENT_BRACKETS = st.lists(st.sampled_from(list("()[]{},:'a1") + ["'a'", "1,", "(1,"]), max_size=30).map("".join)


@given(SERPENT_BRACKETS)
@settings(max_examples=3000, deadline=None)
def test_bracket_soup_is_read_as_literal_eval_reads_it_or_declined(text):
    agrees(text)


def test_writer_declines_what_only_serpent_can_write():
    cyclic = []
    cyclic.append(cyclic)
    deep = []
    for _ in range(200):
        deep = [deep]
    for value in [b"bytes", {1, 2}, frozenset(), 1j, cyclic, deep, {(1, 2): 3}, {"a": object()}, Exception("x"),
                  10 ** 5000,
                  type("StrSubclass", (str,), {})("text")]:
        assert write(value) is None, value
