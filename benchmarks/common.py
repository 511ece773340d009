"""Helpers shared by the runner, the server processes and the load generators."""

import ctypes
import os
import resource
import signal
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBJECT_ID = "bench"
ECHO_VALUE = 42  # the argument (and result) of every small call
ECHO_TEXT = "hello"  # the argument of the client/server pairs' calls
NOFILE_WANTED = 20000


def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on now (for a server that must be told its port)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def raise_nofile(wanted=NOFILE_WANTED):
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (bounded by the hard limit); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent():
    """Linux: get SIGKILL when the runner dies, so no benchmark process outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() == 1:
        os._exit(1)


def child_env():
    """The environment for child processes: the repo on sys.path, no PYRO_* (Pyro5 refuses unknown ones)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def raw_messages(serializer_name="serpent"):
    """The exact bytes of one small call: a protocol-502 INVOKE of echo(42) and its RESULT reply."""
    from geopyro import protocol, serializers
    import uuid
    ser = serializers.get_serializer(serializer_name)
    invoke = protocol.encode(protocol.MSG_INVOKE, 0, 1, ser.serializer_id,
                             ser.dumpsCall(OBJECT_ID, "echo", (ECHO_VALUE,), {}), {}, None)
    # servers answer with a correlation id (flag + 16 bytes in the header), so the reply carries one too
    result = protocol.encode(protocol.MSG_RESULT, 0, 1, ser.serializer_id, ser.dumps(ECHO_VALUE), {},
                             uuid.uuid4().bytes)
    return invoke, result


def rss_kb(pid):
    """VmRSS of a process in KiB, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def progress(text):
    """One progress line on stderr (stdout is for results)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def ensure_root_on_path():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
