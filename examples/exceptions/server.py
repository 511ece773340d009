"""exceptions server: methods that fail, and a methodcall_error_handler that sees every failure."""

import sys

import gevent
from gevent import subprocess

import geopyro.api as api
import shop


@api.expose
class Shop:
    stock = {"apple": 3, "pear": 0}

    def divide(self, a, b):
        return a / b

    def buy(self, item):
        if item not in self.stock:
            raise ValueError("we never sell %r" % item)
        if self.stock[item] == 0:
            raise shop.OutOfStock(item)
        self.stock[item] -= 1
        return "one %s, %d left" % (item, self.stock[item])


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    failures = []

    def error_handler(daemon, client_sock, method, vargs, kwargs, exception):
        failures.append(exception)
        print("server: error handler saw %s(%s) in %s%r from %s" % (
            type(exception).__name__, exception, method.__name__, tuple(vargs), client_sock), flush=True)

    daemon.methodcall_error_handler = error_handler
    uri = daemon.register(Shop, "shop")
    print("server: serving", uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    print("server: %d failed calls handled" % len(failures), flush=True)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
