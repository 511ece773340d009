"""Adapter for geopyro's Pyro4 API (``geopyro.compatibility.Pyro4``): Pyro4's names and wire (protocol 48),
so it pairs with the real Pyro4 in both directions."""

import os

NAME = "geopyro4"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro4"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {
    "weak_register": "Pyro4's Daemon.register(obj, objectId, force) has no weak parameter",
    "methodcall_error_handler": "Pyro4's Daemon has no methodcall_error_handler hook (added in Pyro5)",
}


def prepare_server_process():
    """As for geopyro: ``--execution`` says where calls run (see conformance/targets/geopyro.py)."""
    execution = os.environ.get("CONFORMANCE_EXECUTION", "auto")
    if execution == "inline":
        from gevent import monkey
        monkey.patch_all()
    if execution != "auto":
        os.environ["PYRO_CALL_EXECUTION"] = execution


def load():
    from geopyro.compatibility import Pyro4

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
        Pyro4.config.SERIALIZERS_ACCEPTED = set(SERIALIZERS)  # (as the pyro4 adapter does: check every one)

    return Target(
        version=Pyro4.__version__ + " (geopyro)",
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
