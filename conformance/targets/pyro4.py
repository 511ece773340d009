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
        # Pyro4 accepts only serpent/marshal/json unless told otherwise; accept every
        # serializer this adapter advertises so each one can be checked.
        Pyro4.config.SERIALIZERS_ACCEPTED = set(SERIALIZERS)

    return Target(
        version=Pyro4.__version__,
        expose=Pyro4.expose, oneway=Pyro4.oneway, behavior=Pyro4.behavior, callback=Pyro4.callback,
        Daemon=Pyro4.Daemon, DaemonObject=Pyro4.core.DaemonObject, Proxy=Pyro4.Proxy, URI=Pyro4.URI,
        config=Pyro4.config, errors=Pyro4.errors, locate_ns=Pyro4.locateNS, resolve=Pyro4.core._resolve,
        current_context=Pyro4.current_context, SerializedBlob=Pyro4.core.SerializedBlob,
        batch=Pyro4.batch, serve=serve, start_ns=start_ns, configure=configure,
        servertypes={"concurrent": "thread", "multiplex": "multiplex"},
        serializers=SERIALIZERS,
        get_pyro_traceback=lambda exc: Pyro4.util.getPyroTraceback(type(exc), exc, exc.__traceback__),
        DAEMON_NAME=Pyro4.constants.DAEMON_NAME, NAMESERVER_NAME=Pyro4.constants.NAMESERVER_NAME,
        server_setup=server_setup,
        lacks=LACKS,
    )
