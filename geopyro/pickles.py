"""pickle, dill and cloudpickle, for Pyro4 peers only, and only where named: they run code found in the data.

Pyro4 could use them (its ``SERIALIZERS_ACCEPTED`` leaves them out by default); Pyro5 dropped them. geopyro
offers them in protocol 48 alone. A daemon of the Pyro4 API accepts one when its ``config.SERIALIZERS_ACCEPTED``
names it; a proxy talking to a Pyro4 server sends with one when its ``_pyroSerializer`` (or ``SERIALIZER``)
names it, and then reads its replies with it. Whoever can reach such a daemon can run code in it: use them
only between parties that trust each other, on a network nobody else reaches (TLS does not make it safe).

Pyro's own objects travel as a Pyro4 peer knows them: geopyro's URI, proxies, daemons and errors are written
as Pyro4's classes (reached through ``importlib.import_module`` and ``getattr``, which any unpickler can call,
so geopyro itself need not have Pyro4 installed), a proxy with Pyro4's state. Reading, Pyro4's classes
become geopyro's own (its Pyro4 API's, for proxies).
"""

import copyreg
import importlib
import io
import pickle
import sys

from . import errors, protocol48, serializers

__all__ = ["NAMES", "available", "get", "by_id", "is_unsafe_id", "register_type_replacement"]

_type_replacements = {}  # type -> function: what objects of exactly that type travel as (autoproxy, say)
_pyro4_classes = {}  # geopyro class -> (Pyro4 module, name); filled on first use (the classes import us)


def register_type_replacement(object_type, replacement_function):
    """Pickle objects of exactly ``object_type`` as ``replacement_function(obj)`` (SerializerBase's hook)."""
    if object_type is type or not isinstance(object_type, type):
        raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")
    _type_replacements[object_type] = replacement_function


def _classes():
    if not _pyro4_classes:
        from . import client, core, server
        from .compatibility.Pyro4 import core as pyro4_core
        found = {core.URI: ("Pyro4.core", "URI"),
                 client.Proxy: ("Pyro4.core", "Proxy"), pyro4_core.Proxy: ("Pyro4.core", "Proxy"),
                 server.Daemon: ("Pyro4.core", "Daemon"), pyro4_core.Daemon: ("Pyro4.core", "Daemon"),
                 core._ExceptionWrapper: ("Pyro4.futures", "_ExceptionWrapper")}
        for name in dir(errors):
            value = getattr(errors, name)
            if isinstance(value, type) and issubclass(value, errors.PyroError) and value.__module__ == errors.__name__:
                found[value] = ("Pyro4.errors", name)
        _pyro4_classes.update(found)
    return _pyro4_classes


class _ModuleByName:
    """Stands for a module in the pickle: the reader imports it by name."""

    def __init__(self, name):
        self.name = name


def _pyro4_state(proxy):
    """A proxy's state as Pyro4's Proxy has it."""
    return (proxy._pyroUri, set(proxy._pyroOneway), set(proxy._pyroMethods), set(proxy._pyroAttrs),
            proxy._pyroTimeout, proxy._pyroHmacKey, proxy._pyroHandshake, proxy._pyroMaxRetries, proxy._pyroSerializer)


def _reduce(obj, protocol, instead_of=None):
    """The reduce value that writes ``obj`` for a Pyro4 peer, or NotImplemented for the picklers' own way.
    ``instead_of``: the object it replaces in the pickle (a registered object's proxy, say)."""
    replace = _type_replacements.get(type(obj))
    if replace is not None and instead_of is None:
        replaced = replace(obj)
        if replaced is not obj:
            reduced = _reduce(replaced, protocol, obj)
            return replaced.__reduce__() if reduced is NotImplemented else reduced  # (as Pyro4: no __newobj__)
    if isinstance(obj, _ModuleByName):
        return importlib.import_module, (obj.name,)
    classes = _classes()
    if isinstance(obj, type):
        place = classes.get(obj)
        return NotImplemented if place is None else (getattr, (_ModuleByName(place[0]), place[1]))
    place = classes.get(type(obj))
    if place is None or place[1] not in ("Proxy", "Daemon"):
        return NotImplemented
    state = _pyro4_state(obj) if place[1] == "Proxy" else {}  # (as Pyro4's, a daemon travels empty)
    if instead_of is None:
        return copyreg.__newobj__, (type(obj),), state
    return copyreg._reconstructor, (type(obj), object, None), state  # (__newobj__ must make the class it replaces)


_GEOPYRO_FOR_PYRO4 = "geopyro.compatibility."


