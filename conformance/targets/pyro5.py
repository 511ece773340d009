"""Adapter for Pyro5 (the reference implementation of protocol 502)."""

NAME = "pyro5"
PIP_PACKAGE = "Pyro5"
IMPORT_NAME = "Pyro5"
WIRE = "pyro-502"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {}


def load():
    from ._pyro5_api import pyro5_api_target
    return pyro5_api_target("Pyro5", "thread", SERIALIZERS, LACKS)
