"""callback server: calls methods on a proxy that the client passed in."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Worker:
    def run(self, listener, steps):
        print("server: got a listener:", type(listener).__name__, listener._pyroUri, flush=True)
        for step in range(1, steps + 1):
            time.sleep(0.05)
            listener.progress(step, steps)  # a call into the client, while the client waits for run()
        try:
            listener.finished("%d steps" % steps)
        except Exception as exc:
            print("server: the client's finished() callback failed: %s: %s" % (type(exc).__name__, exc), flush=True)
        return "run of %d steps complete" % steps


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Worker, "worker")
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
