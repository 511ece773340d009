"""The mapping shared by every implementation that offers Pyro5's API (``<package>.api`` and friends).

geopyro exists to present exactly that API, so its adapter and Pyro5's differ only in the
package name and the name of the concurrent server type.
"""

import importlib


def pyro5_api_target(package, concurrent_servertype, serializers, lacks):
    """A Target for ``package``, whose modules mirror Pyro5's (api, core, errors, nameserver)."""
    from . import Target

    top = importlib.import_module(package)
    api = importlib.import_module(package + ".api")
    core = importlib.import_module(package + ".core")
    errors = importlib.import_module(package + ".errors")
    nameserver = importlib.import_module(package + ".nameserver")

    def configure(**items):
        for key, value in items.items():
            setattr(api.config, key, value)

    def start_ns(host):
        uri, daemon, _bc = nameserver.start_ns(host=host, port=0, enableBroadcast=False)
        return uri, daemon

    def serve(objects, daemon, use_ns):
        api.serve(objects, daemon=daemon, use_ns=use_ns, verbose=False)

    return Target(
        version=top.__version__,
        expose=api.expose, oneway=api.oneway, behavior=api.behavior, callback=api.callback,
        Daemon=api.Daemon, DaemonObject=api.DaemonObject, Proxy=api.Proxy, URI=api.URI,
        config=api.config, errors=errors, locate_ns=api.locate_ns, resolve=api.resolve,
        current_context=api.current_context, SerializedBlob=api.SerializedBlob,
        batch=api.BatchProxy, serve=serve, start_ns=start_ns, configure=configure,
        servertypes={"concurrent": concurrent_servertype, "multiplex": "multiplex"},
        serializers=serializers,
        get_pyro_traceback=lambda exc: errors.get_pyro_traceback(type(exc), exc, exc.__traceback__),
        DAEMON_NAME=core.DAEMON_NAME, NAMESERVER_NAME=core.NAMESERVER_NAME,
        server_setup=lambda: None,
        lacks=lacks,
    )
