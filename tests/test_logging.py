"""geopyro is silent unless the program configures logging, as Pyro5 is; PYRO_LOGLEVEL works as in Pyro5."""

import subprocess
import sys
import textwrap

from support import child_env

# a server that refuses a client (MAX_CONNECTIONS) and gets garbage: each logs a WARNING
PROGRAM = """\
import socket, sys
{preamble}
api.config.MAX_CONNECTIONS = 1
daemon = api.Daemon(host="127.0.0.1")
host, port = daemon.locationStr.rsplit(":", 1)
import threading
threading.Thread(target=daemon.requestLoop, daemon=True).start()
with socket.create_connection((host, int(port))) as first, socket.create_connection((host, int(port))) as bad:
    bad.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n" * 10)
    bad.recv(100)
daemon.shutdown()
print("done")
"""


def run(preamble, *args, **env):
    script = PROGRAM.format(preamble=textwrap.dedent(preamble))
    environment = child_env()
    environment.update(env)
    return subprocess.run([sys.executable] + list(args) + ["-c", script], env=environment, capture_output=True,
                          text=True, timeout=60)


def test_silent_when_logging_is_not_configured():
    done = run("import geopyro.api as api")
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""


def test_warnings_reach_a_program_that_configures_logging():
    done = run("import logging; logging.basicConfig(); import geopyro.api as api")
    assert done.returncode == 0, done.stderr
    assert "WARNING:geopyro" in done.stderr


def test_pyro_loglevel_environment_variable():
    done = run("import geopyro.api as api", PYRO_LOGLEVEL="DEBUG", PYRO_LOGFILE="{stderr}")
    assert done.returncode == 0, done.stderr
    assert ",WARNING] " in done.stderr and ",geopyro.servers." in done.stderr
    assert ",DEBUG] " in done.stderr


def test_the_pyro5_logger_configures_geopyros_under_the_launcher(tmp_path):
    """Run through geopyro.run, a program's logging.getLogger("Pyro5") set-up reaches geopyro's records."""
    script = tmp_path / "program.py"
    script.write_text(PROGRAM.format(preamble=textwrap.dedent("""\
        import logging
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("PYRO5-HANDLER %(name)s %(levelname)s"))
        logging.getLogger("Pyro5").addHandler(handler)
        logging.getLogger("Pyro5").setLevel(logging.WARNING)
        import Pyro5.api as api
        """)))
    done = subprocess.run([sys.executable, "-m", "geopyro.run", str(script)], env=child_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "PYRO5-HANDLER geopyro." in done.stdout
    assert done.stderr == ""



# A Pyro5 program that configures logging: a client sends garbage (the server logs a WARNING about it).
PYRO5_PROGRAM = """\
import logging, socket, sys, threading
logging.basicConfig()
import Pyro5.api as api
{extra}
daemon = api.Daemon(host="127.0.0.1")
host, port = daemon.locationStr.rsplit(":", 1)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
with socket.create_connection((host, int(port))) as bad:
    bad.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n" * 10)
    bad.recv(100)
{after}
daemon.shutdown()
print("done")
"""

# (geopyro only) an inline method that holds the loop: the blocking detector's warning
STALL_SETTINGS = """\
api.config.CALL_EXECUTION = "inline"
api.config.BLOCKING_WARNING = 0.05
"""
STALL_CALL = """\
class Stalling:
    @api.expose
    def stall(self):
        import time
        time.sleep(0.3)
with api.Proxy(daemon.register(Stalling)) as stalling:
    stalling.stall()
"""


def run_pyro5_program(tmp_path, launcher, extra="", after="", **env):
    script = tmp_path / "program.py"
    script.write_text(PYRO5_PROGRAM.format(extra=extra, after=after))
    environment = child_env()
    environment.update(env)
    command = [sys.executable] + (["-m", "geopyro.run"] if launcher else []) + [str(script)]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))


def test_pyro5_itself_logs_nothing_to_a_program_that_configures_logging(tmp_path):
    """The reference for the next test: Pyro5 keeps its logger off unless PYRO_LOGLEVEL is set."""
    done = run_pyro5_program(tmp_path, launcher=False)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""


def test_under_the_launcher_geopyro_is_as_quiet_as_pyro5(tmp_path):
    done = run_pyro5_program(tmp_path, launcher=True)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""


def test_under_the_launcher_the_blocking_warning_is_still_shown(tmp_path):
    done = run_pyro5_program(tmp_path, launcher=True, extra=STALL_SETTINGS, after=STALL_CALL)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert "BlockingCallWarning" in done.stderr and "Stalling.stall" in done.stderr
    assert "WARNING:geopyro" not in done.stderr and "WARNING:Pyro5" not in done.stderr


def test_under_the_launcher_pyro_loglevel_turns_geopyros_log_on(tmp_path):
    done = run_pyro5_program(tmp_path, launcher=True, PYRO_LOGLEVEL="WARNING", PYRO_LOGFILE="{stderr}")
    assert done.returncode == 0, done.stderr
    assert ",WARNING] " in done.stderr and ",geopyro." in done.stderr
