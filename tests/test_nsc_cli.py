"""The command-line tools: geopyro.nsc (in-process and as a subprocess), the name server, the echo server."""

import re
import subprocess
import sys

import pytest

from geopyro import core, nameserver, nsc
from geopyro.client import Proxy
from support import ROOT, child_env, free_port



def run(*args, stdin=None, **envvars):
    return subprocess.run([sys.executable, "-m"] + list(args), cwd=ROOT, env=child_env(**envvars), input=stdin,
                          capture_output=True, text=True, timeout=30)


class Background:
    """A server subprocess that prints a line matching ``ready`` once it serves; stopped at the end."""

    def __init__(self, args, ready=r"URI = (\S+)", **envvars):
        self.proc = subprocess.Popen([sys.executable, "-m"] + args, cwd=ROOT, env=child_env(**envvars), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        for line in self.proc.stdout:  # pytest-timeout guards a server that never gets ready
            self.lines.append(line)
            match = re.search(ready, line)
            if match:
                self.match = match
                return
        raise AssertionError("server did not start:\n" + "".join(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture
def ns_process():
    started = []

    def start(*extra):
        server = Background(["geopyro.nameserver", "-n", "127.0.0.1", "-p", "0", "-x"] + list(extra))
        started.append(server)
        return server, core.URI(server.match.group(1))
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ns_thread(daemons):
    uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    daemons.start(ns_daemon)
    return uri


def nsc_main(uri, capsys, *args):
    code = nsc.main(["-n", "127.0.0.1", "-p", str(uri.port)] + list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_nsc_commands_in_process(ns_thread, capsys):
    uri = ns_thread
    assert nsc_main(uri, capsys, "ping") == (0, "Name server ping ok.\n", "")
    assert nsc_main(uri, capsys, "register", "my.obj", "PYRO:obj@127.0.0.1:4000")[1] == "Registered my.obj\n"
    code, out, _ = nsc_main(uri, capsys, "register", "my.obj", "PYRO:other@127.0.0.1:4000")
    assert code == 1 and "Error: NamingError - name already registered: my.obj" in out
    assert nsc_main(uri, capsys, "setmeta", "my.obj", "colour:red", "size:big")[1] == "Metadata updated\n"
    code, out, _ = nsc_main(uri, capsys, "list")
    assert code == 0 and "my.obj --> PYRO:obj@127.0.0.1:4000\n    metadata: {'colour:red', 'size:big'}" in out
    assert out.startswith("--------START LIST") and out.rstrip().endswith("--------END LIST")
    code, out, _ = nsc_main(uri, capsys, "list", "my.")
    assert "Pyro.NameServer" not in out and "my.obj" in out
    assert "my.obj" in nsc_main(uri, capsys, "listmatching", r"my\..*")[1]
    assert "my.obj" in nsc_main(uri, capsys, "yplookup_all", "colour:red", "size:big")[1]
    assert "my.obj" not in nsc_main(uri, capsys, "listmeta_all", "colour:red", "size:small")[1]
    assert "my.obj" in nsc_main(uri, capsys, "listmeta_any", "colour:blue", "size:big")[1]
    assert "my.obj" in nsc_main(uri, capsys, "yplookup_any", "colour:red")[1]
    assert nsc_main(uri, capsys, "lookup", "my.obj")[1] == \
        "PYRO:obj@127.0.0.1:4000\nmetadata: {'colour:red', 'size:big'}\n"
    assert nsc_main(uri, capsys, "setmeta", "my.obj")[1] == "Metadata cleared\n"
    assert nsc_main(uri, capsys, "remove", "my.obj")[1] == "Removed my.obj\n"
    assert nsc_main(uri, capsys, "remove", "my.obj")[1] == "Nothing removed\n"
    for i in range(3):
        nsc_main(uri, capsys, "register", "bulk.%d" % i, "PYRO:b@127.0.0.1:1")
    assert nsc_main(uri, capsys, "-y", "removematching", "bulk")[1] == "3 items removed.\n"


@pytest.mark.parametrize("args, code, message", [
    (["lookup"], 2, "lookup requires one argument: name"),
    (["register", "x"], 2, "requires two arguments"),
    (["listmatching"], 2, "requires one argument: pattern"),
    (["yplookup_any"], 2, "at least one metadata tag"),
    (["ping", "extra"], 2, "requires no arguments"),
    (["lookup", "no.such.name"], 1, "NamingError - unknown name: no.such.name"),
    (["register", "bad.uri", "not a uri"], 1, "invalid uri"),
    (["listmatching", "("], 1, "invalid regex"),
])
def test_nsc_errors_in_process(ns_thread, capsys, args, code, message):
    result = nsc_main(ns_thread, capsys, *args)
    assert result[0] == code and message in result[2 if code == 2 else 1]  # usage on stderr, refusals on stdout
    assert nsc_main(ns_thread, capsys, "ping")[0] == 0  # the name server keeps serving


def test_nsc_unknown_command(capsys):
    with pytest.raises(SystemExit) as info:
        nsc.main(["frobnicate"])
    assert info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_nsc_subprocess_against_ns_subprocess(ns_process, tmp_path):
    store = tmp_path / "cli.sqlite"
    server, uri = ns_process("-s", "sql:%s" % store)
    where = ["-n", "127.0.0.1", "-p", str(uri.port)]
    result = run("geopyro.nsc", *where, "register", "cli.obj", "PYRO:cli@127.0.0.1:7000")
    assert (result.returncode, result.stdout) == (0, "Registered cli.obj\n")
    result = run("geopyro.nsc", *where, "lookup", "cli.obj")
    assert (result.returncode, result.stdout) == (0, "PYRO:cli@127.0.0.1:7000\n")
    result = run("geopyro.nsc", *where, "lookup", "nope")
    assert result.returncode == 1 and "Error: NamingError - unknown name: nope" in result.stdout
    result = run("geopyro.nsc", *where, "bogus")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = run("geopyro.nsc", *where, "removematching", "cli", stdin="n\n")
    assert result.returncode == 0 and "Nothing removed" in result.stdout
    server.stop()
    # a restarted name server on the same store still knows the name
    server, uri = ns_process("-s", "sql:%s" % store)
    assert "Persistent store contains 1 existing registrations." in "".join(server.lines)
    result = run("geopyro.nsc", "-n", "127.0.0.1", "-p", str(uri.port), "list")
    assert result.returncode == 0 and "cli.obj --> PYRO:cli@127.0.0.1:7000" in result.stdout


def test_nsc_no_name_server():
    port = free_port()
    result = run("geopyro.nsc", "-n", "127.0.0.1", "-p", str(port), "ping")
    assert result.returncode == 1 and "no name server found" in result.stderr and str(port) in result.stderr


def test_nameserver_cli_bad_storage(tmp_path):
    result = run("geopyro.nameserver", "-n", "127.0.0.1", "-p", "0", "-x", "-s", "sql:%s" % (tmp_path / "no" / "x.db"))
    assert result.returncode == 1 and "cannot use name server store" in result.stderr
    result = run("geopyro.ns", "-n", "127.0.0.1", "-p", "0", "-s", "bogus")
    assert result.returncode == 1 and "invalid storage type 'bogus'" in result.stderr


def test_ns_entry_module(ns_process):
    server = Background(["geopyro.ns", "-n", "127.0.0.1", "-p", "0"])
    try:
        text = "".join(server.lines)
        assert "Not starting broadcast server for localhost." in text
        with Proxy(server.match.group(1)) as ns:
            ns.ping()
    finally:
        server.stop()


def test_echoserver_with_own_name_server():
    port = free_port()
    server = Background(["geopyro.utils.echoserver", "-H", "127.0.0.1", "-N"], ready=r"registered in the name server",
                        PYRO_NS_PORT=port, PYRO_NS_HOST="127.0.0.1")
    try:
        with Proxy("PYRONAME:test.echoserver@127.0.0.1:%d" % port) as echo:
            assert echo.echo("via the name server") == "via the name server"
            echo.shutdown()
        server.proc.wait(10)
        assert server.proc.returncode == 0
    finally:
        server.stop()


def test_echoserver_registers_in_running_ns(ns_process):
    _, uri = ns_process()
    server = Background(["geopyro.utils.echoserver", "-H", "127.0.0.1", "-n"], ready=r"registered in the name server",
                        PYRO_NS_PORT=uri.port, PYRO_NS_HOST="127.0.0.1")
    try:
        result = run("geopyro.nsc", "-n", "127.0.0.1", "-p", str(uri.port), "lookup", "test.echoserver")
        assert result.returncode == 0 and result.stdout.startswith("PYRO:test.echoserver@127.0.0.1:")
    finally:
        server.stop()


def test_configure_module_runs():
    result = run("geopyro.configure", PYRO_NS_PORT=12345)
    assert result.returncode == 0 and "NS_PORT = 12345" in result.stdout
    assert "Warning" not in result.stderr, result.stderr
