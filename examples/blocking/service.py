"""The service both servers offer: methods that block, as ordinary Pyro5 code does."""

import threading
import time

import gevent.monkey

import geopyro.api as api

_os_thread_id = gevent.monkey.get_original("_thread", "get_ident")  # the real thread, even when patched
MAIN_THREAD = _os_thread_id()


@api.expose
@api.behavior(instance_mode="single")
class Sleeper:
    def __init__(self):
        self.lock = threading.Lock()  # calls may run on several threads at once
        self.in_progress = 0
        self.peak = 0
        self.threads = set()

    def nap(self, seconds):
        """A blocking wait, the way a database driver or a device call waits."""
        with self.lock:
            self.in_progress += 1
            self.peak = max(self.peak, self.in_progress)
            self.threads.add(_os_thread_id())
        try:
            time.sleep(seconds)
        finally:
            with self.lock:
                self.in_progress -= 1

    def ping(self):
        return "pong"

    def crunch(self, seconds):
        """CPU work: it never yields, so in a patched program it holds the hub (the blocking detector says so)."""
        deadline = time.perf_counter() + seconds
        count = 0
        while time.perf_counter() < deadline:
            count += 1
        return count

    @api.blocking
    def crunch_on_a_thread(self, seconds):
        """The same work, marked @blocking: it runs on a pool thread even in a patched program."""
        return self.crunch(seconds)

    def report(self):
        """How many naps were in progress at once, and on which threads they ran (then starts afresh)."""
        with self.lock:
            peak, threads = self.peak, self.threads
            self.peak, self.threads = 0, set()
        if threads == {MAIN_THREAD}:
            where = "the main thread, inline in their connections' greenlets"
        else:
            where = "%d pool threads" % len(threads - {MAIN_THREAD})
        return {"peak": peak, "where": where}
