"""callcontext server: reads the call context and adds annotations to its answers."""

import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api


class AnnotatingDaemon(api.Daemon):
    def annotations(self):
        return {"SRVR": b"callcontext-example"}  # added to every response of this daemon


@api.expose
class Echo:
    def echo(self, text):
        began = time.perf_counter()
        ctx = api.current_context
        print("server: call seq %d from %s" % (ctx.seq, ctx.client_sock_addr), flush=True)
        print("server:   correlation id %s" % ctx.correlation_id, flush=True)
        print("server:   annotations from the client: %s" % {key: bytes(value) for key, value in
                                                              sorted(ctx.annotations.items())}, flush=True)
        time.sleep(0.01)
        ctx.response_annotations["TOOK"] = ("%.4f" % (time.perf_counter() - began)).encode()
        return "echo: " + text


def main(forever=False):
    daemon = AnnotatingDaemon(host="127.0.0.1")
    uri = daemon.register(Echo, "echo")
    print("server: serving", uri, flush=True)
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
