"""blob-dispatch server: a dispatcher that forwards SerializedBlobs to workers by topic."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api


class Parcel:
    """The workers' view of the client's parcels."""

    def __init__(self, content, weight):
        self.content, self.weight = content, weight


def workers_know_parcels():
    api.register_dict_to_class("parcels.Parcel", lambda name, d: Parcel(d["content"], d["weight"]))


@api.expose
class Dispatcher:
    workers = {}  # topic -> worker uri, filled in by main()

    def process(self, blob):
        topic = blob.info
        print("server: dispatcher got a %s for topic %r, passing it on unread" % (type(blob).__name__, topic),
              flush=True)
        with api.Proxy(self.workers[topic]) as worker:
            return worker.process(blob)


@api.expose
class Worker:
    def __init__(self, name):
        self.name = name

    def process(self, blob):
        parcel = blob.deserialized()[0]
        print("server: worker %s unpacked a %s: %s (%.1f kg)"
              % (self.name, type(parcel).__name__, parcel.content, parcel.weight), flush=True)
        return "%s handled %s" % (self.name, parcel.content)


def main(forever=False):
    workers_know_parcels()
    dispatcher_daemon = api.Daemon(host="127.0.0.1")
    worker_daemons = [api.Daemon(host="127.0.0.1") for _ in range(2)]
    for topic, daemon in zip(("fragile", "bulk"), worker_daemons):
        Dispatcher.workers[topic] = daemon.register(Worker(topic + "-worker"), "worker")
    uri = dispatcher_daemon.register(Dispatcher, "dispatcher")
    print("server: dispatcher at", uri, flush=True)
    daemons = [dispatcher_daemon] + worker_daemons
    loops = [gevent.spawn(daemon.requestLoop) for daemon in daemons]
    status = 0
    if forever:
        gevent.joinall(loops)
    else:
        status = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0]).returncode
    for daemon in daemons:
        daemon.shutdown()
    gevent.joinall(loops, timeout=5)
    return status


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
