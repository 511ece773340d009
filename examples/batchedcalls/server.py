"""batchedcalls server: a small calculator with a call log."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
@api.behavior(instance_mode="single")
class Calculator:
    def __init__(self):
        self.log = []

    def add(self, a, b):
        return a + b

    def divide(self, a, b):
        return a / b

    def note(self, text):
        self.log.append(text)

    def notes(self):
        return list(self.log)


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Calculator, "calculator")
    print("server: serving", uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
