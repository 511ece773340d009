"""nat server: the daemon advertises the address of a port forwarder in front of it."""

import sys

import gevent
from gevent import socket, subprocess
from gevent.server import StreamServer

import geopyro.api as api


class Forwarder:
    """Accepts on a free port and pipes each connection to the daemon's real port."""

    def __init__(self):
        self.target = None
        self.forwarded = 0
        self.server = StreamServer(("127.0.0.1", 0), self.handle)
        self.server.start()
        self.port = self.server.server_port

    def handle(self, outside, address):
        inside = socket.create_connection(self.target)
        pumps = [gevent.spawn(self.pump, outside, inside), gevent.spawn(self.pump, inside, outside)]
        gevent.joinall(pumps, count=1)
        gevent.killall(pumps)
        inside.close()
        outside.close()

    def pump(self, source, dest):
        while True:
            data = source.recv(65536)
            if not data:
                return
            self.forwarded += len(data)
            dest.sendall(data)


@api.expose
class Ticket:
    def __init__(self, number):
        self.number = number

    def describe(self):
        return "ticket %d" % self.number


@api.expose
class Office:
    def where(self):
        return "the daemon listens on %s" % self._pyroDaemon.locationStr

    def issue(self, number):
        ticket = Ticket(number)
        self._pyroDaemon.register(ticket)
        return ticket  # goes out as a proxy with the NAT address too


def main(forever=False):
    forwarder = Forwarder()
    daemon = api.Daemon(host="127.0.0.1", nathost="127.0.0.1", natport=forwarder.port)
    forwarder.target = daemon.sock.getsockname()[:2]
    uri = daemon.register(Office, "office")
    print("server: daemon bound on", daemon.locationStr, flush=True)
    print("server: forwarder listening on 127.0.0.1:%d" % forwarder.port, flush=True)
    print("server: uri handed out (NAT address):", uri, flush=True)
    print("server: uriFor(nat=False) (inside address):", daemon.uriFor("office", nat=False), flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    forwarder.server.stop()
    print("server: the forwarder carried %d bytes" % forwarder.forwarded, flush=True)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
