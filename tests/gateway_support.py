"""The Pyro side of the HTTP gateway tests, run as a child process: ``python tests/gateway_support.py``.

It starts a name server and a daemon on 127.0.0.1 (free ports), registers
objects under ``http.*`` names (plus one name the default expose regex
refuses, one whose object is gone, and one that needs HTML escaping), prints
``ns <port>`` and serves until terminated. It runs unpatched, so the blocking
``sleep`` method runs on the daemon's thread pool and other calls go on.
"""

import threading

from geopyro import nameserver, server
from geopyro.callcontext import current_context
from geopyro.client import Proxy


@server.expose
class Calculator:
    """Methods, properties and a oneway method, with state the tests can read back."""

    def __init__(self):
        self.notes = []
        self.sleepers = {}  # token -> the Event that wakes that sleeper early
        self._label = "calculator"

    def add(self, a, b):
        return a + b

    def echo(self, message):
        return message

    def fail(self, why="it failed on purpose"):
        raise ValueError(why)

    def sleep(self, seconds, token=""):
        """Blocks its thread (a real wait, not cooperative), like a slow backend; ``wake(token)`` ends it early."""
        woken = self.sleepers[token] = threading.Event()
        try:
            woken.wait(float(seconds))
        finally:
            self.sleepers.pop(token, None)
        return "slept"

    def sleeping(self, token):
        return token in self.sleepers

    def wake(self, token):
        woken = self.sleepers.get(token)
        if woken is not None:
            woken.set()
        return woken is not None

    def fast(self):
        return "fast"

    def correlation(self):
        return str(current_context.correlation_id)

    def shapes(self):
        return {"list": [1, 2], "tuple": (3, 4), "none": None, "float": 1.5, "text": "\u00e9t\u00e9", "flag": True}

    @server.oneway
    def note(self, text):
        self.notes.append(text)

    def notes_taken(self):
        return self.notes

    @property
    def label(self):
        return self._label

    @label.setter
    def label(self, value):
        self._label = value


@server.expose
class Greeter:
    def greet(self, name="world"):
        return "hello " + name


def main():
    ns_uri, ns_daemon, _ = nameserver.start_ns("127.0.0.1", 0)
    threading.Thread(target=ns_daemon.requestLoop, daemon=True).start()
    daemon = server.Daemon(host="127.0.0.1")
    with Proxy(ns_uri) as ns:
        ns.register("http.calc", daemon.register(Calculator()))
        ns.register("http.greeter", daemon.register(Greeter()))
        ns.register("other.secret", daemon.register(Greeter()))
        ns.register("http.gone", "PYRO:no-such-object@%s" % daemon.locationStr)
        ns.register("http.<b>bold</b>", daemon.register(Greeter()))
    print("ns %d" % ns_uri.port, flush=True)
    daemon.requestLoop()


if __name__ == "__main__":
    main()
