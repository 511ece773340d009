"""concurrency demo: 20 concurrent 0.1 s blocking calls on a greenlet and on a multiplex daemon."""

import sys
import threading
import time

import gevent

import geopyro.api as api

CALLS = 20
CALL_SECONDS = 0.1


@api.expose
@api.behavior(instance_mode="single")
class SlowService:
    def __init__(self):
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()  # calls run on several threads at once

    def fetch(self, number):
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(CALL_SECONDS)  # a blocking I/O wait (a database, another service...)
        finally:
            with self.lock:
                self.running -= 1
        return number

    def peak(self):
        return self.most_at_once


def call_once(uri, number):
    with api.Proxy(uri) as service:
        return service.fetch(number)


def measure(servertype):
    api.config.SERVERTYPE = servertype  # read when the daemon is made
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(SlowService, "service")
    loop = gevent.spawn(daemon.requestLoop)
    began = time.perf_counter()
    calls = [gevent.spawn(call_once, uri, n) for n in range(CALLS)]
    gevent.joinall(calls, raise_error=True)
    took = time.perf_counter() - began
    assert sorted(call.value for call in calls) == list(range(CALLS))
    with api.Proxy(uri) as service:
        peak = service.peak()
    daemon.shutdown()
    loop.join(5)
    print("%-9s server: %d concurrent %.1f s calls took %.2f s wall time (at most %d running at once)"
          % (servertype, CALLS, CALL_SECONDS, took, peak), flush=True)
    return took


def main():
    greenlet_time = measure("greenlet")
    multiplex_time = measure("multiplex")
    print("difference: greenlet was %.1fx faster (%.2f s vs %.2f s); multiplex runs one call at a time"
          % (multiplex_time / greenlet_time, greenlet_time, multiplex_time), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
