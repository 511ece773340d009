"""Target adapters: how the checks reach one implementation, wherever its adapter lives.

An adapter is a module (or any object with these attributes):

* ``NAME`` - the target name in pairs and reports (defaults to the module's or file's name; an entry
  point's name is its target's name)
* ``WIRE`` - a wire-protocol tag; a server and a client can pair when their tags are equal
* ``SERIALIZERS`` - serializer names; serializer checks for others are n/a
* ``LACKS`` - optional ``{feature: reason}``; checks needing a lacked feature are n/a
* either ``load()`` - imports the implementation and returns a :class:`Target` (a full target:
  server and client), with ``PIP_PACKAGE`` / ``IMPORT_NAME`` naming what must be installed;
* or ``SERVER_COMMAND`` - a server-only target: a command that starts a server and prints its URI
  (see :class:`conformance.harness.CommandServer` and the README's "server-only targets").

Where adapters come from (``--list-targets`` shows them all):

* built in: the modules of this package;
* installed packages, through the entry-point group ``conformance.targets`` (name = target name);
* named on the command line: ``--target mypkg.myadapter`` (a module path) or ``--target ./adapter.py``
  (a file); ``--server-command`` makes a server-only target on the fly.

The command line records every adapter it resolved in the environment (``CONFORMANCE_TARGETS``), so
pytest-xdist workers and server subprocesses find the same adapters by name.
"""

import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import re
import sys
import types

from ._pyro5_api import pyro5_api_target

__all__ = ["Target", "UsageError", "pyro5_api_target", "resolve", "adapter_module", "load", "known_targets",
           "describe_targets", "check_installed", "wire_of", "is_server_only", "command_adapter", "version_of"]

ENTRY_POINT_GROUP = "conformance.targets"
ENV_REGISTRY = "CONFORMANCE_TARGETS"  # {name: spec}: the adapters this run resolved, for its subprocesses
COMMAND_SPEC_PREFIX = "command:"  # a spec holding a server-only adapter as JSON (from --server-command)
_VALID_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")  # no "/", "," or ":": they separate pairs and check ids


class UsageError(Exception):
    """A command-line problem: exit code 2."""


class Target(types.SimpleNamespace):
    """The uniform names a check uses, mapped onto one implementation.

    Required attributes (see ``_pyro5_api.py`` for a complete example):
    name, wire, version, expose, oneway, behavior, callback, Daemon, DaemonObject, Proxy,
    URI, config, errors, locate_ns, resolve, current_context, SerializedBlob,
    batch(proxy), serve(objects, daemon, use_ns), start_ns(host) -> (uri, daemon),
    servertypes {"concurrent": ..., "multiplex": ...}, serializers [names],
    configure(**items), get_pyro_traceback(exc) -> list[str], DAEMON_NAME, NAMESERVER_NAME,
    lacks {feature: reason}, server_setup() (run in a server subprocess after import).

    An implementation with Pyro5's module layout (``<package>.api``, ``.core``, ``.errors``,
    ``.nameserver``) gets all of it from :func:`pyro5_api_target`.

    An adapter module may also define ``prepare_server_process()``, run in a server
    subprocess before the implementation is imported (geopyro uses it for --execution).
    """

    def lacks_reason(self, feature):
        return self.lacks.get(feature)


# ---- finding adapters ---------------------------------------------------------------------------

_resolved = {}  # name -> (adapter, where it came from)


