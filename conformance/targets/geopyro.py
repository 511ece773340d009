"""Adapter for geopyro (Pyro5's API and wire on gevent).

The only module of the conformance package that imports geopyro.
"""

import os

NAME = "geopyro"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro-502"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {}


def prepare_server_process():
    """Called in a server subprocess before the implementation is imported.

    ``python -m conformance --execution`` says where calls run: "auto" leaves the program as a
    Pyro5 program is (not patched: calls on threads); "inline" monkey-patches it first and runs
    every call in its connection's greenlet; "thread" runs every call on a thread.
    """
    execution = os.environ.get("CONFORMANCE_EXECUTION", "auto")
    if execution == "inline":
        from gevent import monkey
        monkey.patch_all()
    if execution != "auto":
        os.environ["PYRO_CALL_EXECUTION"] = execution


def load():
    from ._pyro5_api import pyro5_api_target
    return pyro5_api_target("geopyro", "greenlet", SERIALIZERS, LACKS)
