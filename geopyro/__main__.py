"""``python -m geopyro``: a round trip through a real daemon, to see that everything works.

It starts the echo server on 127.0.0.1, calls it over TCP with every
serializer, shows a remote error with its traceback, a streamed result and a
oneway call, then shuts the server down.
"""

import sys
import time

import gevent

from . import __version__, config, errors
from .client import Proxy
from .protocol import PROTOCOL_VERSION
from .server import Daemon
from .utils.echoserver import OBJECT_NAME, EchoServer


def main():
    print("geopyro %s, wire protocol %d, gevent %s, Python %s"
          % (__version__, PROTOCOL_VERSION, gevent.__version__, sys.version.split()[0]))
    daemon = Daemon(host="127.0.0.1")
    uri = daemon.register(EchoServer(), OBJECT_NAME)
    loop = gevent.spawn(daemon.requestLoop)
    print("echo server running at %s (server type: %s)" % (uri, daemon.transportServer))
    ok = True
    try:
        for serializer in ("serpent", "json", "marshal", "msgpack"):
            config.SERIALIZER = serializer
            with Proxy(uri) as echo:
                message = {"text": "hello", "numbers": [1, 2, 3]}
                start = time.perf_counter()
                answer = echo.echo(message)
                took = (time.perf_counter() - start) * 1000
                same = answer == message
                ok &= same
                print("  %-8s echo round trip: %s in %.2f ms" % (serializer, "ok" if same else "MISMATCH", took))
        config.SERIALIZER = "serpent"
        with Proxy(uri) as echo:
            try:
                echo.error()
            except ValueError as exc:
                remote_lines = "".join(errors.get_pyro_traceback()).count(" | ")
                print("  remote error came back as %s(%r) with %d lines of remote traceback"
                      % (type(exc).__name__, str(exc), remote_lines))
            items = list(echo.generator())
            print("  streamed result: %s" % items)
            ok &= items == ["one", "two", "three"]
            echo.oneway_slow(0.5)
            print("  oneway call returned at once; the server keeps working on it")
    finally:
        daemon.shutdown()
        loop.join(5)
    print("all good: geopyro works on this machine." if ok else "something did not match: see above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
