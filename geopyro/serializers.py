"""The four wire serializers (serpent 1, marshal 2, json 3, msgpack 4) and the class <-> dict registry.

Encodings match Pyro5 5.x byte for byte: the call tuple, results,
exceptions (``{"__class__", "__exception__", "args", "attributes"}``), and
Pyro's own objects, which travel under their Pyro5 class names
(``Pyro5.core.URI``, ``Pyro5.client.Proxy``, ``Pyro5.errors.<Name>``) so that
either implementation can read the other's messages.

Loading never executes code: serpent uses ``ast.literal_eval``, and only a
fixed set of class names (plus what the user registers) become objects again.
"""

import array
import base64
import builtins
import codecs
import datetime
import decimal
import importlib
import inspect
import json
import logging
import marshal
import numbers
import re
import struct
import types
import uuid

import gevent.local
import msgpack
import serpent

from . import config, errors, protocol48, serpent_fastpath, serpent_steps

__all__ = ["SerializerBase", "SerpentSerializer", "MarshalSerializer", "JsonSerializer", "MsgpackSerializer",
           "serializers", "serializers_by_id", "get_serializer", "get_serializer_by_id"]

log = logging.getLogger("geopyro.serializers")

# Wire class name -> (module, attribute) of the geopyro class that stands for it.
_PYRO_WIRE_CLASSES = {
    "Pyro5.core.URI": ("geopyro.core", "URI"),
    "Pyro5.client.Proxy": ("geopyro.client", "Proxy"),
    "Pyro5.server.Daemon": ("geopyro.server", "Daemon"),
}
# geopyro class -> wire class name, filled in by the modules that define them.
_wire_names = {}

_builtin_exceptions = {name: value for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException)}
# Pyro5's table of the exception classes it knows by name: the builtin ones and Pyro's own
all_exceptions = dict(_builtin_exceptions)
all_exceptions.update((name, value) for name, value in vars(errors).items()
                      if isinstance(value, type) and issubclass(value, errors.PyroError))

_class_to_dict_registry = {}
_dict_to_class_registry = {}


def wire_name(obj):
    """The class name an object travels under (Pyro5's names for geopyro's own classes; Pyro4's while a
    Pyro4 serializer writes)."""
    cls = type(obj)
    name = _wire_names.get(cls)
    if name:
        return pyro_name(name)
    if isinstance(obj, errors.PyroError) and cls.__module__ == errors.__name__:
        return pyro_name("Pyro5.errors." + cls.__name__)
    return "%s.%s" % (cls.__module__, cls.__name__)


# Pyro4 clients (protocol 48) know Pyro's own objects under other names, the Proxy with a longer state
_PYRO4_NAMES = {"Pyro5.core.URI": "Pyro4.core.URI", "Pyro5.client.Proxy": "Pyro4.core.Proxy",
                "Pyro5.server.Daemon": "Pyro4.core.Daemon",
                "Pyro5.core._ExceptionWrapper": "Pyro4.futures._ExceptionWrapper"}
_PYRO5_NAMES = {pyro4: pyro5 for pyro5, pyro4 in _PYRO4_NAMES.items()}
_writing = gevent.local.local()  # .pyro4: a Pyro4 serializer is writing in this greenlet (its hooks may yield)


def pyro_name(name):
    """A Pyro5 class name as the serializer writing now must write it."""
    if not getattr(_writing, "pyro4", False):
        return name
    if name.startswith("Pyro5.errors."):
        return "Pyro4.errors." + name[len("Pyro5.errors."):]
    return _PYRO4_NAMES.get(name, name)


def _with_pyro4_key(proxy, encoded_hmac_key):
    """A proxy that came from a Pyro4 peer is for a Pyro4 daemon (a client's callback object, say): it signs
    with the key that came with it (Pyro4 sends it as "b64:..." or None)."""
    if isinstance(encoded_hmac_key, str) and encoded_hmac_key.startswith("b64:"):
        proxy._pyroHmacKey = base64.b64decode(encoded_hmac_key[4:])


def _from_pyro4(data, classname):
    """A Pyro4 class dict as the Pyro5 one it stands for (None if it stands for none)."""
    if classname.startswith("Pyro4.errors."):
        return dict(data, __class__="Pyro5.errors." + classname[len("Pyro4.errors."):])
    pyro5 = _PYRO5_NAMES.get(classname)
    if pyro5 is None:
        return None
    data = dict(data, __class__=pyro5)
    if classname == "Pyro4.core.Proxy":  # (uri, oneway, methods, attrs, timeout, hmac, handshake, retries, serializer)
        state = data["state"]
        data["state"] = (state[0], state[1], state[2], state[3], state[6], state[8])
    return data


