"""Pyro4's name server functions (``Pyro4.naming``): geopyro's name server, serving Pyro4 clients too."""

from geopyro import nameserver as _nameserver
from geopyro.core import type_meta  # noqa: F401
from geopyro.nameserver import BroadcastServer, NameServer  # noqa: F401

from .core import _locateNS as locateNS  # noqa: F401
from .core import _resolve as resolve  # noqa: F401


class NameServerDaemon(_nameserver.NameServerDaemon):
    """The name server's daemon, answering Pyro4 and Pyro5 clients."""

    _serves_pyro4 = True


def startNS(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None, unixsocket=None, nathost=None,
            natport=None, storage=None, hmac=None):
    """Make a name server (not yet serving): (uri, daemon, broadcast server or None)."""
    uri, daemon, bcserver = _nameserver.start_ns(host, port, enableBroadcast, bchost, bcport, unixsocket, nathost,
                                                 natport, storage)
    daemon._serves_pyro4 = True
    daemon._pyroHmacKey = hmac
    return uri, daemon, bcserver


def startNSloop(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None, unixsocket=None, nathost=None,
                natport=None, storage=None, hmac=None):
    """Run a name server until interrupted."""
    uri, daemon, bcserver = startNS(host, port, enableBroadcast, bchost, bcport, unixsocket, nathost, natport,
                                    storage, hmac)
    print("NS running on %s (%s)" % (daemon.locationStr, daemon.sock.getsockname()[0]))
    print("URI = %s" % uri, flush=True)
    try:
        daemon.requestLoop()
    finally:
        daemon.close()
        if bcserver is not None:
            bcserver.close()


def main(args=None):
    """``python -m Pyro4.naming`` (through geopyro.run): geopyro's name server, answering Pyro4 clients too."""
    from geopyro import config as geopyro_config
    geopyro_config.ACCEPT_PYRO4 = True  # (this process is the name server's: even with PYRO_ACCEPT_PYRO4=false)
    return _nameserver.main(args)

