"""The mapping shared by the implementations that offer Pyro4's API (Pyro4 itself, geopyro's
``geopyro.compatibility.Pyro4``): the same names, so one function maps both."""

import importlib.util

LACKS = {  # (what Pyro4's API has not, whoever implements it)
    "weak_register": "Pyro4's Daemon.register(obj, objectId, force) has no weak parameter",
    "methodcall_error_handler": "Pyro4's Daemon has no methodcall_error_handler hook (added in Pyro5)",
}


def serializers_of(who):
    """(SERIALIZERS, SERIALIZER_NOTES) of a Pyro4 API: the four safe ones and pickle, and dill and cloudpickle
    where their packages are installed (a note says so where not)."""
    names = ["serpent", "json", "marshal", "msgpack", "pickle"] + [
        name for name in ("dill", "cloudpickle") if importlib.util.find_spec(name) is not None]
    notes = {name: "%s can use %s, but the %s package is not installed" % (who, name, name)
             for name in ("dill", "cloudpickle") if name not in names}
    return names, notes


def pyro4_api_target(Pyro4, serializers, lacks, concurrent_servertype, version=None):
    """A Target for a module offering Pyro4's API (``Pyro4``, with its core, naming, util and constants)."""
    from . import Target

    def configure(**items):
        for key, value in items.items():
            setattr(Pyro4.config, key, value)

    def start_ns(host):
        uri, daemon, _bc = Pyro4.naming.startNS(host=host, port=0, enableBroadcast=False)
        return uri, daemon

    def serve(objects, daemon, use_ns):
        Pyro4.core.Daemon.serveSimple(objects, daemon=daemon, ns=use_ns, verbose=False)

    def server_setup():
        # a Pyro4 daemon accepts only serpent/marshal/json unless told otherwise; accept every
        # serializer the adapter advertises so each one can be checked.
        Pyro4.config.SERIALIZERS_ACCEPTED = set(serializers)

    return Target(
        version=version or Pyro4.__version__,
        expose=Pyro4.expose, oneway=Pyro4.oneway, behavior=Pyro4.behavior, callback=Pyro4.callback,
        Daemon=Pyro4.Daemon, DaemonObject=Pyro4.core.DaemonObject, Proxy=Pyro4.Proxy, URI=Pyro4.URI,
        config=Pyro4.config, errors=Pyro4.errors, locate_ns=Pyro4.locateNS, resolve=Pyro4.core._resolve,
        current_context=Pyro4.current_context, SerializedBlob=Pyro4.core.SerializedBlob,
        batch=Pyro4.batch, serve=serve, start_ns=start_ns, configure=configure,
        servertypes={"concurrent": concurrent_servertype, "multiplex": "multiplex"},
        serializers=serializers,
        get_pyro_traceback=lambda exc: Pyro4.util.getPyroTraceback(type(exc), exc, exc.__traceback__),
        DAEMON_NAME=Pyro4.constants.DAEMON_NAME, NAMESERVER_NAME=Pyro4.constants.NAMESERVER_NAME,
        server_setup=server_setup,
        lacks=lacks,
    )
