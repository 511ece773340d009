"""A load generator process: geopyro's client on gevent (the wire is the same for every server).

Protocol with the runner: connect everything, print ``READY {...}``, wait for a ``GO`` line on
stdin, run, print ``RESULT {...}`` and exit. Modes: latency, raw, oneway, bulk, fanin, io, idle,
pairs, blocking; ``--client pyro5`` runs the latency mode with Pyro5's own (threaded, blocking)
client instead. ``pairs`` answers every ``GO ...`` with one ``ROUND {...}`` until ``STOP``; ``--patch``
monkey-patches the process first (then geopyro's client uses gevent sockets).
"""

import argparse
import json
import os
import random
import socket
import sys
import time

from benchmarks import common

MAX_SAMPLES = 50000  # latency samples sent back per process (uniform subsample beyond this)


def emit(tag, payload):
    sys.stdout.write("%s %s\n" % (tag, json.dumps(payload)))
    sys.stdout.flush()


def subsample(values, limit=MAX_SAMPLES):
    if len(values) > limit:
        values = random.sample(values, limit)
    return [round(v * 1e6, 1) for v in values]  # microseconds


def wait_go():
    import gevent
    line = gevent.get_hub().threadpool.apply(sys.stdin.readline)
    if not line.startswith("GO"):
        sys.exit("load generator: runner went away")


def handshake_sync(ready):
    emit("READY", ready)
    wait_go()


# --- geopyro client, many connections ---------------------------------------------------------

def run_connections(args, work, release=True):
    """One greenlet per connection: connect (bounded concurrency), wait for GO, run ``work(proxy)``.

    With ``release=False`` the proxies stay connected after ``work`` (which then keeps them).
    """
    import gevent
    import gevent.event
    import gevent.lock
    import geopyro
    from geopyro.api import Proxy

    geopyro.config.SERIALIZER = args.serializer
    geopyro.config.COMMTIMEOUT = args.timeout
    sem = gevent.lock.Semaphore(args.connect_concurrency)
    go = gevent.event.Event()
    all_done = gevent.event.Event()
    state = {"pending": args.conns, "connected": 0, "refused": 0, "errors": 0, "refusal_reasons": {},
             "error_reasons": {}}

    def note(kind, exc):
        reasons = state[kind + "_reasons"]
        key = ("%s: %s" % (type(exc).__name__, exc))[:160]
        if key in reasons or len(reasons) < 5:
            reasons[key] = reasons.get(key, 0) + 1

    def worker():
        proxy = None
        try:
            with sem:
                proxy = Proxy(args.uri)
                proxy._pyroBind()
            state["connected"] += 1
        except Exception as exc:
            state["refused"] += 1
            note("refusal", exc)
            proxy = None
        finally:
            state["pending"] -= 1
            if state["pending"] == 0:
                all_done.set()
        if proxy is None:
            return
        try:
            go.wait()
            work(proxy)
        except Exception as exc:
            state["errors"] += 1
            note("error", exc)
        finally:
            if release:
                proxy._pyroRelease()

    greenlets = [gevent.spawn(worker) for _ in range(args.conns)]
    if args.conns:
        all_done.wait()
    handshake_sync({"connected": state["connected"], "refused": state["refused"]})
    state["t_go"] = time.perf_counter()
    go.set()
    gevent.joinall(greenlets, timeout=args.duration + args.timeout + 30)
    state["t_end"] = time.perf_counter()
    state["unfinished"] = sum(1 for g in greenlets if not g.dead)
    gevent.killall([g for g in greenlets if not g.dead], block=False)
    return state


def mode_fanin(args):
    latencies = []
    counter = [0]
    deadline = [None]

    def work(proxy):
        if deadline[0] is None:
            deadline[0] = time.perf_counter() + args.duration
        end = deadline[0]
        lat = latencies
        now = time.perf_counter()
        while now < end:
            proxy.echo(common.ECHO_VALUE)
            t = time.perf_counter()
            if t <= end:
                counter[0] += 1
                lat.append(t - now)
            now = t

    state = run_connections(args, work)
    return dict(_summary(state), calls=counter[0], duration=args.duration, latencies_us=subsample(latencies))


def mode_io(args):
    """``--count`` bursts: every connection calls sleep() at once; after each burst print ROUND, wait for GO."""
    import gevent
    proxies = []
    state = run_connections(args, proxies.append, release=False)
    walls, completed = [], []
    for burst in range(args.count):
        if burst:
            emit("ROUND", {"burst": burst - 1})
            wait_go()
        done = []

        def call(proxy):
            proxy._pyroClaimOwnership()  # made by another greenlet
            try:
                proxy.sleep(args.sleep)
                done.append(time.perf_counter())
            except Exception:
                state["errors"] += 1

        start = time.perf_counter()
        gevent.joinall([gevent.spawn(call, proxy) for proxy in proxies], timeout=args.timeout)
        walls.append((max(done) - start) if done else None)
        completed.append(len(done))
    for proxy in proxies:
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()
    return dict(_summary(state), completed=completed, walls_s=walls)


