"""pyro4migration: an old client, pure Pyro4 (4.x), unchanged. python client_pyro4.py <uri>."""

import sys

import Pyro4
import Pyro4.errors


def main(uri):
    assert not any(name.startswith(("geopyro", "Pyro5")) for name in sys.modules), "this client must be pure Pyro4"
    with Pyro4.Proxy(uri) as station:
        print("pyro4 client (Pyro4 %s): %s, north %.1f C" % (Pyro4.__version__, station.name,
                                                            station.temperature("north")))
        station.note("checked by the Pyro4 client")
        print("pyro4 client: streamed", list(station.readings(2)))
        with Pyro4.batch(station) as batch:
            batch.temperature("north")
            batch.temperature("south")
        print("pyro4 client: batch ->", list(batch()))
        probe = station.attach_probe("p4")
        print("pyro4 client: autoproxy is a %s.%s: %s" % (type(probe).__module__, type(probe).__name__,
                                                         probe.describe()))
        probe._pyroRelease()
        try:
            station.temperature("west")
        except ValueError as exc:
            traceback = "".join(Pyro4.util.getPyroTraceback())
            print("pyro4 client: error: %s; remote traceback names temperature(): %s"
                  % (exc, "temperature" in traceback))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
