"""Adapter for geopyro's Pyro4 API (``geopyro.compatibility.Pyro4``): Pyro4's names and wire (protocol 48),
so it pairs with the real Pyro4 in both directions."""

import importlib.util

from .geopyro import prepare_server_process  # noqa: F401  (--execution, as for geopyro)

NAME = "geopyro4"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro4"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack", "pickle"] + [
    name for name in ("dill", "cloudpickle") if importlib.util.find_spec(name) is not None]
SERIALIZER_NOTES = {name: "geopyro's Pyro4 API can use %s, but the %s package is not installed" % (name, name)
                    for name in ("dill", "cloudpickle") if name not in SERIALIZERS}
LACKS = {
    "weak_register": "Pyro4's Daemon.register(obj, objectId, force) has no weak parameter",
    "methodcall_error_handler": "Pyro4's Daemon has no methodcall_error_handler hook (added in Pyro5)",
}


def load():
    from geopyro.compatibility import Pyro4

    from ._pyro4_api import pyro4_api_target
    return pyro4_api_target(Pyro4, SERIALIZERS, LACKS, "thread", version=Pyro4.__version__ + " (geopyro)")
