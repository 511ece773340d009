"""oneway server: a @oneway method keeps working after the caller has moved on."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
@api.behavior(instance_mode="single")
class Worker:
    def __init__(self):
        self.done = []

    @api.oneway
    def start_job(self, name, seconds):
        print("server: job %s started" % name, flush=True)
        time.sleep(seconds)  # blocks its own thread only: other calls go on meanwhile
        self.done.append(name)
        print("server: job %s finished" % name, flush=True)

    def slow_job(self, name, seconds):
        time.sleep(seconds)
        self.done.append(name)
        return "%s done" % name

    def status(self):
        return list(self.done)


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
