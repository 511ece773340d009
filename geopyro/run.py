"""Run an unmodified Pyro5 program on geopyro.

    python -m geopyro.run [--patch] script.py [args...]
    python -m geopyro.run [--patch] -m package.module [args...]

Before the program starts, ``Pyro5`` and each of its modules become names
for geopyro's: ``import Pyro5.api``, ``from Pyro5.server import expose``,
``-m Pyro5.nameserver`` and the rest load geopyro. ``Pyro4`` and its modules
load geopyro's Pyro4 API (``geopyro.compatibility.Pyro4``) the same way. ``--patch`` monkey-patches
the standard library with gevent first (as ``python -m gevent.monkey``
does); without it the program runs unpatched, as it does on Pyro5.

Inside a program, the first line ``import geopyro.as_pyro5`` does the same
(it must come before anything imports Pyro5).
"""

import importlib
import importlib.abc
import importlib.util
import logging
import os
import runpy
import sys

__all__ = ["install", "uninstall", "PYRO5_MODULES", "PYRO4_MODULES", "main"]

# Pyro5's module -> the geopyro module that stands for it
PYRO5_MODULES = {
    "Pyro5": "geopyro",
    "Pyro5.api": "geopyro.api",
    "Pyro5.callcontext": "geopyro.callcontext",
    "Pyro5.client": "geopyro.client",
    "Pyro5.configure": "geopyro.configure",
    "Pyro5.core": "geopyro.core",
    "Pyro5.errors": "geopyro.errors",
    "Pyro5.nameserver": "geopyro.nameserver",
    "Pyro5.nsc": "geopyro.nsc",
    "Pyro5.protocol": "geopyro.protocol",
    "Pyro5.serializers": "geopyro.serializers",
    "Pyro5.server": "geopyro.server",
    "Pyro5.socketutil": "geopyro.socketutil",
    "Pyro5.svr_threads": "geopyro.servers.greenlet",  # Pyro5's default server type; geopyro's is the greenlet one
    "Pyro5.svr_multiplex": "geopyro.servers.multiplex",
    "Pyro5.svr_existingconn": "geopyro.servers.existing",
    "Pyro5.utils": "geopyro.utils",
    "Pyro5.utils.echoserver": "geopyro.utils.echoserver",
    "Pyro5.utils.httpgateway": "geopyro.utils.httpgateway",
}
# Pyro4's modules -> the geopyro modules that offer Pyro4's API (Pyro5's own alias module for it too)
PYRO4_MODULES = {
    "Pyro4": "geopyro.compatibility.Pyro4",
    "Pyro4.configuration": "geopyro.compatibility.Pyro4.configuration",
    "Pyro4.constants": "geopyro.compatibility.Pyro4.constants",
    "Pyro4.core": "geopyro.compatibility.Pyro4.core",
    "Pyro4.errors": "geopyro.compatibility.Pyro4.errors",
    "Pyro4.futures": "geopyro.compatibility.Pyro4.futures",
    "Pyro4.naming": "geopyro.compatibility.Pyro4.naming",
    "Pyro4.socketutil": "geopyro.compatibility.Pyro4.socketutil",
    "Pyro4.util": "geopyro.compatibility.Pyro4.util",
}
PYRO5_MODULES.update({"Pyro5.compatibility": "geopyro.compatibility",
                      "Pyro5.compatibility.Pyro4": "geopyro.compatibility.Pyro4"})
_INTERNALS = "a Pyro4 internal that geopyro's Pyro4 API does not offer"
# modules of Pyro5 and Pyro4 geopyro does not offer, and why
MISSING = {
    "Pyro4.message": _INTERNALS + " (geopyro.protocol48 is the wire protocol)",
    "Pyro4.naming_storage": _INTERNALS + " (geopyro.nsstore has the name server's storages)",
    "Pyro4.nsc": "Pyro4's name server tool: use python -m geopyro.nsc",
    "Pyro4.socketserver": _INTERNALS + " (geopyro.servers has the server types)",
    "Pyro4.socketserver.existingconnectionserver": _INTERNALS,
    "Pyro4.socketserver.multiplexserver": _INTERNALS,
    "Pyro4.socketserver.threadpool": _INTERNALS,
    "Pyro4.socketserver.threadpoolserver": _INTERNALS,
    "Pyro4.test": "Pyro4's test echo server: use geopyro.utils.echoserver",
    "Pyro4.test.echoserver": "Pyro4's test echo server: use geopyro.utils.echoserver",
    "Pyro4.utils": "Pyro4's utils package (Flame, HTTP gateway): see geopyro.utils",
    "Pyro4.utils.flame": "geopyro has no Flame (remote module and code execution)",
    "Pyro4.utils.flameserver": "geopyro has no Flame (remote module and code execution)",
    "Pyro4.utils.httpgateway": "Pyro4's HTTP gateway: use python -m geopyro.utils.httpgateway",
}
ALIASES = dict(PYRO5_MODULES, **PYRO4_MODULES)
_PACKAGES = ("Pyro5", "Pyro5.utils", "Pyro5.compatibility", "Pyro5.compatibility.Pyro4", "Pyro4")

