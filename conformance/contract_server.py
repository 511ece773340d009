"""A server of the checks' test objects as a plain command: ``python -m conformance.contract_server``.

It is what a server-only target looks like from the harness's side: a program that registers the
contract's objects (see ``objects.py`` and the README), prints its URI and serves until stopped. It is
written against Pyro5's API of any package that has it (``--package Pyro5``, ``--package geopyro``), so
the server-only path can be shown with a real Pyro5 server:

    python -m conformance --server-command "python -m conformance.contract_server --package Pyro5 \\
        --servertype {servertype}" --client geopyro
"""

import argparse
import sys

from . import objects, serverproc
from .targets import pyro5_api_target

CONCURRENT_SERVERTYPE = {"Pyro5": "thread", "geopyro": "greenlet"}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m conformance.contract_server", description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="Pyro5", help="the package whose Pyro5 API serves (default Pyro5)")
    ap.add_argument("--servertype", default="concurrent",
                    help="concurrent (the package's default server type), multiplex, or a SERVERTYPE value")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    T = pyro5_api_target(args.package, CONCURRENT_SERVERTYPE.get(args.package, "thread"), [], {})
    if args.servertype != "concurrent":
        T.configure(SERVERTYPE=args.servertype)
    daemon = serverproc.main_daemon(T, objects, args.host)
    print("serving the conformance objects with %s %s (%s server)" % (args.package, T.version, T.config.SERVERTYPE))
    print(T.URI("PYRO:%s@%s" % (T.DAEMON_NAME, daemon.locationStr)), flush=True)
    try:
        daemon.requestLoop()
    except KeyboardInterrupt:
        pass
    finally:
        daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
