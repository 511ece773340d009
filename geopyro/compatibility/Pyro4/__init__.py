"""Pyro4's API on geopyro: unmodified Pyro4 programs run on it, and talk Pyro4's wire protocol (48).

``from geopyro.compatibility import Pyro4`` (or ``import Pyro4`` in a program run
with ``python -m geopyro.run``) offers what the Pyro4 4.8x package offers from
``Pyro4``, ``Pyro4.core``, ``Pyro4.naming``, ``Pyro4.util``, ``Pyro4.socketutil``,
``Pyro4.errors``, ``Pyro4.constants`` and ``Pyro4.futures``. Its proxies talk to
Pyro4 daemons and to geopyro daemons; its daemons serve Pyro4 and Pyro5
clients. Where Pyro4's behaviour differs from Pyro5's, this API keeps Pyro4's;
pickle, dill and cloudpickle work where named, as in Pyro4 (see geopyro.pickles);
what geopyro does not support (Flame, REQUIRE_EXPOSE = False, AUTOPROXY =
False) is refused with an error that says so. The differences
that remain are listed in examples/pyro4migration/Readme.md.
"""

from . import constants, core, errors, futures, naming, socketutil, util  # noqa: F401
from .configuration import config  # noqa: F401
from .constants import VERSION as __version__  # noqa: F401
from .core import (URI, Daemon, Proxy, asyncproxy, batch, behavior, callback, current_context,  # noqa: F401
                   expose, oneway)
from .core import _locateNS as locateNS  # noqa: F401
from .core import _resolve as resolve  # noqa: F401
from .futures import Future  # noqa: F401
