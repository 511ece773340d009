"""thirdpartylib server: expose() used as a function on a library class."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api
import weatherlib

ExposedStation = api.expose(weatherlib.Station)  # no change to the library's source

api.register_class_to_dict(weatherlib.Reading, lambda reading: {
    "__class__": "weatherlib.Reading", "city": reading.city, "celsius": reading.celsius})


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(ExposedStation, "station")
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
