"""Adapter for Pyro4 (4.8x): same API ideas, older wire protocol (48), so it pairs with itself and with
geopyro's Pyro4 API (geopyro4)."""

from ._pyro4_api import LACKS as PYRO4_LACKS
from ._pyro4_api import serializers_of

NAME = "pyro4"
PIP_PACKAGE = "Pyro4"
IMPORT_NAME = "Pyro4"
WIRE = "pyro4"
SERIALIZERS, SERIALIZER_NOTES = serializers_of("Pyro4")
LACKS = PYRO4_LACKS


def load():
    import Pyro4
    import Pyro4.constants
    import Pyro4.core
    import Pyro4.errors
    import Pyro4.naming
    import Pyro4.util

    from ._pyro4_api import pyro4_api_target
    return pyro4_api_target(Pyro4, SERIALIZERS, LACKS, "thread")
