"""Adapter for geopyro (Pyro5's API and wire on gevent).

The only module of the conformance package that imports geopyro.
"""

NAME = "geopyro"
PIP_PACKAGE = "geopyro"
IMPORT_NAME = "geopyro"
WIRE = "pyro-502"
SERIALIZERS = ["serpent", "json", "marshal", "msgpack"]
LACKS = {}


def prepare_server_process():
    """Called in a server subprocess before the implementation is imported."""
    # A gevent server program patches the standard library first, so that blocking
    # calls inside remote methods (time.sleep, threading.Event.wait) yield to other calls.
    from gevent import monkey
    monkey.patch_all()


def load():
    import geopyro
    import geopyro.api as api
    import geopyro.core
    import geopyro.errors
    import geopyro.nameserver
    from . import Target

    def configure(**items):
        for key, value in items.items():
            setattr(api.config, key, value)

    def start_ns(host):
        uri, daemon, _bc = geopyro.nameserver.start_ns(host=host, port=0, enableBroadcast=False)
        return uri, daemon

    def serve(objects, daemon, use_ns):
        api.serve(objects, daemon=daemon, use_ns=use_ns, verbose=False)

    return Target(
        version=geopyro.__version__,
        expose=api.expose, oneway=api.oneway, behavior=api.behavior, callback=api.callback,
        Daemon=api.Daemon, DaemonObject=api.DaemonObject, Proxy=api.Proxy, URI=api.URI,
        config=api.config, errors=geopyro.errors, locate_ns=api.locate_ns, resolve=api.resolve,
        current_context=api.current_context, SerializedBlob=api.SerializedBlob,
        batch=api.BatchProxy, serve=serve, start_ns=start_ns, configure=configure,
        servertypes={"concurrent": "greenlet", "multiplex": "multiplex"},
        serializers=SERIALIZERS,
        get_pyro_traceback=lambda exc: geopyro.errors.get_pyro_traceback(type(exc), exc, exc.__traceback__),
        DAEMON_NAME=getattr(geopyro.core, "DAEMON_NAME", "Pyro.Daemon"),
        NAMESERVER_NAME=getattr(geopyro.core, "NAMESERVER_NAME", "Pyro.NameServer"),
        server_setup=lambda: None,
        lacks=LACKS,
    )
