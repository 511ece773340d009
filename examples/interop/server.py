"""interop server: plain geopyro; its client is a Pyro5 program."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


@api.expose
class Account:
    def __init__(self, owner):
        self.owner = owner

    def statement(self):
        return "account of %s, kept by geopyro" % self.owner


@api.expose
@api.behavior(instance_mode="single")
class Bank:
    def __init__(self):
        self.pinged = []

    @property
    def name(self):
        return "geopyro bank"

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError("deposit must be positive, not %r" % amount)
        return {"ok": True, "amount": amount}

    @api.oneway
    def ping(self, text):
        self.pinged.append(text)

    def pings(self):
        return list(self.pinged)

    def history(self, count):
        for number in range(count):
            time.sleep(0.01)
            yield "transaction %d" % number

    def open_account(self, owner):
        account = Account(owner)
        self._pyroDaemon.register(account)
        return account


def main(forever=False):
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Bank, "bank")
    print("server (geopyro %s): serving %s" % (api.__version__, uri), flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