def mode_cpu(args):
    """Every connection calls burn(--sleep) over and over for --duration seconds; counts the calls."""
    import gevent
    proxies = []
    state = run_connections(args, proxies.append, release=False)
    done = []
    deadline = time.perf_counter() + args.duration

    def calls(proxy):
        proxy._pyroClaimOwnership()  # made by another greenlet
        while time.perf_counter() < deadline:
            try:
                proxy.burn(args.sleep)
                done.append(time.perf_counter())
            except Exception:
                state["errors"] += 1
                return

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(calls, proxy) for proxy in proxies], timeout=args.duration + args.timeout)
    wall = time.perf_counter() - start
    for proxy in proxies:
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()
    return dict(_summary(state), calls=len(done), wall_s=wall)


def mode_idle(args):
    state = run_connections(args, lambda proxy: None)
    return _summary(state)


def _summary(state):
    return {k: state[k] for k in ("connected", "refused", "errors", "unfinished", "refusal_reasons",
                                  "error_reasons")}


# --- one connection ----------------------------------------------------------------------------

def _one_proxy(args):
    import geopyro
    from geopyro.api import Proxy
    geopyro.config.SERIALIZER = args.serializer
    geopyro.config.COMMTIMEOUT = 0.0  # one connection: the default settings, as users run them
    proxy = Proxy(args.uri)
    proxy._pyroBind()
    return proxy


def _sequential(call, duration):
    latencies = []
    start = now = time.perf_counter()
    end = start + duration
    while now < end:
        call()
        t = time.perf_counter()
        latencies.append(t - now)
        now = t
    return {"calls": len(latencies), "elapsed_s": now - start, "latencies_us": subsample(latencies)}


def mode_latency(args):
    if args.client == "pyro5":
        import Pyro5.api
        Pyro5.api.config.SERIALIZER = args.serializer
        proxy = Pyro5.api.Proxy(args.uri)
        proxy._pyroBind()
    else:
        proxy = _one_proxy(args)
    for _ in range(200):  # warm up
        proxy.echo(common.ECHO_VALUE)
    handshake_sync({"connected": 1})
    result = _sequential(lambda: proxy.echo(common.ECHO_VALUE), args.duration)
    proxy._pyroRelease()
    return result


def mode_raw(args):
    import gevent.socket
    invoke, reply = common.raw_messages(args.serializer)
    host, port = args.uri.split(":")[1:]
    sock = gevent.socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    size = len(reply)
    buf = bytearray(size)
    view = memoryview(buf)

    def call():
        sock.sendall(invoke)
        got = 0
        while got < size:
            n = sock.recv_into(view[got:])
            if not n:
                raise ConnectionError("raw server closed")
            got += n

    for _ in range(200):
        call()
    handshake_sync({"connected": 1})
    result = _sequential(call, args.duration)
    sock.close()
    return result


def mode_oneway(args):
    """Send ``count`` oneway calls as fast as possible; done when the server has run all of them."""
    proxy = _one_proxy(args)
    before = proxy.hits()
    handshake_sync({"connected": 1})
    start = time.perf_counter()
    for _ in range(args.count):
        proxy.hit()
    send_done = time.perf_counter()
    processed = proxy.hits() - before
    give_up = time.perf_counter() + args.timeout
    while processed < args.count and time.perf_counter() < give_up:  # oneway calls may still be queued
        time.sleep(0.0005)
        processed = proxy.hits() - before
    finish = time.perf_counter()
    proxy._pyroRelease()
    return {"sent": args.count, "processed": processed, "send_s": send_done - start, "elapsed_s": finish - start}


def mode_bulk(args):
    import serpent
    proxy = _one_proxy(args)
    payload = os.urandom(args.size)
    proxy.bulk(b"warm-up")
    proxy.bulk(payload)  # the first large call also grows both processes' heaps; not measured
    handshake_sync({"connected": 1})
    times = []
    for _ in range(args.count):
        t0 = time.perf_counter()
        result = proxy.bulk(payload)
        if isinstance(result, dict):
            result = serpent.tobytes(result)
        times.append(time.perf_counter() - t0)
        if len(result) != len(payload):
            raise RuntimeError("bulk echo returned %d bytes instead of %d" % (len(result), len(payload)))
    proxy._pyroRelease()
    return {"size": args.size, "calls": args.count, "times_s": times}


# --- several client/server pairs, one proxy each, measured in alternating slices ---------------

def make_proxy(client, uri, serializer):
    """A bound proxy of the given client library (each follows this process: patched or not)."""
    if client == "pyro5":
        from Pyro5.api import Proxy
    else:
        from geopyro.api import Proxy
    proxy = Proxy(uri)
    proxy._pyroSerializer = serializer
    proxy._pyroBind()
    return proxy


def read_command(patched):
    """The runner's next stdin line; a patched process waits for it in a thread, leaving the hub free."""
    if patched:
        import gevent
        return gevent.get_hub().threadpool.apply(sys.stdin.readline).strip()
    return sys.stdin.readline().strip()


