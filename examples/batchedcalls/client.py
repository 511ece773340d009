"""batchedcalls client: python client.py <uri of the calculator>."""

import sys
import time

import geopyro.api as api

CALLS = 500


def main(uri):
    with api.Proxy(uri) as calc:
        calc._pyroBind()
        began = time.perf_counter()
        total = sum(calc.add(i, i) for i in range(CALLS))
        one_by_one = time.perf_counter() - began
        print("client: %d normal calls: sum %d in %.3f s" % (CALLS, total, one_by_one))

        batch = calc._pyroBatch()
        began = time.perf_counter()
        for i in range(CALLS):
            batch.add(i, i)  # only recorded
        total = sum(batch())  # one message out, one back
        batched = time.perf_counter() - began
        print("client: %d batched calls: sum %d in %.3f s (%.0fx faster)" % (CALLS, total, batched,
                                                                            one_by_one / batched))

        batch = api.BatchProxy(calc)
        batch.add(1, 2)
        batch.divide(10, 4)
        batch.divide(1, 0)
        batch.note("never run: the batch stops at the failure")
        results = batch()
        print("client: first result", next(results))
        print("client: second result", next(results))
        try:
            next(results)
        except ZeroDivisionError as exc:
            print("client: third result raised ZeroDivisionError:", exc)
        print("client: notes on the server:", calc.notes())

        batch = calc._pyroBatch()
        batch.note("sent oneway 1")
        batch.note("sent oneway 2")
        print("client: oneway batch returned", batch(oneway=True))
        print("client: notes on the server:", calc.notes())

        batch = calc._pyroBatch()
        batch.add(20, 22)
        batch.add(100, 1)
        future = batch(asynchronous=True)
        print("client: asynchronous batch gave", future)
        print("client: its results:", list(future.value))


if __name__ == "__main__":
    main(sys.argv[1])
