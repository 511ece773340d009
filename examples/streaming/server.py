"""streaming server: methods that return generators and iterators."""

import itertools
import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Sensor:
    def readings(self, count):
        print("server: readings() generator started", flush=True)
        for number in range(1, count + 1):
            time.sleep(0.1)  # pretend each reading takes a while to measure
            print("server: produced reading %d" % number, flush=True)
            yield {"n": number, "value": number * 1.5}

    def ticks(self):
        try:
            for number in itertools.count():
                yield number
        finally:
            print("server: endless ticks() generator was closed", flush=True)

    def names(self):
        return iter(["north", "east", "south", "west"])


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Sensor, "sensor")
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
