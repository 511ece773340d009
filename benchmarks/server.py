"""One benchmark server process: geopyro (greenlet | multiplex), Pyro5 (thread | multiplex) or raw gevent.

Prints ``URI <uri>`` on stdout once it listens, then serves until killed. ``--patch`` monkey-patches
the process first (a gevent program), which is what makes a geopyro server run calls inline.
"""

import argparse
import socket
import sys
import time

from benchmarks import common


def make_service(api, sleep):
    import serpent

    @api.expose
    class BenchService:
        def __init__(self):
            self._hits = 0

        def echo(self, value):
            return value

        def cpu(self):
            """This server process's CPU seconds (all threads): benchmarks/sequential.py reads it around a slice."""
            return time.process_time()

        def sleep(self, seconds):
            sleep(seconds)
            return seconds

        if hasattr(api, "cooperative"):  # geopyro: gevent.sleep cooperates, so it runs inline even unpatched
            sleep = api.cooperative(sleep)

        def burn(self, seconds):
            """CPU-bound work: pure Python for ``seconds`` of this thread's CPU time (holds the GIL throughout)."""
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                pass
            return seconds

        def block(self, seconds):
            """What plain blocking code does: time.sleep (gevent's when the process is patched)."""
            time.sleep(seconds)
            return seconds

        def bulk(self, data):
            if isinstance(data, dict):  # serpent sends bytes as a base64 dict
                data = serpent.tobytes(data)
            return data

        @api.oneway
        def hit(self):
            self._hits += 1

        def hits(self):
            return self._hits

    return BenchService


def serve_raw():
    """The ceiling: read one INVOKE's worth of bytes, answer the precomputed RESULT, on plain gevent."""
    from gevent.server import StreamServer
    invoke, reply = common.raw_messages()
    size = len(invoke)

    def handle(sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(size)
        view = memoryview(buf)
        try:
            while True:
                got = 0
                while got < size:
                    n = sock.recv_into(view[got:])
                    if not n:
                        return
                    got += n
                sock.sendall(reply)
        except OSError:
            return

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    print("URI raw:127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("geopyro", "pyro5", "raw"), required=True)
    parser.add_argument("--type", default="greenlet")
    parser.add_argument("--threadpool", type=int, default=0, help="Pyro5 THREADPOOL_SIZE (0: its default)")
    parser.add_argument("--patch", action="store_true", help="gevent.monkey.patch_all() before anything else")
    parser.add_argument("--execution", choices=("auto", "inline", "thread"), default="auto",
                        help="geopyro CALL_EXECUTION")
    args = parser.parse_args(argv)
    if args.patch:
        from gevent import monkey
        monkey.patch_all()
    common.die_with_parent()
    common.raise_nofile()
    if args.impl == "raw":
        serve_raw()
        return 0
    if args.impl == "geopyro":
        import gevent
        import geopyro.api as api
        sleep = gevent.sleep  # cooperative, as geopyro users write it
        api.config.CALL_EXECUTION = args.execution
    else:
        import Pyro5.api as api
        sleep = time.sleep  # what Pyro5 thread-server users write
        if args.threadpool:
            api.config.THREADPOOL_SIZE = args.threadpool
    api.config.SERVERTYPE = args.type
    api.config.COMMTIMEOUT = 0.0
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(make_service(api, sleep)(), common.OBJECT_ID)
    if args.impl == "geopyro":  # into the log: where this server runs calls
        sys.stderr.write("call execution: %s\n" % (daemon._calls.default,))
    print("URI %s" % uri, flush=True)
    daemon.requestLoop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
