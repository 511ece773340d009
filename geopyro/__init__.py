"""geopyro: Pyro5-compatible remote objects on gevent.

``import geopyro.api`` gives the same names as ``Pyro5.api``.
"""

import logging
import os

__version__ = "0.1.0"


def _configure_logging():
    """Honour PYRO_LOGLEVEL / PYRO_LOGFILE the way Pyro5 does; stay silent otherwise."""
    level = os.environ.get("PYRO_LOGLEVEL")
    logfile = os.environ.get("PYRO_LOGFILE", "geopyro.log")
    if level and not logging.root.handlers:
        logging.basicConfig(
            level=getattr(logging, level.upper(), logging.INFO),
            filename=None if logfile == "{stderr}" else logfile,
            format="[%(asctime)s,%(name)s,%(levelname)s] %(message)s",
        )
    return logfile, level or None


_logfile, _loglevel = _configure_logging()
logging.getLogger("geopyro").addHandler(logging.NullHandler())  # silent unless the program configures logging

from .configure import global_config as config  # noqa: E402

__all__ = ["config", "__version__"]
