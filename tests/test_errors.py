"""Exception hierarchy and the helpers that show remote tracebacks."""

import sys

import pytest

import Pyro5.errors

import geopyro
from geopyro import errors

REMOTE_TB = ["Traceback (most recent call last):\n",
             "  File \"server.py\", line 10, in method\n    raise ValueError('remote boom')\n",
             "ValueError: remote boom\n"]


@pytest.fixture(autouse=True)
def default_config():
    geopyro.config.reset(use_environment=False)
    yield
    geopyro.config.reset(use_environment=False)


@pytest.mark.parametrize("child, parent", [
    (errors.PyroError, Exception),
    (errors.CommunicationError, errors.PyroError),
    (errors.ConnectionClosedError, errors.CommunicationError),
    (errors.TimeoutError, errors.CommunicationError),
    (errors.ProtocolError, errors.CommunicationError),
    (errors.MessageTooLargeError, errors.ProtocolError),
    (errors.SerializeError, errors.ProtocolError),
    (errors.NamingError, errors.PyroError),
    (errors.DaemonError, errors.PyroError),
    (errors.SecurityError, errors.PyroError),
])
def test_hierarchy(child, parent):
    assert child.__bases__ == (parent,)
    assert issubclass(child, errors.PyroError) or child is errors.PyroError


def test_hierarchy_matches_pyro5():
    for name, ours in vars(errors).items():
        if isinstance(ours, type) and issubclass(ours, BaseException):
            theirs = getattr(Pyro5.errors, name)
            assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__], name
    for name, theirs in vars(Pyro5.errors).items():
        if isinstance(theirs, type) and issubclass(theirs, Pyro5.errors.PyroError):
            assert issubclass(getattr(errors, name), errors.PyroError), name


def test_timeout_error_is_not_the_builtin():
    assert errors.TimeoutError is not TimeoutError
    assert not issubclass(errors.TimeoutError, OSError)
    with pytest.raises(errors.CommunicationError):
        raise errors.TimeoutError("slow")


def raise_with_remote_tb():
    local_value = "a local"  # noqa: F841  (shown in detailed tracebacks)
    exc = ValueError("remote boom")
    exc._pyroTraceback = REMOTE_TB
    raise exc


def caught():
    try:
        raise_with_remote_tb()
    except ValueError:
        return sys.exc_info()


def test_get_pyro_traceback_includes_the_remote_part():
    ex_type, ex_value, ex_tb = caught()
    text = "".join(errors.get_pyro_traceback(ex_type, ex_value, ex_tb))
    assert "raise_with_remote_tb" in text                 # the local part
    assert "ValueError: remote boom" in text
    assert " +--- This exception occurred remotely (Pyro) - Remote traceback:" in text
    assert "\n | Traceback (most recent call last):" in text
    assert "\n |   File \"server.py\", line 10, in method" in text
    assert "\n |     raise ValueError('remote boom')" in text
    assert text.endswith("\n +--- End of remote traceback\n")
    assert text.index("raise_with_remote_tb") < text.index("occurred remotely")


def test_get_pyro_traceback_same_text_as_pyro5():
    ex_type, ex_value, ex_tb = caught()
    assert errors.get_pyro_traceback(ex_type, ex_value, ex_tb) == \
        Pyro5.errors.get_pyro_traceback(ex_type, ex_value, ex_tb)


def test_get_pyro_traceback_without_remote_part_is_the_local_one():
    try:
        raise KeyError("local only")
    except KeyError:
        lines = errors.get_pyro_traceback()
        plain = errors.format_traceback()
    text = "".join(lines)
    assert "KeyError: 'local only'" in text
    assert "remotely" not in text
    assert lines == plain


def test_get_pyro_traceback_uses_the_current_exception():
    try:
        raise_with_remote_tb()
    except ValueError:
        text = "".join(errors.get_pyro_traceback())
    assert "occurred remotely" in text and "remote boom" in text


def test_get_pyro_traceback_rejects_a_non_type():
    with pytest.raises(TypeError):
        errors.get_pyro_traceback(ValueError("an instance, not a type"))


def test_get_pyro_traceback_detailed_follows_config():
    ex_type, ex_value, ex_tb = caught()
    geopyro.config.DETAILED_TRACEBACK = True
    text = "".join(errors.get_pyro_traceback(ex_type, ex_value, ex_tb))
    assert "Extended stacktrace follows" in text
    assert "local_value = 'a local'" in text
    assert "occurred remotely" in text


def test_format_traceback_plain():
    ex_type, ex_value, ex_tb = caught()
    lines = errors.format_traceback(ex_type, ex_value, ex_tb)
    assert lines[0] == "Traceback (most recent call last):\n"
    assert lines[-1] == "ValueError: remote boom\n"
    assert "Local values" not in "".join(lines)
    assert "occurred remotely" not in "".join(lines)  # the plain formatter knows nothing of Pyro


def test_format_traceback_detailed():
    ex_type, ex_value, ex_tb = caught()
    lines = errors.format_traceback(ex_type, ex_value, ex_tb, detailed=True)
    text = "".join(lines)
    assert lines[0] == "-" * 52 + "\n"
    assert " EXCEPTION <class 'ValueError'>: remote boom\n" in lines
    assert " Extended stacktrace follows (most recent call last)\n" in lines
    assert 'line' in text and "in caught" in text and "in raise_with_remote_tb" in text
    assert "Source code:\n    raise_with_remote_tb()" in text
    assert "Local values:\n" in text
    assert "    local_value = 'a local'\n" in text
    assert text.endswith(" EXCEPTION <class 'ValueError'>: remote boom\n" + "-" * 52 + "\n")


def test_format_traceback_detailed_shows_method_owner():
    class Thing:
        def fail(self):
            raise RuntimeError("in a method")

    def call():
        Thing().fail()

    try:
        call()
    except RuntimeError:
        text = "".join(errors.format_traceback(detailed=True))
    assert "in Thing.fail" in text


def test_format_traceback_detailed_survives_bad_repr():
    class Unrepresentable:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __str__(self):
            raise RuntimeError("no str")

    def fail():
        thing = Unrepresentable()  # noqa: F841
        raise ValueError("x")

    try:
        fail()
    except ValueError:
        text = "".join(errors.format_traceback(detailed=True))
    assert "thing = <unrepresentable>" in text


def test_excepthook_writes_to_stderr(capsys):
    ex_type, ex_value, ex_tb = caught()
    errors.excepthook(ex_type, ex_value, ex_tb)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ValueError: remote boom" in captured.err
    assert " +--- This exception occurred remotely (Pyro) - Remote traceback:" in captured.err
    assert captured.err == "".join(errors.get_pyro_traceback(ex_type, ex_value, ex_tb))
