"""Target adapters: one module per implementation, discovered by module name.

An adapter module defines:

* ``NAME`` - the target name used on the command line (defaults to the module name)
* ``PIP_PACKAGE`` - what to ``pip install`` when the implementation is missing
* ``IMPORT_NAME`` - the top-level package that must be importable
* ``WIRE`` - a wire-protocol tag; a server and a client can pair when their tags are equal
* ``load()`` - imports the implementation and returns a :class:`Target` with the uniform names

Adding a target means adding one module here; nothing else changes.
"""

import importlib
import importlib.util
import pkgutil
import types


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

    An adapter module may also define ``prepare_server_process()``, run in a server
    subprocess before the implementation is imported (geopyro uses it for --execution).
    """

    def lacks_reason(self, feature):
        return self.lacks.get(feature)


def known_targets():
    """Names of every adapter module in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def adapter_module(name):
    if name not in known_targets():
        raise UsageError("unknown target %r; known targets: %s" % (name, ", ".join(known_targets())))
    return importlib.import_module("%s.%s" % (__name__, name))


def check_installed(name):
    """Raise UsageError unless the target's implementation can be imported."""
    mod = adapter_module(name)
    if importlib.util.find_spec(mod.IMPORT_NAME) is None:
        raise UsageError("target %r needs the %s package, which is not installed: pip install %s"
                         % (name, mod.IMPORT_NAME, mod.PIP_PACKAGE))
    return mod


_loaded = {}


def load(name):
    """The Target namespace for ``name`` (imports the implementation once per process)."""
    if name not in _loaded:
        mod = check_installed(name)
        target = mod.load()
        target.name = getattr(mod, "NAME", name)
        target.wire = mod.WIRE
        _loaded[name] = target
    return _loaded[name]


def wire_of(name):
    return adapter_module(name).WIRE