def _slice(proxy, seconds, warmup):
    """Calls/s and p50/p99 of sequential echo calls for ``seconds``, after ``warmup`` unmeasured calls."""
    for _ in range(warmup):  # the other rows ran meanwhile: let caches and a lingering thread settle
        proxy.echo(common.ECHO_TEXT)
    res = _sequential(lambda: proxy.echo(common.ECHO_TEXT), seconds)
    lat = sorted(res["latencies_us"])
    return {"calls": res["calls"], "elapsed_s": res["elapsed_s"], "p50_us": lat[len(lat) // 2],
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


def mode_pairs(args):
    """``--rows`` is a JSON list of {name, client, uri, serializer}.

    Each ``GO <round> <serializer>`` measures that serializer's rows once, starting at another row
    every round (no row always follows the same one), and answers ``ROUND {...}``.
    """
    rows = json.loads(args.rows)
    proxies = {}
    for row in rows:
        proxies[row["name"]] = proxy = make_proxy(row["client"], row["uri"], row["serializer"])
        for _ in range(200):
            proxy.echo(common.ECHO_TEXT)
    from geopyro import program
    gevent_sockets = program.client_cooperates()
    sys.stderr.write("patched: %s; geopyro's client uses gevent sockets: %s\n" % (args.patch, gevent_sockets))
    emit("READY", {"connected": len(proxies), "patched": args.patch, "geopyro_client_uses_gevent": gevent_sockets})
    rounds = 0
    while True:
        command = read_command(args.patch).split()
        if command[:1] != ["GO"]:
            break
        number, serializer = int(command[1]), command[2]
        chosen = [row for row in rows if row["serializer"] == serializer]
        start = number % len(chosen)
        measured = {}
        for row in chosen[start:] + chosen[:start]:
            measured[row["name"]] = _slice(proxies[row["name"]], args.duration, args.warmup)
        emit("ROUND", {"round": number, "serializer": serializer, "rows": measured})
        rounds += 1
    for proxy in proxies.values():
        proxy._pyroRelease()
    return {"rounds": rounds}


def mode_blocking(args):
    """``--conns`` threads, each with its own proxy per server, call block(--sleep) at the same moment.

    ``--rows`` is a JSON list of {name, client, uri}; the servers take turns, ``--count`` times each
    (the first one alternates). Returns every repetition's wall time, from release to last reply.
    """
    import threading
    rows = json.loads(args.rows)
    plan = [rows[(rep + i) % len(rows)] for rep in range(args.count) for i in range(len(rows))]
    marks, ends, errors = {}, [], []
    ready = threading.Barrier(args.conns + 1)
    start_line = threading.Barrier(args.conns + 1, action=lambda: marks.update(start=time.perf_counter()))
    finish_line = threading.Barrier(args.conns + 1)

    def worker():
        try:
            proxies = {row["name"]: make_proxy(row["client"], row["uri"], "serpent") for row in rows}
            for proxy in proxies.values():
                proxy.echo(common.ECHO_TEXT)
        except Exception:
            ready.abort()  # the main thread fails instead of waiting forever
            raise
        ready.wait()
        for row in plan:
            start_line.wait()
            try:
                proxies[row["name"]].block(args.sleep)
                ends.append(time.perf_counter())
            except Exception as exc:
                errors.append("%s: %r" % (row["name"], exc))
            finish_line.wait()
        for proxy in proxies.values():
            proxy._pyroRelease()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.conns)]
    for t in threads:
        t.start()
    ready.wait()
    emit("READY", {"connected": args.conns * len(rows)})
    if read_command(False) != "GO":
        sys.exit("load generator: runner went away")
    walls = {row["name"]: [] for row in rows}
    for row in plan:
        del ends[:]  # every worker waits at the start line now
        start_line.wait()
        finish_line.wait()
        walls[row["name"]].append(max(ends) - marks["start"] if len(ends) == args.conns else None)
    for t in threads:
        t.join(10)
    return {"walls_s": walls, "order": [row["name"] for row in plan], "errors": errors[:10]}


MODES = {"fanin": mode_fanin, "io": mode_io, "cpu": mode_cpu,
         "idle": mode_idle, "latency": mode_latency, "raw": mode_raw,
         "oneway": mode_oneway, "bulk": mode_bulk, "pairs": mode_pairs, "blocking": mode_blocking}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=sorted(MODES), required=True)
    parser.add_argument("--uri", help="the server (every mode but pairs and blocking)")
    parser.add_argument("--rows", help="pairs/blocking: JSON list of rows (name, client, uri, serializer)")
    parser.add_argument("--warmup", type=int, default=20, help="pairs: unmeasured calls before each slice")
    parser.add_argument("--patch", action="store_true", help="gevent.monkey.patch_all() before anything else")
    parser.add_argument("--client", choices=("geopyro", "pyro5"), default="geopyro")
    parser.add_argument("--serializer", default="serpent")
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--size", type=int, default=1000000)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    if args.patch:
        from gevent import monkey
        monkey.patch_all()
    common.die_with_parent()
    common.raise_nofile()
    emit("RESULT", MODES[args.mode](args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
