"""Console entry point of the name server (``geopyro-ns``).

Importing this module monkey-patches the standard library for gevent
first, so that everything the name server process runs cooperates.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from geopyro import nameserver  # noqa: E402


def main(args=None):
    """Run a name server until interrupted; returns the exit code."""
    return nameserver.main(args)


if __name__ == "__main__":
    sys.exit(main())
