"""blocking server: an ordinary, unpatched program whose methods block (python server.py [--forever]).

Nothing here is gevent-specific: it is the Pyro5 program you already have.
geopyro sees that the program is not monkey-patched and runs each call on a
pool thread, so blocking calls overlap and other clients are still answered.
"""

import logging
import subprocess
import sys
import threading

import geopyro.api as api
from service import Sleeper


def main(forever=False, label="unpatched"):
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # shows the blocking detector's warning
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Sleeper, "sleeper")
    print("server (%s): serving %s" % (label, uri), flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = threading.Thread(target=daemon.requestLoop)  # a greenlet, when the program is patched
    loop.start()
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(10)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
