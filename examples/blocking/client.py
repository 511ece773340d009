"""blocking client: python client.py <uri of the sleeper>.

Four threads call nap(1.0) at the same time, each through its own proxy,
while a fifth proxy pings the server; then some CPU work is asked for.
"""

import sys
import threading
import time

import geopyro.api as api

NAPPERS = 4
NAP = 1.0


def nap(uri):
    with api.Proxy(uri) as sleeper:
        sleeper.nap(NAP)


def main(uri):
    with api.Proxy(uri) as sleeper:
        sleeper._pyroBind()
        nappers = [threading.Thread(target=nap, args=(uri,)) for _ in range(NAPPERS)]
        began = time.perf_counter()
        for napper in nappers:
            napper.start()
        time.sleep(0.2)  # the naps are under way
        with api.Proxy(uri) as newcomer:  # a new connection while the naps block
            asked = time.perf_counter()
            newcomer.ping()
            print("client: a new connection was answered in %.3f s while the naps ran"
                  % (time.perf_counter() - asked))
        for napper in nappers:
            napper.join()
        took = time.perf_counter() - began
        report = sleeper.report()
        print("client: %d calls of time.sleep(%.1f) at once took %.1f s" % (NAPPERS, NAP, took))
        print("client: at most %d naps were in progress at once, on %s" % (report["peak"], report["where"]))
        sleeper.crunch(1.0)  # long enough for the detector to see it even on a busy machine
        sleeper.crunch_on_a_thread(0.3)
        print("client: CPU work done (a patched server warns about the unmarked one)")


if __name__ == "__main__":
    main(sys.argv[1])
