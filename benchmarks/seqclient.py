"""The client process of the sequential benchmark: one connection per row, measured on command.

benchmarks/sequential.py starts one of these unpatched (geopyro's and Pyro5's proxies, and the
floor client, all in the same process, so every row pays the same process) and one with
``--patch`` (monkey-patching is process-wide, so a patched geopyro client needs a process of its
own). ``--rows`` is a JSON list of {id, client (geopyro | pyro5 | floor), uri, serializer}.

Protocol on stdin/stdout: ``READY {...}`` once every proxy is bound and warm; then each
``SLICE <id> <seconds>`` makes a few unmeasured calls, reads the server's CPU time (its ``cpu()``
method, on the same connection), makes sequential ``echo("hello")`` calls for ``seconds``, reads
the server's CPU time again and answers ``DONE {calls, elapsed_s, client_cpu_s, ...}``.
``STOP`` releases everything. The client's CPU is ``time.thread_time()`` of the calling thread:
in a patched process the gevent hub runs in that thread too, so its waiting is counted.
"""

import argparse
import json
import sys
import time


def make_client(kind, uri, serializer):
    if kind == "floor":
        from benchmarks.floor import FloorClient
        return FloorClient(uri, serializer)
    from benchmarks.load import make_proxy
    return make_proxy(kind, uri, serializer)


def measure(proxy, seconds, warmup, text):
    """One slice: sequential echo calls for ``seconds``, with client and server CPU around it."""
    for _ in range(warmup):  # the other rows ran meanwhile: let caches and threads settle
        proxy.echo(text)
    server_before = proxy.cpu()
    thread_before, process_before = time.thread_time(), time.process_time()
    start = now = time.perf_counter()
    end = start + seconds
    calls = 0
    result = None
    while now < end:
        result = proxy.echo(text)
        calls += 1
        now = time.perf_counter()
    thread_after, process_after = time.thread_time(), time.process_time()
    server_after = proxy.cpu()
    if result != text:
        raise RuntimeError("echo returned %r" % (result,))
    return {"calls": calls, "elapsed_s": now - start, "client_cpu_s": thread_after - thread_before,
            "client_process_cpu_s": process_after - process_before, "server_cpu_s": server_after - server_before}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", required=True, help="JSON list of {id, client, uri, serializer}")
    parser.add_argument("--patch", action="store_true", help="gevent.monkey.patch_all() before anything else")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls before each slice")
    args = parser.parse_args(argv)
    if args.patch:
        from gevent import monkey
        monkey.patch_all()
    from benchmarks import common
    from benchmarks.load import emit, read_command
    common.die_with_parent()
    rows = json.loads(args.rows)
    clients = {}
    for row in rows:
        clients[row["id"]] = client = make_client(row["client"], row["uri"], row["serializer"])
        for _ in range(100):
            if client.echo(common.ECHO_TEXT) != common.ECHO_TEXT:
                raise RuntimeError("%s: wrong echo" % row["id"])
        client.cpu()
    from geopyro import program
    emit("READY", {"rows": len(clients), "patched": args.patch,
                   "geopyro_client_uses_gevent": program.client_cooperates()})
    while True:
        command = read_command(args.patch).split()
        if command[:1] != ["SLICE"]:
            break
        emit("DONE", measure(clients[command[1]], float(command[2]), args.warmup, common.ECHO_TEXT))
    for client in clients.values():
        if hasattr(client, "_pyroRelease"):
            client._pyroRelease()
        else:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