log = logging.getLogger("geopyro.run")


class _AliasLoader(importlib.abc.Loader):
    """Loads an alias name as the geopyro module it stands for (the very same module object)."""

    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        if spec.name == "Pyro4" and not any(name.partition(".")[0] == "Pyro5" for name in sys.modules):
            _pyro4_program()  # a Pyro4 program (not a Pyro5 one that also imports Pyro4)
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass  # imported already, under its own name

    def get_code(self, fullname):
        """The code of the module the alias stands for: ``python -m Pyro5.nameserver`` in a child process (see
        geopyro.inherit) runs it as the launcher's ``-m`` does."""
        real = _MAIN_MODULES.get(fullname, self.target)
        return importlib.util.find_spec(real).loader.get_code(real)


def _is_aliased(name):
    return name.partition(".")[0] in ("Pyro5", "Pyro4")


class _Pyro5Finder(importlib.abc.MetaPathFinder):
    """Answers imports of Pyro5's (and Pyro4's) module names with geopyro's modules."""

    def find_spec(self, fullname, path=None, target=None):
        if not _is_aliased(fullname):
            return None
        reason = MISSING.get(fullname)
        if reason is not None:
            raise ImportError("%s: %s (this program runs on geopyro through geopyro.run)" % (fullname, reason),
                              name=fullname)
        real = ALIASES.get(fullname)
        if real is None:
            return None  # not a module of Pyro5's or Pyro4's: the usual "No module named" error
        real_spec = importlib.util.find_spec(real)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real), origin=real_spec and real_spec.origin,
                                               is_package=fullname in _PACKAGES)


_finder = _Pyro5Finder()


def install():
    """Make ``Pyro5`` (and its modules) load geopyro from now on. Idempotent."""
    if _finder in sys.meta_path:
        return
    for name in list(sys.modules):
        if _is_aliased(name):
            raise RuntimeError("%s was imported before geopyro's alias was installed: install it first "
                               "(python -m geopyro.run, or 'import geopyro.as_pyro5' as the first import)"
                               % name.partition(".")[0])
    sys.meta_path.insert(0, _finder)
    _log_through_pyro5_loggers(True)
    _silence_like_pyro5(True)


# geopyro's logger -> the logger of Pyro5 that stands for it
PYRO5_LOGGERS = {
    "geopyro": "Pyro5",
    "geopyro.client": "Pyro5.client",
    "geopyro.core": "Pyro5.core",
    "geopyro.nameserver": "Pyro5.naming",
    "geopyro.serializers": "Pyro5.serializers",
    "geopyro.server": "Pyro5.server",
    "geopyro.servers.existing": "Pyro5.existingconnectionserver",
    "geopyro.servers.greenlet": "Pyro5.threadpoolserver",
    "geopyro.servers.multiplex": "Pyro5.multiplexserver",
}


# the same for a Pyro4 program (one that imports Pyro4 through the launcher)
PYRO4_LOGGERS = {
    "geopyro": "Pyro4",
    "geopyro.client": "Pyro4.core",
    "geopyro.core": "Pyro4.core",
    "geopyro.nameserver": "Pyro4.naming",
    "geopyro.serializers": "Pyro4.util",
    "geopyro.server": "Pyro4.core",
    "geopyro.servers.existing": "Pyro4.existingconnectionserver",
    "geopyro.servers.greenlet": "Pyro4.threadpoolserver",
    "geopyro.servers.multiplex": "Pyro4.multiplexserver",
}


def _log_through_pyro5_loggers(on, loggers=PYRO5_LOGGERS):
    """Hang each geopyro logger under the Pyro5 (or Pyro4) logger of the same job (or back under its own parent).

    Then a program that configures ``logging.getLogger("Pyro5.server")``, or
    all of ``"Pyro5"`` (levels, handlers), configures geopyro's loggers too.
    The loggers in between are made first, so logging never re-parents ours.
    (So under the launcher, configure the ``"Pyro5"`` loggers, not
    ``"geopyro"``; and ``logging.config.dictConfig`` disables loggers by
    name, so pass it ``disable_existing_loggers=False``, as with Pyro5's.)
    """
    for name in ("geopyro.servers", "geopyro.utils") + tuple(loggers):
        logging.getLogger(name)
    for ours, theirs in loggers.items():
        parent = ours.rpartition(".")[0]
        logging.getLogger(ours).parent = logging.getLogger(theirs if on else parent or "")


