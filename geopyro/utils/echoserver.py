"""An echo server for trying things out and for tests: ``python -m geopyro.utils.echoserver``.

It publishes one object, ``test.echoserver``, whose methods echo, fail on
purpose, answer slowly (cooperatively), stream, and run oneway.
"""

import argparse
import logging
import sys

import gevent

from .. import core, server

__all__ = ["EchoServer", "main"]

log = logging.getLogger("geopyro.utils.echoserver")

OBJECT_NAME = "test.echoserver"


@server.expose
class EchoServer:
    """Answers with what it is given; the other methods show errors, slowness, streams and oneway calls."""

    _verbose = False
    _must_shutdown = False

    def _say(self, text):
        if self._verbose:
            print(text, flush=True)

    def echo(self, message):
        """Return the message."""
        self._say("echo: %r" % (message,))
        return message

    def error(self):
        """Raise a ValueError."""
        self._say("error: raising ValueError")
        raise ValueError("this is the generated error from echoserver echo() method")

    def error_with_text(self):
        """Raise a ValueError with a message."""
        raise ValueError("the message of the error")

    @server.oneway
    def oneway_echo(self, message):
        """Like echo, but oneway: the client does not wait (and gets no answer)."""
        self._say("oneway_echo: %r" % (message,))
        return "bogus return value"

    def slow(self, seconds=5.0):
        """Answer after ``seconds`` (a cooperative sleep: other calls go on meanwhile)."""
        gevent.sleep(seconds)
        return "Finally, an answer!"

    @server.oneway
    def oneway_slow(self, seconds=5.0):
        """Like slow, but oneway."""
        gevent.sleep(seconds)
        return "bogus return value"

    def generator(self):
        """Stream three items."""
        yield "one"
        yield "two"
        yield "three"

    def nan(self):
        """Return NaN (a float that some serializers carry and others cannot)."""
        return float("nan")

    def inf(self):
        """Return infinity (a float that some serializers carry and others cannot)."""
        return float("inf")

    def _private(self):
        """Never reachable remotely."""
        return "should not be allowed"

    def __dunder__(self):
        """A dunder name: reachable, because it is exposed with the class."""
        return "yep"

    def shutdown(self):
        """Ask the server program to stop."""
        self._say("shutting down")
        self._must_shutdown = True

    @property
    def verbose(self):
        """Whether the echo server prints each call it gets (settable remotely, as in Pyro5)."""
        return self._verbose

    @verbose.setter
    def verbose(self, onoff):
        self._verbose = bool(onoff)


def _parse(args):
    parser = argparse.ArgumentParser(prog="geopyro-echoserver", description="Run the geopyro test echo server.")
    parser.add_argument("-H", "--host", default="localhost", help="hostname to bind server on (default: localhost)")
    parser.add_argument("-p", "--port", type=int, default=0, help="port to bind server on (default: a free port)")
    parser.add_argument("-u", "--unixsocket", help="Unix domain socket name to bind server on")
    parser.add_argument("-n", "--naming", action="store_true", help="register with a name server")
    parser.add_argument("-N", "--nameserver", action="store_true", help="also start a name server")
    parser.add_argument("-v", "--verbose", action="store_true", help="print what the echo object is asked")
    parser.add_argument("-q", "--quiet", action="store_true", help="don't print the startup lines")
    return parser.parse_args(args)


def main(args=None, returnWithoutLooping=False):
    """Start the echo server; with ``returnWithoutLooping`` return (daemon, echo object, uri) instead of serving."""
    options = _parse(args)
    if options.nameserver:
        options.naming = True
    if options.verbose:
        options.quiet = False
    if not options.quiet:
        print("Starting Pyro's built-in test echo server.", flush=True)  # (the lines Pyro5's echo server prints)
    echo = EchoServer()
    echo._verbose = options.verbose
    daemon = server.Daemon(host=options.host, port=options.port, unixsocket=options.unixsocket)
    ns_daemon = None
    if options.nameserver:
        from .. import nameserver
        _, ns_daemon, _ = nameserver.start_ns(options.host)
        gevent.spawn(ns_daemon.requestLoop)
    uri = daemon.register(echo, OBJECT_NAME)
    if options.naming:
        with core.locate_ns() as ns:
            ns.register(OBJECT_NAME, uri)
            if options.verbose:
                print("using name server at %s" % ns._pyroUri, flush=True)
    elif options.verbose:
        print("not using a name server.", flush=True)
    if not options.quiet:
        print("object name: %s" % OBJECT_NAME, flush=True)
        print("echo uri: %s" % uri, flush=True)
        if options.naming:
            print("registered in the name server as %s" % OBJECT_NAME, flush=True)
        print("echoserver running.", flush=True)
    if returnWithoutLooping:
        return daemon, echo, uri
    try:
        daemon.requestLoop(lambda: not echo._must_shutdown)
    except KeyboardInterrupt:
        pass
    finally:
        daemon.close()
        if ns_daemon is not None:
            ns_daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
