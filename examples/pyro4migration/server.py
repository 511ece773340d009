"""pyro4migration server: a Pyro4 service moved to geopyro; Pyro4, Pyro5 and geopyro clients call it at once."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api  # (its daemon speaks Pyro4's protocol too, on the same port: nothing to add)


@api.expose
class Probe:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return "probe %s, kept by geopyro" % self.name


@api.expose
@api.behavior(instance_mode="single")
class Station:
    def __init__(self):
        self.notes = []

    @property
    def name(self):
        return "weather station"

    def temperature(self, sensor):
        if sensor not in ("north", "south"):
            raise ValueError("no sensor called %r" % sensor)
        return {"north": 11.5, "south": 14.0}[sensor]

    @api.oneway
    def note(self, text):
        self.notes.append(text)

    def read_notes(self):
        return list(self.notes)

    def readings(self, count):
        for number in range(count):
            yield "reading %d" % number

    def attach_probe(self, name):
        probe = Probe(name)
        self._pyroDaemon.register(probe)
        return probe  # goes back as a proxy: autoproxy, for Pyro4 and Pyro5 clients alike


def _report(client):
    output, _ = client.communicate(timeout=60)
    print(output, end="", flush=True)
    return client.returncode


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Station, "station")
    print("server (geopyro %s): serving %s to Pyro4 and Pyro5 clients" % (api.__version__, uri), flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    # step 1: the server moved; old Pyro4 clients and Pyro5 clients call it at the same time, on one port
    clients = [subprocess.Popen([sys.executable, script, str(uri)], cwd=sys.path[0], stdout=subprocess.PIPE, text=True)
               for script in ("client_pyro4.py", "client_pyro5.py")]
    codes = [_report(client) for client in clients]  # (their output one after the other, not interleaved)
    # step 2: a client moves too, here to geopyro
    codes.append(subprocess.call([sys.executable, "client_moved.py", str(uri)], cwd=sys.path[0]))
    daemon.shutdown()
    loop.join(5)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