def register_wire_class(cls, name):
    """Declare that instances of ``cls`` travel as ``{"__class__": name, "state": obj.__getstate__()}``."""
    _wire_names[cls] = name
    SerializerBase.register_class_to_dict(cls, _pyro_object_to_dict, serpent_too=True)


def _pyro_object_to_dict(obj):
    name, state = wire_name(obj), obj.__getstate__()
    if name == "Pyro4.core.Proxy":  # Pyro4's state also has the timeout, the HMAC key and the retries
        uri, oneway, methods, attrs, handshake, serializer = state
        key = obj._pyroHmacKey
        key = None if key is None else "b64:" + base64.b64encode(key).decode("ascii")
        state = (uri, oneway, methods, attrs, obj._pyroTimeout, key, handshake, obj._pyroMaxRetries, serializer)
    return {"__class__": name, "state": state}


def _exception_to_dict(exc):
    return {"__class__": wire_name(exc), "__exception__": True, "args": exc.args, "attributes": vars(exc)}


def _serpent_pyro_error(obj, serpent_serializer, out, level):
    serpent_serializer._serialize(_exception_to_dict(obj), out, level)


serpent.register_class(errors.PyroError, _serpent_pyro_error)


def serialize_pyro_object_to_dict(obj):
    """A URI, proxy or daemon as the dict it travels as (Pyro5's name): its wire class name and its state."""
    return _pyro_object_to_dict(obj)


def _make_exception(exc_type, data):
    exc = exc_type(*data.get("args", ()))
    for name, value in (data.get("attributes") or {}).items():
        setattr(exc, name, value)
    return exc


