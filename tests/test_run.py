"""``python -m geopyro.run``: unmodified Pyro5 programs (server, client, name server) run on geopyro."""

import importlib
import os
import subprocess
import sys
import textwrap
import time

import Pyro5.api
import pytest

import geopyro.api
from geopyro import run
from support import child_env, first_line, free_port, wait_until

SERVER = """\
import sys
import Pyro5.api
import Pyro5.server
from Pyro5.server import expose


@expose
class Greeter:
    def greet(self, name):
        return "hello " + name

    def where(self):
        import gevent.monkey
        return {"daemon": type(daemon).__module__, "patched": gevent.monkey.is_module_patched("socket"),
                "argv": sys.argv[1:], "main": __name__}


daemon = Pyro5.server.Daemon(host="127.0.0.1")
uri = daemon.register(Greeter, "greeter")
print(uri, flush=True)
daemon.requestLoop()
"""

CLIENT = """\
import sys
import Pyro5.api
import Pyro5.errors

with Pyro5.api.Proxy(sys.argv[1]) as greeter:
    print(greeter.greet("client"))
try:
    Pyro5.api.Proxy(sys.argv[1].replace("greeter", "nosuch"))._pyroBind()
except Pyro5.errors.CommunicationError as exc:  # Pyro5's exception types are geopyro's
    print(type(exc).__module__, type(exc).__name__)
print(Pyro5.api.Proxy.__module__)
"""


@pytest.fixture
def program(tmp_path):
    """Write a Pyro5 program into the test's folder; returns its path."""
    def write(name, text):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)
    return write


def launch(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "geopyro.run"] + list(args), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture
def server(program):
    """The Pyro5 server program, started through the launcher (unpatched); yields its URI."""
    proc = launch(program("server.py", SERVER), "one", "two")
    try:
        yield first_line(proc, time.monotonic() + 30, "server through geopyro.run").strip()
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_pyro5_server_and_client_run_on_geopyro(server, program):
    with geopyro.api.Proxy(server) as proxy:
        assert proxy.where() == {"daemon": "geopyro.server", "patched": False, "argv": ["one", "two"],
                                 "main": "__main__"}
    with Pyro5.api.Proxy(server) as proxy:  # the real Pyro5 talks to it: same wire
        assert proxy.greet("pyro5") == "hello pyro5"
    client = launch(program("client.py", CLIENT), server)
    out, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    assert out.split("\n")[:3] == ["hello client", "geopyro.errors CommunicationError", "geopyro.client"]


