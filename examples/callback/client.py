"""callback client: python client.py <uri of the worker>. Hosts its own Listener for the server to call."""

import logging
import sys

import gevent

import geopyro.api as api


class Listener:
    def __init__(self):
        self.steps_seen = []

    @api.expose
    def progress(self, step, total):
        self.steps_seen.append(step)
        print("client: callback progress %d/%d" % (step, total), flush=True)

    @api.expose
    @api.callback
    def finished(self, summary):
        print("client: callback finished(%r) runs, and fails on purpose" % summary, flush=True)
        raise RuntimeError("listener could not store the summary")


def main(uri):
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="client log: %(message)s")
    daemon = api.Daemon(host="127.0.0.1")
    listener = Listener()
    daemon.register(listener)
    loop = gevent.spawn(daemon.requestLoop)
    with api.Proxy(uri) as worker:
        print("client: worker says:", worker.run(listener, 3))  # the object goes out as a proxy
    print("client: callbacks received for steps", listener.steps_seen)
    daemon.shutdown()
    loop.join(5)


if __name__ == "__main__":
    main(sys.argv[1])
