"""interop client: pure Pyro5, no geopyro. python client.py <uri of the bank>."""

import sys
import time

import Pyro5
import Pyro5.api
import Pyro5.errors


def main(uri):
    assert not any(name.startswith("geopyro") for name in sys.modules), "this client must be pure Pyro5"
    print("client: Pyro5 %s, geopyro not loaded" % Pyro5.__version__)
    with Pyro5.api.Proxy(uri) as bank:
        print("client: remote property name =", bank.name)
        print("client: deposit ->", bank.deposit(10))
        bank.ping("hi")
        time.sleep(0.1)
        print("client: oneway ping arrived:", bank.pings())
        print("client: streamed history:", list(bank.history(3)))
        batch = Pyro5.api.BatchProxy(bank)
        batch.deposit(1)
        batch.deposit(2)
        print("client: batch ->", [result["amount"] for result in batch()])
        account = bank.open_account("frank")
        print("client: autoproxy is a %s: %s" % (type(account).__module__ + "." + type(account).__name__,
                                                  account.statement()))
        account._pyroRelease()
        try:
            bank.deposit(-5)
        except ValueError as exc:
            print("client: ValueError from the geopyro server:", exc)
            remote = "".join(Pyro5.errors.get_pyro_traceback())
            print("client: its remote traceback mentions deposit():", "in deposit" in remote)


if __name__ == "__main__":
    main(sys.argv[1])
