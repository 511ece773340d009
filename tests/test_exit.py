"""A program may exit while a daemon still serves in a background thread (the usual Pyro5 pattern)."""

import os
import subprocess
import sys

import pytest

PROGRAM = """
import threading
import geopyro.api as api

@api.expose
class Thing:
    def ping(self):
        return "pong"

api.config.SERVERTYPE = %r
daemon = api.Daemon(host="127.0.0.1")
uri = daemon.register(Thing)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
print(api.Proxy(uri).ping())
"""


@pytest.mark.parametrize("servertype", ["greenlet", "multiplex"])
def test_exit_with_a_daemon_still_running_is_clean(servertype):
    # Without geopyro's exit handler gevent crashed at interpreter exit in most runs; three runs catch it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", PROGRAM % servertype], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)
        assert done.returncode == 0, done.stdout
        assert done.stdout.strip() == "pong"
