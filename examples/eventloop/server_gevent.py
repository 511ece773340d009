"""Two daemons served by one requestLoop (combine) as a greenlet beside the program's own greenlets."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api

api.config.SERVERTYPE = "multiplex"


@api.expose
class Clock:
    def __init__(self, name):
        self.name = name
        self.ticks = 0

    def tick(self):
        self.ticks += 1
        return "%s tick %d" % (self.name, self.ticks)


def heartbeat(beats):
    while True:
        beats.append(1)
        gevent.sleep(0.05)  # the program's own greenlet keeps running while the daemon serves


def main(forever=False):
    first = api.Daemon(host="127.0.0.1")
    second = api.Daemon(host="127.0.0.1")
    uris = [first.register(Clock("first"), "clock"), second.register(Clock("second"), "clock")]
    first.combine(second)  # first's request loop now serves both
    for uri in uris:
        print("server: serving", uri, flush=True)
    beats = []
    loop = gevent.spawn(first.requestLoop)
    pulse = gevent.spawn(heartbeat, beats)
    status = 0
    if forever:
        loop.join()
    else:
        for uri in uris:
            client = subprocess.run([sys.executable, "client.py", str(uri), "2"], cwd=sys.path[0])
            status |= client.returncode
    first.shutdown()
    second.close()
    loop.join(5)
    pulse.kill()
    print("server: both daemons served from one loop; heartbeat greenlet ran meanwhile: %s"
          % ("yes" if len(beats) > 1 else "no"), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
