"""What the Pyro5 and Pyro4 stand-ins of this folder do when imported (see geopyro.inherit).

A top-level module of its own, importable where geopyro is not.
"""

import importlib
import os
import sys

_FOLDER = os.path.dirname(os.path.abspath(__file__))


def become(name):
    """The module to put in the place of stand-in package ``name`` (Pyro5 or Pyro4): geopyro's, with the alias
    installed; where geopyro cannot be imported, the real package (or the usual ImportError)."""
    del sys.modules[name]  # (the stand-in itself: the alias refuses to install over a Pyro module imported already)
    try:
        from geopyro import run
    except ImportError:
        sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _FOLDER]
        return importlib.import_module(name)
    run.install()
    return importlib.import_module(name)  # through the alias
