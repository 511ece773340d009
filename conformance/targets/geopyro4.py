"""Adapter for geopyro's Pyro4 API (``geopyro.compatibility.Pyro4``): Pyro4's names and wire (protocol 48),
so it pairs with the real Pyro4 in both directions."""

from ._pyro4_api import LACKS as PYRO4_LACKS
from ._pyro4_api import serializers_of
from .geopyro import prepare_server_process  # noqa: F401  (--execution, as for geopyro)

NAME = "geopyro4"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro4"
SERIALIZERS, SERIALIZER_NOTES = serializers_of("geopyro's Pyro4 API")
LACKS = PYRO4_LACKS


def load():
    from geopyro.compatibility import Pyro4

    from ._pyro4_api import pyro4_api_target
    return pyro4_api_target(Pyro4, SERIALIZERS, LACKS, "thread", version=Pyro4.__version__ + " (geopyro)")
