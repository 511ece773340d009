"""Adapter for Pyro5 (the reference implementation of protocol 502)."""

NAME = "pyro5"
PIP_PACKAGE = "Pyro5"
IMPORT_NAME = "Pyro5"
WIRE = "pyro-502"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {}


def load():
    import Pyro5
    import Pyro5.api as api
    import Pyro5.core
    import Pyro5.errors
    import Pyro5.nameserver
    import Pyro5.server
    from . import Target

    def configure(**items):
        for key, value in items.items():
            setattr(api.config, key, value)

    def start_ns(host):
        uri, daemon, _bc = Pyro5.nameserver.start_ns(host=host, port=0, enableBroadcast=False)
        return uri, daemon

    def serve(objects, daemon, use_ns):
        api.serve(objects, daemon=daemon, use_ns=use_ns, verbose=False)

    return Target(
        version=Pyro5.__version__,
        expose=api.expose, oneway=api.oneway, behavior=api.behavior, callback=api.callback,
        Daemon=api.Daemon, DaemonObject=api.DaemonObject, Proxy=api.Proxy, URI=api.URI,
        config=api.config, errors=Pyro5.errors, locate_ns=api.locate_ns, resolve=api.resolve,
        current_context=api.current_context, SerializedBlob=api.SerializedBlob,
        batch=api.BatchProxy, serve=serve, start_ns=start_ns, configure=configure,
        servertypes={"concurrent": "thread", "multiplex": "multiplex"},
        serializers=SERIALIZERS,
        get_pyro_traceback=lambda exc: Pyro5.errors.get_pyro_traceback(type(exc), exc, exc.__traceback__),
        DAEMON_NAME=Pyro5.core.DAEMON_NAME, NAMESERVER_NAME=Pyro5.core.NAMESERVER_NAME,
        server_setup=lambda: None,
        lacks=LACKS,
    )
