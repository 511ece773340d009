"""disconnects client: python client.py <uri of the counter>."""

import sys
import time

import geopyro.api as api
from geopyro.errors import CommunicationError, ConnectionClosedError, TimeoutError


def main(uri):
    with api.Proxy(uri) as counter:
        print("client: increment ->", counter.increment())
        print("client: idle for 1 s (longer than the server's COMMTIMEOUT)")
        time.sleep(1.0)
        try:
            counter.increment()
        except ConnectionClosedError as exc:
            print("client: the server had dropped us: %s: %s" % (type(exc).__name__, exc))
            counter._pyroReconnect()
            print("client: _pyroReconnect() done; increment ->", counter.increment())

        counter._pyroMaxRetries = 2
        print("client: idle again, now with _pyroMaxRetries = 2")
        time.sleep(1.0)
        print("client: increment (retried on a fresh connection by itself) ->", counter.increment())

        counter._pyroMaxRetries = 0
        counter._pyroTimeout = 0.2  # the client side of the same idea: give up on a call after 0.2 s
        try:
            counter.slow(0.4)
        except TimeoutError as exc:
            print("client: slow call gave up: %s: %s" % (type(exc).__name__, exc))
        counter._pyroTimeout = None
        try:
            print("client: after the timeout the proxy connects anew by itself; increment ->", counter.increment())
        except CommunicationError as exc:
            print("client: still broken:", exc)


if __name__ == "__main__":
    main(sys.argv[1])
