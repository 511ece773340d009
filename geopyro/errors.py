"""Exception types and helpers for tracebacks that happened on the other side.

A remote exception is re-raised locally with the server's traceback lines in
its ``_pyroTraceback`` attribute; ``get_pyro_traceback`` and ``excepthook``
show both the local and the remote part.
"""

import linecache
import sys
import traceback


class PyroError(Exception):
    """Base of every geopyro error."""


class CommunicationError(PyroError):
    """The network conversation failed."""


class ConnectionClosedError(CommunicationError):
    """The peer closed the connection before the conversation was done."""


class TimeoutError(CommunicationError):
    """A call or a socket operation did not finish in the allowed time."""


class ProtocolError(CommunicationError):
    """Bytes arrived that are not a valid protocol 502 message."""


class MessageTooLargeError(ProtocolError):
    """A message is (or declares to be) larger than MAX_MESSAGE_SIZE."""


class NamingError(PyroError):
    """A problem with the name server or with object names."""


class DaemonError(PyroError):
    """The daemon could not do what was asked (unknown object, duplicate id, ...)."""


class SecurityError(PyroError):
    """Something was refused for security reasons."""


class SerializeError(ProtocolError):
    """Data could not be serialized or deserialized."""


def _remote_block(remote_lines):
    out = [" +--- This exception occurred remotely (Pyro) - Remote traceback:"]
    for chunk in remote_lines:
        for line in chunk.rstrip("\n").split("\n"):
            out.append("\n | ")
            out.append(line)
    out.append("\n +--- End of remote traceback\n")
    return out


def get_pyro_traceback(ex_type=None, ex_value=None, ex_tb=None):
    """Lines of the local traceback followed by the remote one, if the exception came from a server.

    With no arguments, the exception being handled (``sys.exc_info()``) is used.
    """
    from . import config
    if ex_type is not None and ex_value is None and ex_tb is None and not isinstance(ex_type, type):
        raise TypeError("ex_type must be an exception type; or call without arguments inside an except block")
    if ex_type is None and ex_tb is None:
        ex_type, ex_value, ex_tb = sys.exc_info()
    try:
        local = format_traceback(ex_type, ex_value, ex_tb, config.DETAILED_TRACEBACK)
        remote = getattr(ex_value, "_pyroTraceback", None)
        return local + _remote_block(remote) if remote else local
    finally:
        del ex_type, ex_value, ex_tb


def _safe_repr(value):
    try:
        return repr(value)
    except Exception:
        try:
            return str(value)
        except Exception:
            return "<unrepresentable>"


def _detailed_lines(ex_type, ex_value, ex_tb):
    bar = "-" * 52 + "\n"
    lines = [bar, " EXCEPTION %s: %s\n" % (ex_type, ex_value), " Extended stacktrace follows (most recent call last)\n"]
    first = True
    while ex_tb is not None:
        frame = ex_tb.tb_frame
        code = frame.f_code
        owner = frame.f_locals.get("self")
        where = "%s.%s" % (type(owner).__name__, code.co_name) if owner is not None else code.co_name
        lines.append(bar)
        lines.append('File "%s", line %d, in %s\n' % (code.co_filename, ex_tb.tb_lineno, where))
        lines.append("Source code:\n    %s\n" % linecache.getline(code.co_filename, ex_tb.tb_lineno).strip())
        if not first:
            lines.append("Local values:\n")
            for name in sorted(frame.f_locals):
                lines.append("    %s = %s\n" % (name, _safe_repr(frame.f_locals[name])))
        first = False
        ex_tb = ex_tb.tb_next
    lines.extend([bar, " EXCEPTION %s: %s\n" % (ex_type, ex_value), bar])
    return lines


def format_traceback(ex_type=None, ex_value=None, ex_tb=None, detailed=False):
    """Format a traceback as a list of strings; ``detailed`` adds each frame's local variables."""
    if ex_type is None and ex_tb is None:
        ex_type, ex_value, ex_tb = sys.exc_info()
    if detailed:
        try:
            return _detailed_lines(ex_type, ex_value, ex_tb)
        except Exception:
            pass  # fall back to the plain format below
    return traceback.format_exception(ex_type, ex_value, ex_tb)


def excepthook(ex_type, ex_value, ex_tb):
    """A ``sys.excepthook`` that also prints the remote part of a traceback."""
    sys.stderr.write("".join(get_pyro_traceback(ex_type, ex_value, ex_tb)))
