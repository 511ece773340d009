"""Waiting helpers for tests: poll with a deadline instead of sleeping a fixed time."""

import threading
import time

import gevent


def wait_until(predicate, timeout=10.0, interval=0.01):
    """Poll ``predicate`` until it is true or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        pause.wait(interval)


def green_wait(event, timeout=10.0):
    """Server side: wait cooperatively (the daemon's hub keeps running) for a threading.Event."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        gevent.sleep(0.005)
    return event.is_set()
