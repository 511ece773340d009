"""Which members of a class can be reached remotely, and how the decorators mark them.

The rules (secure by default): nothing is reachable unless exposed; names
starting with an underscore are private and never reachable, except dunder
names such as ``__len__`` when exposed, and never the dunders in
``NEVER_REMOTED``, which the proxy machinery itself depends on.
"""

import inspect
import types
import logging

from . import errors

log = logging.getLogger("geopyro.exposure")

NEVER_REMOTED = frozenset([
    "__init__", "__init_subclass__", "__class__", "__module__", "__weakref__", "__dict__", "__slots__",
    "__call__", "__new__", "__del__", "__repr__", "__str__", "__format__", "__nonzero__", "__bool__",
    "__coerce__", "__cmp__", "__eq__", "__ne__", "__hash__", "__ge__", "__gt__", "__le__", "__lt__",
    "__dir__", "__enter__", "__exit__", "__copy__", "__deepcopy__", "__sizeof__",
    "__getattr__", "__setattr__", "__hasattr__", "__getattribute__", "__delattr__",
    "__instancecheck__", "__subclasscheck__", "__getinitargs__", "__getnewargs__", "__getnewargs_ex__",
    "__getstate__", "__setstate__", "__reduce__", "__reduce_ex__", "__subclasshook__",
    "__get__", "__set__", "__delete__", "__set_name__", "__class_getitem__", "__mro_entries__",
    "__globals__", "__code__", "__closure__", "__func__", "__self__", "__builtins__", "__bases__",
    "__subclasses__", "__loader__", "__spec__",
])

INSTANCE_MODES = ("session", "single", "percall")
EXECUTION_MARKS = ("inline", "thread")


def is_private_attribute(name):
    """True if ``name`` may never be reached remotely."""
    if name in NEVER_REMOTED:
        return True
    if not name.startswith("_"):
        return False
    return not (len(name) > 4 and name.startswith("__") and name.endswith("__"))


def _mark(func):
    func._pyroExposed = True


def expose(method_or_class):
    """Make a method, property or whole class reachable remotely.

    On a class it exposes every public method and property defined on it; it
    can also be called as a function on a class you cannot edit.
    """
    if inspect.isdatadescriptor(method_or_class):
        func = method_or_class.fget or method_or_class.fset or method_or_class.fdel
        if func is None or is_private_attribute(func.__name__):
            raise AttributeError("exposing private names (starting with _) is not allowed")
        _mark(func)  # (its first accessor only, as Pyro5: a setter function of a public name stays unexposed)
        return method_or_class
    if isinstance(method_or_class, (classmethod, staticmethod)):
        name = method_or_class.__func__.__name__
        raise AttributeError("@expose on a classmethod/staticmethod must be done after @classmethod/@staticmethod "
                             "in the source, on the line below it; method: " + name)
    name = getattr(method_or_class, "__name__", None)
    if not name:
        raise AttributeError("@expose cannot tell what this is: %r" % (method_or_class,))
    if is_private_attribute(name):
        raise AttributeError("exposing private names (starting with _) is not allowed: " + name)
    if inspect.isclass(method_or_class):
        for member_name, member in vars(method_or_class).items():
            if is_private_attribute(member_name):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                _mark(member.__func__)
            elif inspect.isfunction(member):
                _mark(member)
            elif isinstance(member, property):
                for accessor in (member.fget, member.fset, member.fdel):
                    if accessor is not None:
                        _mark(accessor)
            elif inspect.ismethoddescriptor(member) or inspect.isdatadescriptor(member):
                try:
                    _mark(member)
                except (AttributeError, TypeError):
                    pass  # builtin descriptors take no attributes
        method_or_class._pyroExposed = True
        _reset_cache(method_or_class)
        return method_or_class
    _mark(method_or_class)
    return method_or_class


def oneway(method):
    """Calls to this method return at once on the client; the server runs it without replying."""
    method._pyroOneway = True
    return method