def builtin_targets():
    """Names of the adapter modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _entry_points():
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):
        return {ep.name: ep for ep in found.select(group=ENTRY_POINT_GROUP)}
    return {ep.name: ep for ep in found.get(ENTRY_POINT_GROUP, ())}  # Python 3.9


def known_targets():
    """Every target name this process can find: built in, from entry points, and resolved in this run."""
    names = set(builtin_targets()) | set(_entry_points()) | set(_resolved) | set(_env_registry())
    return sorted(names)


def _env_registry():
    try:
        return json.loads(os.environ.get(ENV_REGISTRY) or "{}")
    except ValueError:
        return {}


def _remember(name, adapter, origin, spec):
    if not _VALID_NAME.match(name):
        raise UsageError("target name %r (from %s) may hold only letters, digits and _ . + -" % (name, origin))
    if getattr(adapter, "SERVER_COMMAND", None) and not hasattr(adapter, "load"):
        for attr, default in (("WIRE", "pyro-502"), ("SERIALIZERS", ["serpent", "json", "marshal", "msgpack"]),
                              ("LACKS", {})):
            if not hasattr(adapter, attr):
                setattr(adapter, attr, default)
    missing = [attr for attr in ("WIRE", "SERIALIZERS") if not hasattr(adapter, attr)]
    if not (hasattr(adapter, "load") or getattr(adapter, "SERVER_COMMAND", None)):
        missing.append("load() or SERVER_COMMAND")
    if missing:
        raise UsageError("%s is not a conformance adapter: it lacks %s (see the conformance README, 'Targets')"
                         % (origin, ", ".join(missing)))
    if spec is not None and (name in builtin_targets() or (name in _entry_points() and spec != name)):
        # subprocesses find a built-in or entry-point name before the run's own record of it
        raise UsageError("%s calls itself %r, the name of another target; give it another NAME" % (origin, name))
    previous = _resolved.get(name)
    if previous is not None and previous[0] is not adapter:
        raise UsageError("two targets are called %r: %s and %s; give one of them another NAME"
                         % (name, previous[1], origin))
    _resolved[name] = (adapter, origin)
    if spec is not None:
        registry = _env_registry()
        registry[name] = spec
        os.environ[ENV_REGISTRY] = json.dumps(registry)
    return name


def _load_file(path):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise UsageError("no adapter file %s" % path)
    module_name = "conformance_target_%s" % re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == path:
        return existing
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UsageError("adapter file %s failed to load: %s: %s" % (path, type(exc).__name__, exc)) from exc
    return module


def _import_module(path):
    try:
        return importlib.import_module(path)
    except ImportError as exc:
        if exc.name and (exc.name == path or path.startswith(exc.name + ".")):  # the adapter itself is missing
            return None
        raise UsageError("adapter module %s failed to import: %s" % (path, exc)) from exc
    except Exception as exc:
        raise UsageError("adapter module %s failed to import: %s: %s" % (path, type(exc).__name__, exc)) from exc


def resolve(spec):
    """Find the adapter ``spec`` names (a target name, a module path, a file, or a ``command:`` spec);
    remember it for this run and its subprocesses; return its target name."""
    if spec in _resolved:
        return spec
    registered = _env_registry().get(spec)  # what the command line resolved this name to, in a subprocess
    if registered is not None and registered != spec:
        name = resolve(registered)
        _resolved.setdefault(spec, _resolved[name])
        return spec
    if spec.startswith(COMMAND_SPEC_PREFIX):
        adapter = _command_module(json.loads(spec[len(COMMAND_SPEC_PREFIX):]))
        return _remember(adapter.NAME, adapter, "--server-command %r" % adapter.SERVER_COMMAND, spec)
    if spec in builtin_targets():
        adapter = importlib.import_module("%s.%s" % (__name__, spec))
        return _remember(getattr(adapter, "NAME", spec), adapter, "built in (%s)" % adapter.__name__, None)
    if spec.endswith(".py") or os.sep in spec or (os.altsep and os.altsep in spec):
        adapter = _load_file(spec)
        default = os.path.splitext(os.path.basename(spec))[0]
        return _remember(getattr(adapter, "NAME", default), adapter, "file %s" % os.path.abspath(spec),
                         os.path.abspath(spec))
    entry_point = _entry_points().get(spec)
    if entry_point is not None:
        try:
            adapter = entry_point.load()
        except Exception as exc:
            raise UsageError("the adapter of entry point %r (%s) failed to load: %s"
                             % (spec, entry_point.value, exc)) from exc
        dist = getattr(getattr(entry_point, "dist", None), "name", None)
        origin = "entry point %s = %s%s" % (spec, entry_point.value, " (package %s)" % dist if dist else "")
        return _remember(spec, adapter, origin, spec)  # the entry point's name is the target's name
    adapter = _import_module(spec) if _looks_like_module_path(spec) else None
    if adapter is None:
        raise UsageError("unknown target %r; known targets: %s (or give a module path, mypkg.myadapter, or a "
                         "file, ./my_adapter.py)" % (spec, ", ".join(known_targets())))
    return _remember(getattr(adapter, "NAME", spec.rsplit(".", 1)[-1]), adapter, "module %s" % spec, spec)


def _looks_like_module_path(spec):
    return all(part.isidentifier() for part in spec.split("."))


def adapter_module(name):
    """The adapter of target ``name`` (resolving it first when this process has not yet)."""
    if name not in _resolved:
        resolve(name)
    return _resolved[name][0]


def origin_of(name):
    adapter_module(name)
    return _resolved[name][1]


# ---- server-only targets --------------------------------------------------------------------------

def is_server_only(name):
    adapter = adapter_module(name)
    return getattr(adapter, "SERVER_COMMAND", None) is not None and not hasattr(adapter, "load")


def command_adapter(command, objects=None, name="command", wire="pyro-502",
                    serializers=("serpent", "json", "marshal", "msgpack")):
    """The spec of a server-only target made from a command line (``--server-command``)."""
    description = {"NAME": name, "SERVER_COMMAND": command, "OBJECTS": list(objects) if objects else None,
                   "WIRE": wire, "SERIALIZERS": list(serializers)}
    return COMMAND_SPEC_PREFIX + json.dumps(description, sort_keys=True)


def _command_module(description):
    module = types.ModuleType("conformance_command_target")
    module.__doc__ = "A server-only target made from --server-command."
    module.LACKS = {}
    module.WIRE = "pyro-502"
    module.SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
    for key, value in description.items():
        setattr(module, key, value)
    return module


def server_types_of(name):
    """The server types a target offers checks for: both, unless a server command cannot choose."""
    adapter = adapter_module(name)
    if getattr(adapter, "SERVER_COMMAND", None) is not None and "{servertype}" not in adapter.SERVER_COMMAND:
        return ("concurrent",)
    return ("concurrent", "multiplex")


# ---- using adapters -----------------------------------------------------------------------------

def check_installed(name):
    """Raise UsageError unless the target's implementation can be imported."""
    adapter = adapter_module(name)
    import_name = getattr(adapter, "IMPORT_NAME", None)
    if import_name and importlib.util.find_spec(import_name) is None:
        raise UsageError("target %r needs the %s package, which is not installed: pip install %s"
                         % (name, import_name, getattr(adapter, "PIP_PACKAGE", import_name)))
    return adapter


