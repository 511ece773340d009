"""pyro4migration: a client that moved to geopyro (its import lines changed). python client_moved.py <uri>."""

import sys
import time

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as station:
        deadline = time.monotonic() + 10
        notes = station.read_notes()
        while len(notes) < 2 and time.monotonic() < deadline:  # (oneway calls run in the background)
            time.sleep(0.05)
            notes = station.read_notes()
        print("moved client (geopyro): notes left by the others: %s" % sorted(notes))
        print("moved client: north %.1f C" % station.temperature("north"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
