"""Calls the eventloop example's server: python client.py <uri> [calls]."""

import sys

import geopyro.api as api


def run(uri, calls=3):
    with api.Proxy(uri) as clock:
        for _ in range(calls):
            print("client: server says", clock.tick())


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