class SerializerBase:
    """Common logic: turning unknown objects into dicts and recognised dicts back into objects."""

    serializer_id = 0
    name = ""
    make_exception = staticmethod(_make_exception)  # (Pyro5's name: an exception from its type and dict)

    # --- the registry of custom conversions (shared by all serializers) ---

    @classmethod
    def register_class_to_dict(cls, clazz, converter, serpent_too=True):
        """Serialize instances of ``clazz`` as the dict that ``converter(obj)`` returns."""
        _class_to_dict_registry[clazz] = converter
        if serpent_too:
            def to_serpent(obj, serpent_serializer, out, level):
                serpent_serializer.ser_builtins_dict(converter(obj), out, level)
            serpent.register_class(clazz, to_serpent)

    @classmethod
    def unregister_class_to_dict(cls, clazz):
        """Undo ``register_class_to_dict``."""
        _class_to_dict_registry.pop(clazz, None)
        serpent.unregister_class(clazz)

    @classmethod
    def register_dict_to_class(cls, classname, converter):
        """Turn dicts whose ``__class__`` is ``classname`` into objects with ``converter(classname, dict)``."""
        _dict_to_class_registry[classname] = converter

    @classmethod
    def unregister_dict_to_class(cls, classname):
        """Undo ``register_dict_to_class``."""
        _dict_to_class_registry.pop(classname, None)

    @classmethod
    def class_to_dict(cls, obj):
        """A dict for an object the serializer has no native form for."""
        for clazz, converter in _class_to_dict_registry.items():
            if isinstance(obj, clazz):
                return converter(obj)
        if type(obj) in (set, dict, tuple, list):
            raise ValueError("can't serialize type %s into a dict" % type(obj).__name__)
        if isinstance(obj, BaseException):
            return _exception_to_dict(obj)
        own_getstate = getattr(type(obj), "__getstate__", None)
        if own_getstate is not None and own_getstate is not getattr(object, "__getstate__", None):
            state = obj.__getstate__()
            if isinstance(state, dict):
                return state
        try:
            value = dict(vars(obj))
        except TypeError:
            slots = getattr(obj, "__slots__", None)
            if slots is None:
                raise errors.SerializeError("don't know how to serialize object of type %s.%s; give it vars() or a "
                                            "__getstate__, or register_class_to_dict for it"
                                            % (type(obj).__module__, type(obj).__qualname__)) from None
            value = {slot: getattr(obj, slot) for slot in slots}
        value.pop("_pyroDaemon", None)  # the daemon an object was registered with (a weak proxy) does not travel
        value["__class__"] = wire_name(obj)
        return value

    @classmethod
    def dict_to_class(cls, data):
        """Rebuild an object from a dict with a ``__class__`` key; only known classes are accepted."""
        classname = data.get("__class__", "<unknown>")
        if isinstance(classname, bytes):
            classname = classname.decode("utf-8", "replace")
        converter = _dict_to_class_registry.get(classname)
        if converter is not None:
            return converter(classname, data)
        if not isinstance(classname, str):
            raise errors.SerializeError("invalid __class__ value: %r" % (classname,))
        if "__" in classname:
            raise errors.SecurityError("refused to deserialize types with double underscores in their name: "
                                       + classname)
        if classname.startswith("Pyro4."):
            pyro5 = _from_pyro4(data, classname)
            if pyro5 is not None:
                if classname == "Pyro4.core.Proxy":  # (a Pyro4 proxy, which talks protocol 48)
                    from .compatibility.Pyro4.core import Proxy as Pyro4Proxy
                    obj = Pyro4Proxy.__new__(Pyro4Proxy)
                    obj.__setstate__(pyro5["state"])
                    _with_pyro4_key(obj, data["state"][5])
                    return obj
                return cls.dict_to_class(pyro5)
        target = _PYRO_WIRE_CLASSES.get(classname)
        if target is not None:
            clazz = getattr(importlib.import_module(target[0]), target[1])
            obj = clazz.__new__(clazz)
            obj.__setstate__(data["state"])
            return obj
        if classname == "Pyro5.core._ExceptionWrapper":
            from .core import _ExceptionWrapper
            exc = data["exception"]
            if isinstance(exc, dict) and "__class__" in exc:
                exc = cls.dict_to_class(exc)
            return _ExceptionWrapper(exc)
        if classname.startswith("Pyro5.errors."):
            exc_type = getattr(errors, classname[len("Pyro5.errors."):], None)
            if isinstance(exc_type, type) and issubclass(exc_type, errors.PyroError):
                return _make_exception(exc_type, data)
        elif data.get("__exception__", False):
            namespace, _, short = classname.rpartition(".")
            exc_type = None
            if namespace in ("", "builtins", "exceptions"):
                exc_type = _builtin_exceptions.get(short)
                if not namespace:
                    # a bare name may also be a Pyro error, which wins over a builtin of that name (as in Pyro5)
                    pyro_type = getattr(errors, short, None)
                    if isinstance(pyro_type, type) and issubclass(pyro_type, errors.PyroError):
                        exc_type = pyro_type
            elif namespace == "struct" and short == "error":
                exc_type = struct.error
            elif namespace == "sqlite3" and short.endswith("Error"):
                import sqlite3
                exc_type = getattr(sqlite3, short, None)
            if isinstance(exc_type, type) and issubclass(exc_type, BaseException):
                return _make_exception(exc_type, data)
        log.warning("unsupported serialized class: %s", classname)
        raise errors.SerializeError("unsupported serialized class: " + classname)

    def recreate_classes(self, literal):
        """Walk plain data, turning class dicts into objects; refuses code objects anywhere (keys too).

        Each container is visited once: data whose parts are shared (marshal can
        send one list referenced many times) stays shared, instead of being
        copied once per path to it, which grows exponentially with the depth.
        """
        t = type(literal)
        if t in _PLAIN_TYPES:
            return literal
        if (t is tuple or t is list) and _only_plain(literal):
            return literal  # the usual arguments: nothing to rebuild, no copy
        done = {}  # id of a container visited -> what it became (_VISITING while it is being rebuilt)
        dict_to_class = self.dict_to_class

        def rebuild(obj):
            t = type(obj)
            if t in _PLAIN_TYPES:
                return obj
            key = id(obj)
            result = done.get(key, _NOT_VISITED)
            if result is not _NOT_VISITED:
                if result is _VISITING:
                    raise errors.SerializeError("cannot deserialize data that contains itself")
                return result
            if (t is tuple or t is list) and _only_plain(obj):
                done[key] = obj
                return obj  # freshly deserialized and nothing to rebuild: no copy
            done[key] = _VISITING
            if t is list:
                result = [rebuild(x) for x in obj]
            elif t is dict:
                if "__class__" in obj:
                    result = dict_to_class(obj)
                else:
                    result = {rebuild(k): rebuild(v) for k, v in obj.items()}
            elif t is tuple:
                result = tuple(rebuild(x) for x in obj)
            elif t is set:
                result = {rebuild(x) for x in obj}
            elif t is frozenset:
                result = frozenset(rebuild(x) for x in obj)
            elif t is types.CodeType:
                raise errors.SecurityError("refused to deserialize a code object")
            else:
                result = obj
            done[key] = result
            return result

        return rebuild(literal)

    # --- the interface every serializer implements ---

    def dumps(self, data):
        """Serialize a value.

        What the library cannot write raises the library's own error (a
        TypeError, ValueError or RecursionError), as with Pyro5, and not a
        SerializeError: that is a CommunicationError, which retry code would
        take for a network failure.
        """
        raise NotImplementedError

    def loads(self, data):
        """Deserialize a value."""
        raise NotImplementedError

    def dumpsCall(self, obj, method, vargs, kwargs):
        """Serialize the call tuple of an INVOKE message."""
        raise NotImplementedError

    def loadsCall(self, data):
        """Deserialize an INVOKE payload into (object id, method, vargs, kwargs)."""
        raise NotImplementedError

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        """Serialize objects of exactly ``object_type`` as ``replacement_function(obj)``."""
        raise NotImplementedError

    def _guarded_loads(self, func, data):
        try:
            return func(data)
        except errors.PyroError:
            raise
        except RecursionError:
            raise errors.SerializeError("cannot deserialize %s data: nested too deeply" % self.name) from None
        except MemoryError:
            raise errors.SerializeError("cannot deserialize %s data: too large to parse" % self.name) from None
        except Exception as exc:
            raise errors.SerializeError("cannot deserialize %s data: %s: %s"
                                        % (self.name, type(exc).__name__, exc)) from None

    def __repr__(self):
        return "<%s id=%d>" % (type(self).__name__, self.serializer_id)


