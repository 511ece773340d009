"""Reading serpent in steps: the same value as ast.literal_eval, with no step larger than PIECE characters."""

import ast

import pytest
import serpent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geopyro import serpent_steps
from test_serpent_fastpath import same

LITERALS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text() | st.binary(max_size=8)
    | st.complex_numbers(allow_nan=False, allow_infinity=False),
    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(st.text(), inner)
                   | st.dictionaries(st.integers(), inner) | st.frozensets(st.integers()).map(set)
                   | st.frozensets(st.text(max_size=3)).map(set)),
    max_leaves=30)


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Pieces of a few characters, so that small texts are cut as large ones are (the same for every
    generated input: the list of step sizes is cleared by each check)."""
    steps = []
    original = ast.literal_eval

    def counted(text):
        steps.append(len(text))
        return original(text)

    monkeypatch.setattr(serpent_steps, "PIECE", 12)
    monkeypatch.setattr(serpent_steps.ast, "literal_eval", counted)
    return steps


def read_as_literal_eval_does(text, steps):
    expected = ast.literal_eval(text)
    steps.clear()
    value = serpent_steps.read(text)
    assert same(value, expected), (text, value, expected)
    return value


@given(data=LITERALS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_serpent_texts(tiny_pieces, data):
    read_as_literal_eval_does(serpent.dumps(data).decode(), tiny_pieces)


@given(data=LITERALS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_repr_and_indented_texts(tiny_pieces, data):
    read_as_literal_eval_does(repr(data), tiny_pieces)
    read_as_literal_eval_does(serpent.dumps(data, indent=True).decode(), tiny_pieces)


def test_forms_that_need_care(tiny_pieces):
    for text in ["(1,)", "(1)", "()", "( 'long enough text' )", "('long enough text',)", "[1, 2, 3, 4, 5, 6, 7,]",
                 "{}", "{1: 'a', 2: 'b', 3: 'c'}", "{1, 2, 3, 4, 5, 6, 7, 8}", "{'k': [1, 2, 3, 4, 5, 6, 7, 8]}",
                 "['a,b', \"c'd\", 'e\\'f', '[(', ')]', '#']", "# serpent utf-8 python3.2\n[1, 2, 3, 4, 5, 6]",
                 "[(1+2j), -3, -4.5e10, b'xy', 1e30000]", "[\n  1,\n  2,\n  3,\n  4,\n]", "(((1, 2, 3, 4, 5, 6),),)",
                 "{'a': {'b': {'c': [1, 2, 3, 4, 5, 6]}}}"]:
        read_as_literal_eval_does(text, tiny_pieces)


def test_no_step_is_larger_than_a_piece_for_many_small_items(monkeypatch):
    items = [[i, "x%d" % i, (i, None)] for i in range(20000)]
    text = serpent.dumps(("service", "echo", [items, {"k": items}], {}), indent=True).decode()
    assert len(text) > 10 * serpent_steps.PIECE
    expected = ast.literal_eval(text)
    steps = []
    original = ast.literal_eval
    monkeypatch.setattr(serpent_steps.ast, "literal_eval", lambda text: steps.append(len(text)) or original(text))
    assert same(serpent_steps.read(text), expected)
    assert max(steps) <= serpent_steps.PIECE + 2  # (a run is read between brackets)
    assert len(steps) > 10


@pytest.mark.parametrize("text", ["[1, 2, 3, 4, 5, 6, 7, 8]]", "[[1, 2, 3, 4, 5, 6, 7, 8]", "[1, 2,, 3, 4, 5, 6]",
                                  "{1: 2, 3, 4, 5, 6, 7, 8}", "{1, 2, 3: 4, 5, 6, 7}", "[__import__('os'), 2, 3, 4]",
                                  "[1, 2, 3, 4, 5, 6, 7, 8] + [9]", "[1, 2, 3, 4, 5, 6, x]",
                                  "[" * 300 + "]" * 300])
def test_what_literal_eval_refuses_is_refused(tiny_pieces, text):
    with pytest.raises((ValueError, SyntaxError, TypeError)):
        ast.literal_eval(text)
    with pytest.raises((ValueError, SyntaxError, TypeError)):
        serpent_steps.read(text)


def test_triple_quoted_strings_are_not_cut(tiny_pieces):
    """serpent and repr() never write them; a large text that has them is refused rather than misread."""
    with pytest.raises(ValueError, match="triple-quoted"):
        serpent_steps.read("[" + "'" * 3 + "x, y" + "'" * 3 + ", 1, 2, 3, 4, 5]")
    quotes_in_a_string = "['" + '"' * 3 + "', 1, 2, 3, 4, 5]"
    assert serpent_steps.read(quotes_in_a_string) == ['"' * 3, 1, 2, 3, 4, 5]


def test_unclosed_strings_are_refused_in_one_pass():
    """Many escaped quotes that never close: each one used to start a scan to the end of the line (minutes
    for 160 KB, the interpreter lock held throughout); now one pass refuses it."""
    with pytest.raises(ValueError, match="closing quote"):
        serpent_steps.read("[" + "'\\" * 200_000 + "]")


def test_a_large_element_must_be_a_container_or_a_string():
    big = "x" * (3 * serpent_steps.PIECE)
    assert serpent_steps.read("['%s', b'%s']" % (big, big)) == [big, big.encode()]
    with pytest.raises(ValueError, match="neither a container nor a string"):
        serpent_steps.read("[" + "+".join(["1"] * serpent_steps.PIECE) + "]")  # one parse of seconds


@pytest.mark.parametrize("text", ["[,'aaaaaaaaaaaa']", "['aaaaaaaaaaa',,]", "('aaaaaaaaaaaa',,)", "(          ,)",
                                  "{1: 'aaaaaaaaaaa',, 2: 3}"])
def test_empty_elements_are_refused_as_literal_eval_refuses_them(tiny_pieces, text):
    with pytest.raises(SyntaxError):
        ast.literal_eval(text)
    with pytest.raises(ValueError, match="empty element"):
        serpent_steps.read(text)
