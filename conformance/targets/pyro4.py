"""Adapter for Pyro4 (4.8x): same API ideas, older wire protocol, so it pairs only with itself."""

import importlib.util

NAME = "pyro4"
PIP_PACKAGE = "Pyro4"
IMPORT_NAME = "Pyro4"
WIRE = "pyro4"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack", "pickle"] + [
    name for name in ("dill", "cloudpickle") if importlib.util.find_spec(name) is not None]
SERIALIZER_NOTES = {name: "Pyro4 can use %s, but the %s package is not installed" % (name, name)
                    for name in ("dill", "cloudpickle") if name not in SERIALIZERS}
LACKS = {
    "weak_register": "Pyro4's Daemon.register(obj, objectId, force) has no weak parameter",
    "methodcall_error_handler": "Pyro4's Daemon has no methodcall_error_handler hook (added in Pyro5)",
}


def load():
    import Pyro4
    import Pyro4.constants
    import Pyro4.core
    import Pyro4.errors
    import Pyro4.naming
    import Pyro4.util

    from ._pyro4_api import pyro4_api_target
    return pyro4_api_target(Pyro4, SERIALIZERS, LACKS, "thread")