_PLAIN_TYPES = frozenset((int, float, str, bytes, bool, type(None), complex))
_NOT_VISITED, _VISITING = object(), object()


def _only_plain(items):
    """True when no item of a tuple or list needs rebuilding."""
    for item in items:
        if type(item) not in _PLAIN_TYPES:
            return False
    return True


def _to_bytes(data):
    return data if type(data) is bytes else bytes(data)


_SEQUENCES = (tuple, list)


def _check_call(call):
    if type(call) in _SEQUENCES and len(call) == 4:  # the usual shape first: four plain items, nothing to fix
        obj, method, vargs, kwargs = call
        if type(obj) is str and type(method) is str and type(vargs) in _SEQUENCES and type(kwargs) is dict:
            return obj, method, vargs, kwargs
    if not (isinstance(call, (tuple, list)) and len(call) == 4):
        raise errors.SerializeError("invalid call message: expected (object, method, vargs, kwargs)")
    obj, method, vargs, kwargs = call
    if kwargs is None:
        kwargs = {}  # Pyro5 sends None for attribute access and batches
    if not isinstance(obj, str) or not isinstance(method, str):
        raise errors.SerializeError("invalid call message: object id and method name must be strings")
    if not isinstance(vargs, (tuple, list)) or not isinstance(kwargs, dict):
        raise errors.SerializeError("invalid call message: vargs must be a sequence and kwargs a dict")
    return obj, method, vargs, kwargs


PARSER_ITEM_COST = 1024  # bytes of memory Python's parser spends per item of a serpent text, about
MIN_PARSER_ITEMS = 100000
_QUOTED = re.compile(r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'?" + r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?',
                     re.DOTALL)  # string literals as repr() writes them (an unclosed one: to the line's end, linear)