def callback(method):
    """Errors in this method are raised on the callback's side too, not only sent back to the caller."""
    method._pyroCallback = True
    return method


def is_callback_method(method):
    """True for a (bound) method marked with @callback."""
    func = getattr(method, "__func__", method)
    if func.__class__ is types.FunctionType:
        return func.__dict__.get("_pyroCallback", False)  # no AttributeError made and dropped for the usual method
    return getattr(method, "_pyroCallback", False)


def blocking(method_or_class):
    """Run this method (or every method of this class) on a server thread: it may block without yielding.

    Overrides the daemon's automatic choice (CALL_EXECUTION "auto"); use it for
    CPU work or blocking libraries in a monkey-patched program.
    """
    return _mark_execution(method_or_class, "thread")


def cooperative(method_or_class):
    """Run this method (or every method of this class) inline in its connection's greenlet.

    Only for code that never blocks without yielding to gevent (gevent APIs,
    quick pure computation); in an unpatched program it spares the handoff to
    a thread. Overrides the daemon's automatic choice (CALL_EXECUTION "auto").
    """
    return _mark_execution(method_or_class, "inline")


def _mark_execution(method_or_class, where):
    if isinstance(method_or_class, (classmethod, staticmethod)):
        method_or_class.__func__._pyroExecution = where
    elif isinstance(method_or_class, property):
        for accessor in (method_or_class.fget, method_or_class.fset, method_or_class.fdel):
            if accessor is not None:
                accessor._pyroExecution = where
    else:
        method_or_class._pyroExecution = where
    _execution_marks.clear()
    return method_or_class


def behavior(instance_mode="session", instance_creator=None, execution=None):
    """Choose how the daemon makes instances of a registered class: per session, single, or per call.

    ``execution`` ("inline" or "thread") marks every method of the class as
    ``@cooperative`` or ``@blocking`` would (geopyro only).
    """
    if not isinstance(instance_mode, str):
        raise SyntaxError("behavior decorator is missing argument(s)")
    if execution is not None and execution not in EXECUTION_MARKS:
        raise ValueError("invalid execution %r (choose from %s)" % (execution, ", ".join(EXECUTION_MARKS)))

    def decorate(clazz):
        # checked in Pyro5's order, so the same mistake raises the same exception type
        if not inspect.isclass(clazz):
            raise TypeError("behavior decorator can only be used on a class")
        if instance_mode not in INSTANCE_MODES:
            raise ValueError("invalid instance mode %r (choose from %s)" % (instance_mode, ", ".join(INSTANCE_MODES)))
        if instance_creator is not None and not callable(instance_creator):
            raise TypeError("instance_creator must be a callable")
        clazz._pyroInstancing = (instance_mode, instance_creator)
        if execution is not None:
            _mark_execution(clazz, execution)
        return clazz
    return decorate


_execution_marks = {}  # (class, member name) -> "inline", "thread" or None


def get_execution_mark(clazz, name):
    """Where a member of a class asked to run ("inline", "thread") or None: the member's mark, else the class's.

    Never raises, whatever a client sent as the name; only names of real members are remembered.
    """
    member = None
    if name.__class__ is str:
        key = (clazz, name)
        mark = _execution_marks.get(key, _UNKNOWN)
        if mark is not _UNKNOWN:
            return mark
        try:
            member = inspect.getattr_static(clazz, name)
        except AttributeError:
            pass
    if member is None:
        key = (clazz, None)  # not a member: only the class's mark can count
        mark = _execution_marks.get(key, _UNKNOWN)
        if mark is not _UNKNOWN:
            return mark
    kind = type(member)  # (not isinstance: a member may be a weak proxy whose target is gone)
    if issubclass(kind, (classmethod, staticmethod)):
        member = member.__func__
    elif issubclass(kind, property):
        member = member.fget or member.fset
    # only a function's own attributes are read: any other member (a proxy, say) might run code on getattr
    mark = member.__dict__.get("_pyroExecution") if issubclass(type(member), types.FunctionType) else None
    if mark not in EXECUTION_MARKS:
        mark = getattr(clazz, "_pyroExecution", None)
    if mark not in EXECUTION_MARKS:
        mark = None
    _execution_marks[key] = mark
    return mark


