"""async client: python client.py <uri of the oracle>."""

import sys
import time

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as oracle:
        oracle._pyroAsync()
        began = time.perf_counter()
        future = oracle.slow_square(7)
        print("client: call returned %r after %.3f s" % (future, time.perf_counter() - began))
        dots = 0
        while not future.ready:
            time.sleep(0.1)  # the program's own work, while the call runs
            dots += 1
        print("client: did %d bits of own work meanwhile; value = %d" % (dots, future.value))

        chained = oracle.slow_square(3, 0.2).then(lambda value: value + 1).then(lambda value: "result %d" % value)
        print("client: chained with then():", chained.value)

        print("client: wait(0.1) on a 0.5 s call says", oracle.slow_square(2).wait(0.1))

        failing = oracle.fail()
        try:
            failing.value
        except LookupError as exc:
            print("client: value of a failed call raised LookupError:", exc)
        handled = oracle.fail().iferror(lambda exc: "handled %s" % type(exc).__name__)
        print("client: iferror() turned the failure into:", handled.value)

        oracle._pyroAsync(False)
        print("client: back to normal calls:", oracle.slow_square(5, 0.0))

    proxies = [api.Proxy(uri) for _ in range(3)]
    for proxy in proxies:
        proxy._pyroAsync()
    began = time.perf_counter()
    futures = [proxy.slow_square(n) for n, proxy in enumerate(proxies, 1)]
    print("client: three 0.5 s calls on three proxies: %s in %.2f s"
          % ([f.value for f in futures], time.perf_counter() - began))
    for proxy in proxies:
        proxy._pyroRelease()


if __name__ == "__main__":
    main(sys.argv[1])
