"""pyro4migration: a Pyro5 client of the same service, at the same time. python client_pyro5.py <uri>."""

import sys

import Pyro5.api


def main(uri):
    assert not any(name.startswith(("geopyro", "Pyro4")) for name in sys.modules), "this client must be pure Pyro5"
    with Pyro5.api.Proxy(uri) as station:
        print("pyro5 client: %s, south %.1f C" % (station.name, station.temperature("south")))
        station.note("checked by the Pyro5 client")
        probe = station.attach_probe("p5")
        print("pyro5 client: autoproxy is a %s.%s: %s" % (type(probe).__module__, type(probe).__name__,
                                                         probe.describe()))
        probe._pyroRelease()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
