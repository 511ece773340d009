"""instancemode server: the same counter class under three instance modes."""

import itertools
import sys

import gevent
from gevent import subprocess

import geopyro.api as api

_made = itertools.count(1)


class Counter:
    def __init__(self, label="instance"):
        self.label = "%s #%d" % (label, next(_made))
        self.calls = 0
        print("server: created", self.label, flush=True)

    @api.expose
    def count(self):
        self.calls += 1
        return "%s, call %d" % (self.label, self.calls)


@api.behavior(instance_mode="single")
class SingleCounter(Counter):
    pass


def make_session_counter(cls):
    return cls("session instance")  # an instance_creator gets the class and returns an instance of it


@api.behavior(instance_mode="session", instance_creator=make_session_counter)
class SessionCounter(Counter):
    pass


@api.behavior(instance_mode="percall")
class PercallCounter(Counter):
    pass


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uris = [daemon.register(cls, name) for cls, name in
            ((SingleCounter, "single"), (SessionCounter, "session"), (PercallCounter, "percall"))]
    for uri in uris:
        print("server: serving", uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py"] + [str(uri) for uri in uris], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