def parser_item_limit():
    """How many items a serpent text may hold when it needs Python's parser (not the fast reader).

    That parser (``ast.literal_eval``) builds a syntax tree first: about a
    kilobyte and a few microseconds per item, much of it holding the
    interpreter lock. A 28 MB text of small items would take gigabytes and a
    minute or more. The limit keeps the tree within about MAX_MESSAGE_SIZE of
    memory (and never below 100,000 items).
    """
    return max(MIN_PARSER_ITEMS, config.MAX_MESSAGE_SIZE // PARSER_ITEM_COST)


def _check_parser_items(text):
    """Refuse a serpent text with more items than ``parser_item_limit`` before Python's parser sees it."""
    limit = parser_item_limit()
    items = sum(map(text.count, ",:[({+-"))
    if items <= limit:
        return
    items = sum(map(_QUOTED.sub("", text).count, ",:[({+-"))  # (a string's commas are not items)
    if items > limit:
        raise errors.SerializeError(
            "serpent data too large to parse: about %d items where at most %d are read (Python's parser costs "
            "about %d bytes per item; the limit follows MAX_MESSAGE_SIZE); send large data with the msgpack "
            "or json serializer" % (items, limit, PARSER_ITEM_COST))


class SerpentSerializer(SerializerBase):
    """serpent: Python literal expressions; the default, safe to load."""

    serializer_id = 1
    name = "serpent"

    def dumps(self, data):
        return serpent_fastpath.write(data) or serpent.dumps(data, False, True, config.SERPENT_BYTES_REPR)

    def dumpsCall(self, obj, method, vargs, kwargs):
        call = (obj, method, vargs, kwargs)
        return serpent_fastpath.write(call) or serpent.dumps(call, False, True, config.SERPENT_BYTES_REPR)

    @staticmethod
    def _parse(data):
        """The literal in serpent ``data`` (bytes or a memoryview): the fast reader first, else serpent."""
        text = codecs.decode(data, "utf-8")
        value = serpent_fastpath.read(text)
        if value is serpent_fastpath.NOT_READ:
            _check_parser_items(text)
            value = serpent_steps.read(text) if len(text) > serpent_steps.PIECE else serpent.loads(data)
        return value

    def _load(self, data):
        return self.recreate_classes(self._parse(data))

    def loads(self, data):
        return self._guarded_loads(self._load, data)

    def loadsCall(self, data):
        return self._guarded_loads(self._load_call, data)

    def _load_call(self, data):
        obj, method, vargs, kwargs = _check_call(self._parse(data))
        return obj, method, self.recreate_classes(vargs), self.recreate_classes(kwargs) if kwargs else kwargs

    @classmethod
    def dict_to_class(cls, data):
        if data.get("__class__") == "float":
            return float(data["value"])  # serpent's encoding of NaN
        return super().dict_to_class(data)

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")

        def replace(obj, serpent_serializer, out, level):
            replaced = replacement_function(obj)
            if replaced is obj:
                serpent_serializer.ser_default_class(replaced, out, level)
            else:
                serpent_serializer._serialize(replaced, out, level)
        serpent.register_class(object_type, replace)


# marshal type codes -> how many bytes of payload follow inline (None: a 1- or 4-byte count or length follows)
_MARSHAL_FIXED = {ord(c): n for c, n in (("N", 0), ("F", 0), ("T", 0), ("S", 0), (".", 0),
                                         ("i", 4), ("g", 8), ("y", 16), ("r", 4))}
_MARSHAL_SIZED4 = {ord(c) for c in "stuaA"}          # 4-byte length, then that many bytes
_MARSHAL_SIZED1 = {ord(c) for c in "zZf"}            # 1-byte length, then that many bytes
_MARSHAL_COUNT4 = {ord(c) for c in "([<>"}           # 4-byte element count, elements follow
_MARSHAL_LONG, _MARSHAL_SMALL_TUPLE, _MARSHAL_DICT, _MARSHAL_NULL = ord("l"), ord(")"), ord("{"), ord("0")
_MARSHAL_COMPLEX, _MARSHAL_CODE, _MARSHAL_REFERENCE = ord("x"), ord("c"), ord("r")
_MARSHAL_REF_FLAG = 0x80
_OPEN_DICT = -1  # in check_marshal_sizes: an open dict, which ends at a NULL code instead of after a count


def _open_container(open_counts, open_refs, unfinished, count, ref):
    open_counts.append(count)
    open_refs.append(ref)
    unfinished.add(ref)


def _close_container(open_counts, open_refs, unfinished):
    open_counts.pop()
    unfinished.discard(open_refs.pop())


def check_marshal_sizes(data):
    """Refuse marshal data whose declared sizes exceed the bytes that are there, before marshal.loads sees it.

    marshal.loads allocates a container or long of the declared size before it
    reads any element, so five bytes could ask for gigabytes. Each element takes
    at least one byte, so a count larger than what remains is a lie. Code
    objects are refused here too. The walk follows the structure and ends with
    the value; bytes after it (which marshal.loads would ignore, and which could
    be megabytes of filler for this walk to chew on) are refused without being read.
    """
    view = memoryview(data)
    pos, end = 0, len(view)
    open_counts = []  # for each container being read: how many elements are still to come (or _OPEN_DICT)
    open_refs = []  # for each container being read: its reference number (-1: it has none)
    unfinished = set()  # reference numbers of containers still being read
    refs = 0  # reference numbers given so far (marshal numbers flagged values as it starts them)
    while True:
        if pos >= end:
            raise errors.SerializeError("invalid marshal data: truncated")
        ref = -1
        if view[pos] & _MARSHAL_REF_FLAG:
            ref, refs = refs, refs + 1
        code = view[pos] & ~_MARSHAL_REF_FLAG
        pos += 1
        size = _MARSHAL_FIXED.get(code)
        if code == _MARSHAL_REFERENCE and end - pos >= 4:
            target = int.from_bytes(view[pos:pos + 4], "little")
            if target in unfinished or target >= refs:
                # a container inside itself: marshal.loads builds it (a tuple that holds itself crashes the
                # interpreter when hashed), and nothing Pyro sends is like that
                raise errors.SerializeError("invalid marshal data: a reference to a value not complete yet")
        if size is not None:
            pos += size
        elif code in _MARSHAL_SIZED4 or code in _MARSHAL_COUNT4 or code == _MARSHAL_LONG:
            if end - pos < 4:
                raise errors.SerializeError("invalid marshal data: truncated size field")
            count = int.from_bytes(view[pos:pos + 4], "little", signed=True)
            pos += 4
            if code == _MARSHAL_LONG:
                count = abs(count) * 2  # digits of 2 bytes each
            if count < 0 or count > end - pos:
                raise errors.SerializeError("invalid marshal data: declared size %d exceeds the %d bytes left"
                                            % (count, end - pos))
            if code in _MARSHAL_COUNT4:
                if count:
                    _open_container(open_counts, open_refs, unfinished, count, ref)
                    continue
            else:
                pos += count
        elif code == _MARSHAL_SMALL_TUPLE:
            if pos >= end:
                raise errors.SerializeError("invalid marshal data: truncated size field")
            count = view[pos]
            pos += 1
            if count:
                _open_container(open_counts, open_refs, unfinished, count, ref)
                continue
        elif code in _MARSHAL_SIZED1:
            if pos >= end:
                raise errors.SerializeError("invalid marshal data: truncated size field")
            pos += 1 + view[pos]
        elif code == _MARSHAL_DICT:
            _open_container(open_counts, open_refs, unfinished, _OPEN_DICT, ref)
            continue
        elif code == _MARSHAL_NULL:
            if not open_counts or open_counts[-1] != _OPEN_DICT:
                raise errors.SerializeError("invalid marshal data: NULL outside a dict")
            _close_container(open_counts, open_refs, unfinished)  # the dict is complete
        elif code == _MARSHAL_COMPLEX:  # two short float strings
            for _ in range(2):
                if pos >= end:
                    raise errors.SerializeError("invalid marshal data: truncated complex")
                pos += 1 + view[pos]
        elif code == _MARSHAL_CODE:
            raise errors.SecurityError("refused to deserialize a code object")
        else:
            raise errors.SerializeError("invalid marshal data: unsupported type code %r" % chr(code))
        if pos > end:
            raise errors.SerializeError("invalid marshal data: truncated")
        # a value is complete: it may complete the containers around it
        while open_counts:
            left = open_counts[-1]
            if left == _OPEN_DICT:
                break
            if left > 1:
                open_counts[-1] = left - 1
                break
            _close_container(open_counts, open_refs, unfinished)
        else:
            break  # the outermost value is complete
    if pos != end:
        raise errors.SerializeError("invalid marshal data: %d bytes after the end of the value" % (end - pos))


class MarshalSerializer(SerializerBase):
    """marshal: fast, builtin types only (no autoproxy: it has no per-type hooks)."""

    serializer_id = 2
    name = "marshal"
    _marshallable = (str, int, float, type(None), bool, complex, bytes, bytearray, tuple, set, frozenset, list, dict)

    def _convert(self, obj):
        if isinstance(obj, array.array):
            return obj.tounicode() if obj.typecode == "u" else obj.tolist()
        if isinstance(obj, self._marshallable):
            return obj
        if isinstance(obj, uuid.UUID):
            return str(obj)
        return self.class_to_dict(obj)

    def dumps(self, data):
        return marshal.dumps(self._convert(data))

    def dumpsCall(self, obj, method, vargs, kwargs):
        return marshal.dumps((obj, method, [self._convert(v) for v in vargs],
                              {k: self._convert(v) for k, v in kwargs.items()}))

    def loads(self, data):
        data = _to_bytes(data)
        check_marshal_sizes(data)
        return self._guarded_loads(lambda d: self.recreate_classes(marshal.loads(d)), data)

    def loadsCall(self, data):
        data = _to_bytes(data)
        check_marshal_sizes(data)
        obj, method, vargs, kwargs = _check_call(self._guarded_loads(marshal.loads, data))
        return obj, method, self._guarded_loads(self.recreate_classes, vargs), \
            self._guarded_loads(self.recreate_classes, kwargs)

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        pass  # marshal has no per-type hooks


def _common_default(obj):
    """Conversions json and msgpack share for types they cannot encode natively (Pyro5's choices)."""
    if isinstance(obj, (set, frozenset)):
        return tuple(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, array.array):
        return obj.tounicode() if obj.typecode == "u" else obj.tolist()
    return None


class _HookedSerializer(SerializerBase):
    """A serializer whose library calls back for unknown types (json, msgpack): replacements live here."""

    _type_replacements = {}

    def _replace(self, obj):
        """Apply a registered type replacement (an autoproxy, say), then the conversions json and msgpack share.

        The result may still need converting (a Proxy becomes a dict): callers go on with it.
        """
        replacer = self._type_replacements.get(type(obj))
        if replacer:
            obj = replacer(obj)
        converted = _common_default(obj)
        return obj if converted is None else converted

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")
        cls._type_replacements[object_type] = replacement_function


class JsonSerializer(_HookedSerializer):
    """json: interoperable with other languages; no bytes, no tuples."""

    serializer_id = 3
    name = "json"
    _type_replacements = {}

    def default(self, obj):
        """json's hook for what it cannot encode: type replacements and the shared conversions first, then a
        date or datetime as its ISO string, anything else as a class dict."""
        obj = self._replace(obj)
        if isinstance(obj, (list, tuple, str, int, float, bool, type(None), dict)):
            return obj
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat()
        return self.class_to_dict(obj)

    def _dump(self, data):
        return json.dumps(data, ensure_ascii=False, default=self.default).encode("utf-8")

    def dumps(self, data):
        return self._dump(data)

    def dumpsCall(self, obj, method, vargs, kwargs):
        return self._dump({"object": obj, "method": method, "params": vargs, "kwargs": kwargs})

    def loads(self, data):
        return self._guarded_loads(lambda d: self.recreate_classes(json.loads(codecs.decode(d, "utf-8"))), data)

    def loadsCall(self, data):
        call = self._guarded_loads(lambda d: json.loads(codecs.decode(d, "utf-8")), data)
        if not isinstance(call, dict) or not {"object", "method", "params", "kwargs"} <= call.keys():
            raise errors.SerializeError("invalid call message: json call must have object, method, params, kwargs")
        obj, method, vargs, kwargs = _check_call((call["object"], call["method"], call["params"], call["kwargs"]))
        return obj, method, self._guarded_loads(self.recreate_classes, vargs), \
            self._guarded_loads(self.recreate_classes, kwargs)


class MsgpackSerializer(_HookedSerializer):
    """msgpack: compact binary; tuples arrive as lists."""

    serializer_id = 4
    name = "msgpack"
    _type_replacements = {}

    def default(self, obj):
        """msgpack's hook for what it cannot encode: type replacements and the shared conversions first, then ext
        types for complex numbers, naive datetimes, dates and integers beyond 64 bits, anything else as a class dict."""
        obj = self._replace(obj)
        if isinstance(obj, (list, tuple, str, bytes, float, bool, type(None), dict)):
            return obj
        if isinstance(obj, complex):
            return msgpack.ExtType(0x30, struct.pack("dd", obj.real, obj.imag))
        if isinstance(obj, datetime.datetime):
            if obj.tzinfo:
                raise errors.SerializeError("msgpack cannot serialize datetime with timezone info")
            return msgpack.ExtType(0x32, struct.pack("d", obj.timestamp()))
        if isinstance(obj, datetime.date):
            return msgpack.ExtType(0x33, struct.pack("l", obj.toordinal()))
        if isinstance(obj, numbers.Number) and not isinstance(obj, (int, float)):
            return msgpack.ExtType(0x31, str(obj).encode("ascii"))
        if isinstance(obj, int):
            return msgpack.ExtType(0x31, str(obj).encode("ascii"))  # integers beyond 64 bits
        return self.class_to_dict(obj)

    def object_hook(self, obj):
        """msgpack's hook for every map read: one with a ``__class__`` key becomes the object it describes."""
        if "__class__" in obj:
            return self.dict_to_class(obj)
        return obj

    @staticmethod
    def ext_hook(code, data):
        """msgpack's hook for ext types: the complex, integer, datetime or date that ``default`` wrote as one."""
        if code == 0x30:
            real, imag = struct.unpack("dd", data)
            return complex(real, imag)
        if code == 0x31:
            return int(data)
        if code == 0x32:
            return datetime.datetime.fromtimestamp(struct.unpack("d", data)[0])
        if code == 0x33:
            return datetime.date.fromordinal(struct.unpack("l", data)[0])
        raise errors.SerializeError("invalid ext code for msgpack: %d" % code)

    def _pack(self, data):
        return msgpack.packb(data, use_bin_type=True, default=self.default)

    def _unpack(self, data):
        return msgpack.unpackb(data, raw=False, object_hook=self.object_hook, ext_hook=self.ext_hook,
                               strict_map_key=False)

    def dumps(self, data):
        return self._pack(data)

    def dumpsCall(self, obj, method, vargs, kwargs):
        return self._pack((obj, method, vargs, kwargs))

    def loads(self, data):
        return self._guarded_loads(self._unpack, data)

    def loadsCall(self, data):
        return _check_call(self._guarded_loads(self._unpack, data))


serializers = {s.name: s for s in (SerpentSerializer(), MarshalSerializer(), JsonSerializer(), MsgpackSerializer())}
serializers_by_id = {s.serializer_id: s for s in serializers.values()}


class _WritesPyro4Shapes:
    """Mixin for the serializers of Pyro4 clients: Pyro's own objects go out under Pyro4's names and shapes."""

    def dumps(self, data):
        before, _writing.pyro4 = getattr(_writing, "pyro4", False), True
        try:
            return super().dumps(data)
        finally:
            _writing.pyro4 = before

    def dumpsCall(self, obj, method, vargs, kwargs):
        before, _writing.pyro4 = getattr(_writing, "pyro4", False), True
        try:
            return super().dumpsCall(obj, method, vargs, kwargs)
        finally:
            _writing.pyro4 = before


def _pyro4_serializer(base, wire_id):
    cls = type("Pyro4" + type(base).__name__, (_WritesPyro4Shapes, type(base)),
               {"serializer_id": protocol48.serializer_id_from_48(wire_id), "__module__": __name__})
    return cls()


# protocol 48's serpent, json, marshal and msgpack, under ids no 502 header can carry (see protocol48)
pyro4_serializers_by_id = {s.serializer_id: s for s in (
    _pyro4_serializer(serializers[name], wire_id) for wire_id, name in protocol48.SERIALIZER_NAMES.items()
    if name in serializers)}


class _UnknownSerializer(errors.SerializeError, KeyError):
    """No serializer of that name: a SerializeError, and the KeyError Pyro5's serializer table raises."""

    __str__ = BaseException.__str__


def get_serializer(name):
    """The serializer registered under ``name``, or an error listing the known ones."""
    try:
        return serializers[name]
    except KeyError:
        raise _UnknownSerializer("unknown serializer %r (known: %s)" % (name, ", ".join(sorted(serializers)))) \
            from None


def get_pyro4_serializer(name):
    """The serializer ``name`` as it talks to Pyro4 (protocol 48), or an error listing the known ones. pickle,
    dill and cloudpickle are found only by name (see geopyro.pickles), never by id."""
    serializer = pyro4_serializers_by_id.get(protocol48.serializer_id_from_48(protocol48.SERIALIZER_IDS.get(name, -1)))
    if serializer is None and name in ("pickle", "dill", "cloudpickle"):
        from . import pickles
        return pickles.get(name)
    if serializer is None:
        raise _UnknownSerializer("unknown serializer %r for Pyro4 (known: %s)" % (
            name, ", ".join(sorted(s.name for s in pyro4_serializers_by_id.values()))))
    return serializer


def get_serializer_by_id(serializer_id):
    """The serializer with wire id ``serializer_id``, or SerializeError naming the id."""
    try:
        return serializers_by_id[serializer_id]
    except KeyError:
        if serializer_id in pyro4_serializers_by_id:
            return pyro4_serializers_by_id[serializer_id]
        raise errors.SerializeError("unknown serializer id %d (known: %s)"
                                    % (serializer_id, ", ".join(str(i) for i in sorted(serializers_by_id)))) \
            from None
