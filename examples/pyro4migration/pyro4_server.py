"""pyro4migration: the service as a Pyro4 program, unchanged. It runs on Pyro4, or on geopyro with
python -m geopyro.run pyro4_server.py (then Pyro5 clients can call it too)."""

import sys

import Pyro4


@Pyro4.expose
class Probe:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return "probe %s, kept by %s" % (self.name, "geopyro" if "geopyro" in sys.modules else "Pyro4")


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
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

    @Pyro4.oneway
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
        return probe


if __name__ == "__main__":
    daemon = Pyro4.Daemon(host="127.0.0.1")
    print(daemon.register(Station, "station"), flush=True)
    daemon.requestLoop()
