"""oneway client: python client.py <uri of the worker>."""

import sys
import time

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as worker:
        worker._pyroBind()  # connect first so the timings below are only the calls
        began = time.perf_counter()
        worker.start_job("A", 1.0)
        took = time.perf_counter() - began
        print("client: oneway start_job returned after %.3f s (it did not wait)" % took)
        print("client: status right away:", worker.status())
        time.sleep(1.3)
        print("client: status after 1.3 s:", worker.status())
        began = time.perf_counter()
        print("client: normal call:", worker.slow_job("B", 0.5))
        print("client: the normal call waited %.2f s" % (time.perf_counter() - began))
        print("client: oneway returned immediately:", "yes" if took < 0.5 else "NO")


if __name__ == "__main__":
    main(sys.argv[1])