def _pyro4_program():
    """A Pyro4 program imports Pyro4 through the alias: geopyro's loggers hang under Pyro4's instead, which is
    kept off as Pyro4 keeps it (unless PYRO_LOGLEVEL is set)."""
    _log_through_pyro5_loggers(True, PYRO4_LOGGERS)
    _silence_like_pyro5(True, "Pyro4")


_PYRO5_SILENT = 9999  # the level Pyro5 (and Pyro4) give their logger when PYRO_LOGLEVEL is not set
_silenced = set()  # the loggers ("Pyro5", "Pyro4") _silence_like_pyro5 holds at that level


def _silence_like_pyro5(on, name="Pyro5"):
    """Give the "Pyro5" (or ``name``, "Pyro4") logger the level Pyro5 (Pyro4) gives it: off, unless PYRO_LOGLEVEL
    is set.

    A Pyro5 program that configures logging sees none of Pyro5's records unless it
    sets PYRO_LOGLEVEL or the "Pyro5" logger's level itself; under the launcher it
    sees as little of geopyro's. (The level is set before the program runs, so a
    level the program sets, before or after its import of Pyro5, wins. The blocking
    detector's warning still shows, as a BlockingCallWarning.)
    """
    pyro5 = logging.getLogger(name)
    if on and not os.environ.get("PYRO_LOGLEVEL") and pyro5.level == logging.NOTSET:
        pyro5.setLevel(_PYRO5_SILENT)
        _silenced.add(name)
    elif not on and name in _silenced:
        _silenced.discard(name)
        if pyro5.level == _PYRO5_SILENT:  # (a level the program set stays)
            pyro5.setLevel(logging.NOTSET)


def uninstall():
    """Undo ``install`` (for tests): Pyro5's names are forgotten, geopyro's modules stay."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
        _log_through_pyro5_loggers(False)
        _silence_like_pyro5(False)
        _silence_like_pyro5(False, "Pyro4")
    for name in list(sys.modules):
        if _is_aliased(name):
            del sys.modules[name]


# what ``-m`` runs for a module that its own package imports already (runpy would run it a second time)
_MAIN_MODULES = {"Pyro4.naming": "geopyro.compatibility.Pyro4._naming_main"}


def real_module_name(name):
    """geopyro's module for a Pyro5 or Pyro4 module name given to -m (``Pyro5.nameserver`` -> ``geopyro.nameserver``,
    ``Pyro4.naming`` -> the name server of Pyro4's API)."""
    return _MAIN_MODULES.get(name) or ALIASES.get(name, name)


USAGE = "usage: python -m geopyro.run [--patch] (script.py | -m module) [args...]"


def main(argv=None):
    """The launcher: monkey-patch if ``--patch`` is given, install the alias, then run the script or ``-m``
    module with the remaining arguments as its ``sys.argv``; returns the exit code (2 for bad usage)."""
    args = list(sys.argv[1:] if argv is None else argv)
    patch = False
    if args and args[0] == "--patch":
        patch = True
        args.pop(0)
    if not args or args[0] in ("-h", "--help") or args[0] == "-m" and len(args) < 2:
        print(USAGE, file=sys.stderr if args[:1] != ["-h"] and args[:1] != ["--help"] else sys.stdout)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    if patch:
        import gevent
        from gevent import monkey
        monkey.patch_all()
        hub = gevent.get_hub()  # Ctrl-C while the program waits through the hub: raised, as before, not printed
        hub.NOT_ERROR = tuple(hub.NOT_ERROR) + (KeyboardInterrupt,)  # by the hub too (Pyro5's programs print nothing)
    install()
    _pass_to_children()
    if args[0] == "-m":
        module = real_module_name(args[1])
        sys.argv = [args[1]] + args[2:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, _script_directory(args[0]))
        runpy.run_path(args[0], run_name="__main__")
    return 0


def _pass_to_children():
    """Child Pythons of this program (subprocesses, multiprocessing's spawn and forkserver) load geopyro for Pyro5
    and Pyro4 too: the stand-ins of geopyro.inherit go on PYTHONPATH and on sys.path (which spawn hands down).
    Here the alias answers first, so they are never used in this process."""
    import os
    from . import inherit
    sys.path.insert(1, inherit.FOLDER)  # (after the program's own folder, ahead of site-packages)
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = inherit.FOLDER + (os.pathsep + inherited if inherited else "")


def _script_directory(path):
    import os
    return os.path.dirname(os.path.abspath(path))


if __name__ == "__main__":
    sys.exit(main())