_UNKNOWN = object()


def _is_exposed(func):
    return getattr(func, "_pyroExposed", False)


_metadata_cache = {}
_method_names = {}  # class -> its exposed method names: the one dict lookup a call needs


def _reset_cache(clazz):
    _metadata_cache.pop(clazz, None)
    _method_names.pop(clazz, None)
    _execution_marks.clear()


def reset_exposed_members(obj):
    """Forget cached metadata so that members added at run time are seen."""
    _reset_cache(obj if inspect.isclass(obj) else type(obj))


def get_exposed_members(obj):
    """Metadata of an object or class: {"methods", "oneway", "attrs"} as sets of names (cached per class)."""
    clazz = obj if inspect.isclass(obj) else type(obj)
    cached = _metadata_cache.get(clazz)
    if cached is not None:
        return cached
    methods, oneways, attrs = set(), set(), set()
    for name in dir(clazz):
        if is_private_attribute(name):
            continue
        try:
            member = inspect.getattr_static(clazz, name)
        except AttributeError:
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if isinstance(member, property):
            accessor = member.fget or member.fset or member.fdel
            if accessor is not None and _is_exposed(accessor):
                attrs.add(name)
        elif callable(member) and _is_exposed(member):
            methods.add(name)
            if getattr(member, "_pyroOneway", False):
                oneways.add(name)
    result = {"methods": methods, "oneway": oneways, "attrs": attrs}
    _metadata_cache[clazz] = result
    _method_names[clazz] = frozenset(methods)  # a copy: the metadata sets are handed out and may be changed
    return result


def get_exposed_method(obj, name):
    """The bound exposed method ``name`` of ``obj``, or AttributeError saying why not."""
    methods = _method_names.get(type(obj))  # type(), not __class__, which an object may fake
    if methods is not None and name.__class__ is str and name in methods:  # private names are never in there
        return getattr(obj, name)
    if not isinstance(name, str) or is_private_attribute(name):
        raise AttributeError("attempt to access private attribute '%s'" % (name,))
    if name not in get_exposed_members(obj)["methods"]:
        raise AttributeError("attempt to access unexposed attribute '%s'" % name)
    return getattr(obj, name)


def _exposed_property(obj, name):
    if not isinstance(name, str) or is_private_attribute(name):
        raise AttributeError("attempt to access private attribute '%s'" % (name,))
    if name not in get_exposed_members(obj)["attrs"]:
        raise AttributeError("attempt to access unexposed or unknown remote attribute '%s'" % name)
    return inspect.getattr_static(type(obj), name)


def get_exposed_property_value(obj, name):
    """Read an exposed property; anything else raises AttributeError."""
    prop = _exposed_property(obj, name)
    if prop.fget is None or not _is_exposed(prop.fget):
        raise AttributeError("remote attribute '%s' is not readable" % name)
    return prop.fget(obj)


def set_exposed_property_value(obj, name, value):
    """Write an exposed property that has a setter; anything else raises AttributeError.

    As in Pyro5, a property is exposed as a whole (by its getter, usually):
    its plain ``@x.setter`` is writable remotely too.
    """
    prop = _exposed_property(obj, name)
    if prop.fset is None:
        raise AttributeError("remote attribute '%s' is not writable" % name)
    prop.fset(obj, value)


def check_instancing(clazz):
    """The (mode, creator) pair of a registered class, with the default filled in."""
    instancing = getattr(clazz, "_pyroInstancing", None)
    if instancing is None:
        return "session", None
    mode, creator = instancing
    if mode not in INSTANCE_MODES:
        raise errors.DaemonError("invalid instance mode %r on %s" % (mode, clazz.__name__))
    return mode, creator
