"""blocking server, patched: the same program after gevent.monkey.patch_all() (python server_patched.py).

Patching comes first, before anything else is imported. Now time.sleep
yields to gevent, so geopyro runs each call inline in its connection's
greenlet: the naps overlap on one thread, without a pool. Code that never
yields (CPU work) would hold everyone up there; mark it @api.blocking.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402  (after patching, on purpose)

import server  # noqa: E402

if __name__ == "__main__":
    sys.exit(server.main("--forever" in sys.argv, label="patched"))
