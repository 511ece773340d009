"""autoproxy server: objects registered with the daemon travel back as proxies."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Car:
    def __init__(self, name):
        self.name = name
        self.odometer = 0

    def drive(self, km):
        self.odometer += km
        return "%s drove %d km (odometer %d km, on the server)" % (self.name, km, self.odometer)

    @property
    def mileage(self):
        return self.odometer


@api.expose
class Garage:
    def __init__(self):
        self.cars = []

    def build(self, name):
        car = Car(name)
        self._pyroDaemon.register(car)  # registered: the caller receives a proxy
        self.cars.append(car)
        print("server: built and registered", name, flush=True)
        return car

    def sketch(self, name):
        return {"name": name, "registered": False}  # plain data: a copy travels

    def report(self):
        return ["%s: %d km" % (car.name, car.odometer) for car in self.cars]


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Garage, "garage")
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