def _import_module(name):
    """importlib.import_module for what a pickle asks, Pyro4's modules being geopyro's Pyro4 API."""
    if name == "Pyro4" or name.startswith("Pyro4."):
        return importlib.import_module(_GEOPYRO_FOR_PYRO4 + name)
    return importlib.import_module(name)


def _find_class(module, name, fallback):
    if module == "Pyro4" or module.startswith("Pyro4."):
        return getattr(_import_module(module), name)
    if (module, name) == ("importlib", "import_module"):
        return _import_module
    return fallback(module, name)


class _PicklerMixin:
    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.pyro4_protocol = protocol  # (the C pickler does not show its own)

    def reducer_override(self, obj):
        reduced = _reduce(obj, self.pyro4_protocol)
        if reduced is NotImplemented:
            parent = getattr(super(), "reducer_override", None)
            return NotImplemented if parent is None else parent(obj)
        return reduced


class _UnpicklerMixin:
    def find_class(self, module, name):
        return _find_class(module, name, super().find_class)


def _pyro4_config(item, default):
    """An item of the Pyro4 API's config, if that is in use (its PICKLE_PROTOCOL_VERSION, say)."""
    configuration = sys.modules.get("geopyro.compatibility.Pyro4.configuration")
    return default if configuration is None else getattr(configuration.config, item)


class PickleFamilySerializer(serializers.SerializerBase):
    """One of pickle, dill and cloudpickle, speaking to Pyro4 (protocol 48) under its Pyro4 serializer id."""

    def __init__(self, name, pickler, unpickler, protocol_item):
        self.name = name
        self.serializer_id = protocol48.serializer_id_from_48(protocol48.SERIALIZER_IDS[name])
        self._pickler = type("Pyro4" + pickler.__name__, (_PicklerMixin, pickler), {"__module__": __name__})
        self._unpickler = type("Pyro4" + unpickler.__name__, (_UnpicklerMixin, unpickler), {"__module__": __name__})
        self._protocol_item = protocol_item

    def dumps(self, data):
        protocol = _pyro4_config(self._protocol_item, pickle.HIGHEST_PROTOCOL)
        out = io.BytesIO()
        self._pickler(out, pickle.HIGHEST_PROTOCOL if protocol < 0 else protocol).dump(data)
        return out.getvalue()

    def dumpsCall(self, obj, method, vargs, kwargs):
        return self.dumps((obj, method, vargs, kwargs))

    def loads(self, data):
        return self._guarded_loads(lambda d: self._unpickler(io.BytesIO(d)).load(), data)

    def loadsCall(self, data):
        return serializers._check_call(self.loads(data))

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        register_type_replacement(object_type, replacement_function)


NAMES = ("pickle", "dill", "cloudpickle")
_serializers = {}  # name -> serializer, once available() looked (dill changes pickle's tables when imported)


def available():
    """name -> serializer for those whose library is installed (imported on first use, not before)."""
    if not _serializers:
        found = {"pickle": PickleFamilySerializer("pickle", pickle.Pickler, pickle.Unpickler,
                                                  "PICKLE_PROTOCOL_VERSION")}
        try:
            import dill
        except ImportError:
            pass
        else:
            found["dill"] = PickleFamilySerializer("dill", dill.Pickler, dill.Unpickler, "DILL_PROTOCOL_VERSION")
        try:
            import cloudpickle
        except ImportError:
            pass
        else:
            found["cloudpickle"] = PickleFamilySerializer("cloudpickle", cloudpickle.Pickler, pickle.Unpickler,
                                                          "PICKLE_PROTOCOL_VERSION")
        _serializers.update(found)
    return _serializers


def get(name):
    """The serializer ``name`` (pickle, dill or cloudpickle) for Pyro4 peers; SerializeError if its library is
    not installed (as Pyro4 says it)."""
    serializer = available().get(name) if name in NAMES else None
    if serializer is None:
        raise errors.SerializeError("serializer '%s' is unknown or not available" % name)
    return serializer


def is_unsafe_id(serializer_id):
    """True for the (geopyro-side) ids of pickle, dill and cloudpickle, installed or not."""
    return protocol48.is_pyro4_serializer(serializer_id) and \
        protocol48.SERIALIZER_NAMES.get(protocol48.serializer_id_to_48(serializer_id)) in NAMES


def by_id(serializer_id):
    """The serializer of the pickle family with this (geopyro-side) id, or None."""
    if not is_unsafe_id(serializer_id):
        return None
    return available().get(protocol48.SERIALIZER_NAMES[protocol48.serializer_id_to_48(serializer_id)])
