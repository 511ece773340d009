"""nameserver client: python client.py <name server port> [host]."""

import sys

import geopyro.api as api


def main(port, host="127.0.0.1"):
    api.config.NS_HOST = host
    api.config.NS_PORT = port
    with api.locate_ns(host, port) as ns:
        for name, uri in sorted(ns.list(prefix="example.").items()):
            print("client: name server knows %s -> %s" % (name, uri))
        clock_uri = ns.lookup("example.clock")
    with api.Proxy("PYRONAME:example.greeter") as greeter:
        print("client:", greeter.greet("erin"))
    with api.Proxy(clock_uri) as clock:
        print("client: clock found by lookup() says", clock.ticks())


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:3])
