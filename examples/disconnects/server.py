"""disconnects server: COMMTIMEOUT makes the daemon drop connections that stay silent too long."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api

api.config.COMMTIMEOUT = 0.5  # read before the daemon is made; idle connections close after 0.5 s


@api.expose
@api.behavior(instance_mode="single")
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def slow(self, seconds):
        time.sleep(seconds)
        return "slow call done"


class ReportingDaemon(api.Daemon):
    def clientDisconnect(self, conn):
        print("server: connection from %s closed" % (conn.getpeername(),), flush=True)


def main(forever=False):
    daemon = ReportingDaemon(host="127.0.0.1")
    uri = daemon.register(Counter, "counter")
    print("server: serving", uri, "with COMMTIMEOUT", api.config.COMMTIMEOUT, flush=True)
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