def test_patch_option(program):
    proc = launch("--patch", program("server.py", SERVER))
    try:
        uri = first_line(proc, time.monotonic() + 30, "patched server").strip()
        with geopyro.api.Proxy(uri) as proxy:
            assert proxy.where()["patched"] is True
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_pyro5_name_server_module(tmp_path):
    port = free_port()
    proc = launch("-m", "Pyro5.nameserver", "-n", "127.0.0.1", "-p", str(port), "-x")
    try:
        def found():
            try:
                return geopyro.api.locate_ns("127.0.0.1", port, broadcast=False)
            except geopyro.errors.NamingError:
                return None
        assert wait_until(found, 30), proc.stderr.read() if proc.poll() is not None else "no name server"
        with found() as ns:
            ns.register("example", "PYRO:obj@127.0.0.1:1234")
            assert str(ns.lookup("example")) == "PYRO:obj@127.0.0.1:1234"
        with Pyro5.api.locate_ns("127.0.0.1", port, broadcast=False) as ns:
            assert "example" in ns.list()
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_in_code_form(program):
    script = program("inline.py", """\
        import geopyro.as_pyro5
        import Pyro5
        import Pyro5.api
        from Pyro5 import errors
        print(Pyro5.__name__, Pyro5.api.Daemon.__module__, errors.__name__, Pyro5.nameserver.__name__)
        """)
    done = subprocess.run([sys.executable, script], env=child_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["geopyro", "geopyro.server", "geopyro.errors", "geopyro.nameserver"]


def test_modules_geopyro_lacks_say_so(program):
    script = program("missing.py", """\
        for name in ("Pyro4.message", "Pyro5.nosuch"):
            try:
                __import__(name)
            except ImportError as exc:
                print(type(exc).__name__, exc)
        """)
    done = subprocess.run([sys.executable, "-m", "geopyro.run", script], env=child_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "geopyro.protocol48 is the wire protocol" in lines[0]
    assert lines[1] == "ModuleNotFoundError No module named 'Pyro5.nosuch'"


def test_a_pyro4_program_gets_pyro4s_api_on_geopyro(program):
    script = program("pyro4_program.py", """\
        import Pyro4
        import Pyro4.naming
        from Pyro4 import errors
        from Pyro5.compatibility import Pyro4 as through_pyro5
        print(Pyro4.__name__, Pyro4.Proxy.__module__, errors.NamingError.__module__, Pyro4.naming.__name__,
              through_pyro5 is Pyro4, Pyro4.Proxy("PYRO:x@localhost:1")._pyroProtocol)
        """)
    done = subprocess.run([sys.executable, "-m", "geopyro.run", script], env=child_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["geopyro.compatibility.Pyro4", "geopyro.compatibility.Pyro4.core",
                                   "geopyro.errors", "geopyro.compatibility.Pyro4.naming", "True", "48"]


def _module_names(package):
    """Every module name of an installed package."""
    top = os.path.dirname(importlib.import_module(package).__file__)
    names = set()
    for folder, _, files in os.walk(top):
        prefix = package + folder[len(top):].replace(os.sep, ".")
        names.update(prefix + ("" if f == "__init__.py" else "." + f[:-3]) for f in files if f.endswith(".py"))
    return names


@pytest.mark.parametrize("package, aliases", [("Pyro5", run.PYRO5_MODULES), ("Pyro4", run.PYRO4_MODULES)])
def test_every_module_has_a_counterpart_or_a_reason(package, aliases):
    missing = {name for name in run.MISSING if name.partition(".")[0] == package}
    assert _module_names(package) == set(aliases) | missing


def test_installing_after_pyro5_was_imported_is_refused():
    assert "Pyro5" in sys.modules  # the real one, imported by this test module
    with pytest.raises(RuntimeError, match="imported before"):
        run.install()
    assert run._finder not in sys.meta_path


def test_usage():
    done = subprocess.run([sys.executable, "-m", "geopyro.run"], env=child_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "usage: python -m geopyro.run" in done.stderr


CTRL_C = """\
import Pyro5.api

daemon = Pyro5.api.Daemon(host="127.0.0.1")
print(daemon.register(Pyro5.api.expose(type("Thing", (), {"ping": lambda self: 1})), "thing"), flush=True)
daemon.requestLoop()
print("loop ended", flush=True)
"""


@pytest.mark.parametrize("implementation", ["pyro5", "geopyro", "geopyro --patch"])
def test_ctrl_c_ends_the_request_loop_quietly(program, servertype, implementation):
    """Pyro5's requestLoop returns on Ctrl-C, printing nothing; so does geopyro's (no gevent traceback)."""
    import signal
    script = program("ctrl_c.py", CTRL_C)
    command = [sys.executable, script] if implementation == "pyro5" else \
        [sys.executable, "-m", "geopyro.run"] + implementation.split()[1:] + [script]
    if implementation == "pyro5" and servertype == "greenlet":
        pytest.skip("Pyro5 has no greenlet server type")
    environment = child_env(PYRO_SERVERTYPE="thread" if implementation == "pyro5" else servertype)
    proc = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    uri = first_line(proc, time.monotonic() + 30, "server").strip()
    with geopyro.api.Proxy(uri) as proxy:
        assert proxy.ping() == 1  # the request loop runs
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "loop ended"
    assert err == ""


CHILDREN = """\
import multiprocessing
import subprocess
import sys

import Pyro5.api


def report(queue):
    import Pyro4
    import Pyro5
    queue.put((Pyro5.__name__, Pyro4.__name__))


if __name__ == "__main__":
    for method in ("spawn", "forkserver"):  # (fork copies the alias with the process anyway)
        context = multiprocessing.get_context(method)
        queue = context.Queue()
        child = context.Process(target=report, args=(queue,))
        child.start()
        print(method, *queue.get(timeout=60), flush=True)
        child.join(60)
    done = subprocess.run([sys.executable, "-c", "import Pyro5.api; print(Pyro5.api.__name__)"],
                          capture_output=True, text=True, timeout=60)
    print("subprocess", done.stdout.strip() or done.stderr.strip().splitlines()[-1], flush=True)
    done = subprocess.run([sys.executable, "-m", "Pyro5.utils.echoserver", "--help"],
                          capture_output=True, text=True, timeout=60)
    print("-m", done.returncode, "geopyro-echoserver" in done.stdout, flush=True)
"""


def test_child_processes_load_geopyro_for_pyro5_too(program):
    """multiprocessing's spawn and forkserver children and subprocesses of a launched program get the alias too
    (Python 3.14 makes forkserver Linux's default): with only geopyro installed they would not find Pyro5."""
    proc = launch(program("children.py", CHILDREN))
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["spawn geopyro geopyro.compatibility.Pyro4",
                                "forkserver geopyro geopyro.compatibility.Pyro4",
                                "subprocess geopyro.api", "-m 0 True"]


def test_a_child_without_geopyro_gets_the_real_package(tmp_path):
    """The stand-ins step aside in a child Python that cannot import geopyro (another environment)."""
    from geopyro import inherit
    fake = tmp_path / "elsewhere" / "Pyro5"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("WHO = 'the real one'\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([inherit.FOLDER, str(fake.parent)]))
    code = "import sys; sys.modules['geopyro'] = None; import Pyro5; print(Pyro5.WHO)"  # (geopyro not importable)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "the real one", done.stderr


CTRL_C_CLIENT = """\
import sys
import Pyro5.api

with Pyro5.api.Proxy(sys.argv[1]) as proxy:
    try:
        print("calling", flush=True)
        proxy.wait()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


@pytest.mark.parametrize("implementation", ["pyro5", "geopyro", "geopyro --patch"])
def test_ctrl_c_in_a_client_call_is_a_quiet_keyboard_interrupt(program, daemons, implementation):
    """The program gets its KeyboardInterrupt; nothing is printed (with --patch, not by gevent's hub either)."""
    import signal
    import threading
    release, entered = threading.Event(), threading.Event()

    @geopyro.api.expose
    class Waiter:
        def wait(self):
            entered.set()
            return release.wait(60)

    uri = daemons.serve(Waiter)
    script = program("client.py", CTRL_C_CLIENT)
    command = [sys.executable, script] if implementation == "pyro5" else \
        [sys.executable, "-m", "geopyro.run"] + implementation.split()[1:] + [script]
    proc = subprocess.Popen(command + [str(uri)], env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert first_line(proc, time.monotonic() + 30, "client").strip() == "calling"
        assert entered.wait(30)  # the client waits for the reply now (with --patch: through gevent's hub)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert (proc.returncode, out.strip(), err) == (0, "interrupted", "")


def test_with_m_the_first_path_entry_is_still_the_working_folder(tmp_path):
    """As with ``python -m``: the launcher's stand-ins for child processes go after it."""
    (tmp_path / "where.py").write_text("import os, sys\nprint(os.path.realpath(sys.path[0] or '.'))\n")
    done = subprocess.run([sys.executable, "-m", "geopyro.run", "-m", "where"], capture_output=True, text=True,
                          env=child_env(), timeout=60, cwd=str(tmp_path))
    assert (done.returncode, done.stdout.strip()) == (0, os.path.realpath(str(tmp_path))), done.stderr