_loaded = {}


def load(name):
    """The Target namespace for ``name`` (imports the implementation once per process)."""
    if name not in _loaded:
        adapter = check_installed(name)
        if is_server_only(name):
            raise UsageError("target %r is server-only (a server command): it cannot be the client; choose a "
                             "client with --client" % name)
        target = adapter.load()
        target.name = name
        target.wire = adapter.WIRE
        _loaded[name] = target
    return _loaded[name]


def version_of(name):
    if is_server_only(name):
        return getattr(adapter_module(name), "VERSION", "(started by: %s)" % adapter_module(name).SERVER_COMMAND)
    return load(name).version


def wire_of(name):
    return adapter_module(name).WIRE


def describe_targets():
    """(name, where it came from, status) for every target found: for ``--list-targets``."""
    rows = []
    for name in known_targets():
        try:
            adapter = adapter_module(name)
            origin = origin_of(name)
        except UsageError as exc:
            rows.append((name, "entry point", "broken: %s" % exc))
            continue
        kind = "server only" if is_server_only(name) else "server + client"
        try:
            check_installed(name)
            status = "ready (%s, wire %s)" % (kind, adapter.WIRE)
        except UsageError:
            status = "not installed: pip install %s" % getattr(adapter, "PIP_PACKAGE", "?")
        rows.append((name, origin, status))
    return rows
