"""A multiplex daemon driven by a plain selectors loop that the program owns."""

import selectors
import subprocess
import sys
import time

import geopyro.api as api

api.config.SERVERTYPE = "multiplex"  # events() belongs to the multiplex server type


@api.expose
class Clock:
    def __init__(self):
        self.ticks = 0

    def tick(self):
        self.ticks += 1
        return "tick %d" % self.ticks


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Clock(), "clock")
    print("server: serving", uri, flush=True)
    client = None if forever else subprocess.Popen([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    selector = selectors.DefaultSelector()
    own_work_done = 0
    last_tick = time.monotonic()
    while forever or client.poll() is None:
        for sock in daemon.sockets:  # the set changes as clients come and go
            selector.register(sock, selectors.EVENT_READ)
        ready = [key.fileobj for key, _ in selector.select(timeout=0.1)]
        for sock in daemon.sockets:
            selector.unregister(sock)
        if ready:
            daemon.events(ready)
        if time.monotonic() - last_tick > 0.05:  # the program's own work, between requests
            own_work_done += 1
            last_tick = time.monotonic()
    selector.close()
    daemon.close()
    print("server: client finished; the loop also did its own work %s times" % ("several" if own_work_done > 1
                                                                                 else own_work_done), flush=True)
    return 0 if forever or client.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
