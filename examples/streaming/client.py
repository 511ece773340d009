"""streaming client: python client.py <uri of the sensor>."""

import sys
import time

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as sensor:
        began = time.perf_counter()
        stream = sensor.readings(4)
        print("client: got %s at once, before any reading was made" % type(stream).__name__, flush=True)
        for reading in stream:
            print("client: after %.2f s received %s" % (time.perf_counter() - began, reading), flush=True)
        ticks = sensor.ticks()
        first = [next(ticks) for _ in range(5)]
        print("client: first five of an endless stream:", first, flush=True)
        ticks.close()  # the server drops its generator
        print("client: a plain iterator streams too:", list(sensor.names()), flush=True)
        print("client: done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
