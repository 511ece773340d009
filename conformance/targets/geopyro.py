"""Adapter for geopyro (Pyro5's API and wire on gevent).

The only module of the conformance package that imports geopyro.
"""

NAME = "geopyro"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro-502"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {}


def prepare_server_process():
    """Called in a server subprocess before the implementation is imported."""
    # A gevent server program patches the standard library first, so that blocking
    # calls inside remote methods (time.sleep, threading.Event.wait) yield to other calls.
    from gevent import monkey
    monkey.patch_all()


def load():
    from ._pyro5_api import pyro5_api_target
    return pyro5_api_target("geopyro", "greenlet", SERIALIZERS, LACKS)
