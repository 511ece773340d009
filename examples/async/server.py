"""async server: slow methods for the client to call asynchronously."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Oracle:
    def slow_square(self, number, seconds=0.5):
        time.sleep(seconds)
        return number * number

    def fail(self):
        time.sleep(0.1)
        raise LookupError("the oracle does not know")


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Oracle, "oracle")
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
