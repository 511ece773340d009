"""nameserver server: a name server on a free port, and serve() registering objects in it."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Greeter:
    def greet(self, name):
        return "hello %s, from the greeter found by name" % name


@api.expose
class Clock:
    def ticks(self):
        return 42


def main(forever=False):
    ns_uri, ns_daemon, bcserver = api.start_ns(host="127.0.0.1", port=0)  # port 0: any free port
    ns_port = ns_daemon.sock.getsockname()[1]
    ns_loop = gevent.spawn(ns_daemon.requestLoop)
    print("server: name server running at", ns_uri, flush=True)
    api.config.NS_HOST = "127.0.0.1"
    api.config.NS_PORT = ns_port  # locate_ns() inside serve() now finds our name server

    daemon = api.Daemon(host="127.0.0.1")
    serving = gevent.spawn(api.serve, {Greeter: "example.greeter", Clock: "example.clock"},
                           daemon=daemon, use_ns=True, verbose=True)
    with api.locate_ns("127.0.0.1", ns_port) as ns:
        while len(ns.list(prefix="example.")) < 2 and not serving.dead:  # wait until serve() registered both
            gevent.sleep(0.02)
    status = 0
    if forever:
        print("server: run  python client.py %d" % ns_port, flush=True)
        serving.join()
    else:
        status = subprocess.run([sys.executable, "client.py", str(ns_port)], cwd=sys.path[0]).returncode
    daemon.shutdown()
    serving.join(5)
    ns_daemon.shutdown()
    ns_loop.join(5)
    if bcserver is not None:
        bcserver.close()
    return status


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
