"""Pyro4's core names (``Pyro4.core``) on geopyro: URI, Proxy, Daemon and the decorators.

A Pyro4 proxy is geopyro's Proxy talking Pyro4's protocol (48), so it reaches
Pyro4 daemons and geopyro daemons alike; a Pyro4 daemon is geopyro's Daemon
serving Pyro4 clients (and Pyro5 clients) and accepting only the serializers
in ``config.SERIALIZERS_ACCEPTED``, as Pyro4's does.
"""

from geopyro import client as _client
from geopyro import core as _core
from geopyro import nameserver as _nameserver
from geopyro import pickles as _pickles
from geopyro import protocol48 as _protocol48
from geopyro import serializers as _serializers
from geopyro import server as _server
from geopyro.callcontext import current_context  # noqa: F401
from geopyro.client import SerializedBlob  # noqa: F401
from geopyro.core import URI  # noqa: F401
from geopyro.exposure import behavior, callback, expose, oneway  # noqa: F401
from geopyro.server import DaemonObject  # noqa: F401

from .configuration import config

__all__ = ["URI", "Proxy", "Daemon", "DaemonObject", "callback", "batch", "asyncproxy", "oneway", "expose",
           "behavior", "current_context", "SerializedBlob"]


class Proxy(_client.Proxy):
    """Pyro4's Proxy: ``_pyroAsync``, ``_pyroBatch``, ``_pyroHmacKey``, ``_pyroTimeout``, ``_pyroOneway`` and the
    rest, in protocol 48."""

    def __init__(self, uri, connected_socket=None):
        super().__init__(uri, connected_socket)
        self._pyroProtocol = _protocol48.PROTOCOL_VERSION

    def __setstate__(self, state):
        hmac_key = None
        if len(state) == 9:  # Pyro4's own (a pickled Pyro4 proxy): uri, oneway, methods, attrs, timeout, HMAC key,
            uri, oneway, methods, attrs, _, hmac_key, handshake, _, serializer = state  # handshake, retries, serializer
            state = (str(uri), oneway, methods, attrs, handshake, serializer)  # (timeout, retries: this side's config)
        super().__setstate__(state)
        self._pyroProtocol = _protocol48.PROTOCOL_VERSION
        self._pyroHmacKey = hmac_key


class Daemon(_server.Daemon):
    """Pyro4's Daemon: serves Pyro4 clients on its port (and Pyro5 clients), and only the serializers that
    ``config.SERIALIZERS_ACCEPTED`` named when it was made."""

    _serves_pyro4 = True

    def __init__(self, host=None, port=0, unixsocket=None, nathost=None, natport=None, interface=DaemonObject,
                 connected_socket=None):
        super().__init__(host, port, unixsocket, nathost, natport, interface, connected_socket)
        self._serializers_accepted = frozenset(config.SERIALIZERS_ACCEPTED)
        unsafe = [_pickles.get(name) for name in sorted(self._serializers_accepted) if name in _pickles.NAMES]
        self._unsafe_serializers = {serializer.serializer_id: serializer for serializer in unsafe}

    @staticmethod
    def serveSimple(objects, host=None, port=0, daemon=None, ns=True, verbose=True):
        """Register ``objects`` (a dict of object or class -> name) and run the request loop."""
        if daemon is None:
            daemon = Daemon(host, port)
        _server.serve(objects, host, port, daemon, use_ns=ns, verbose=verbose)


_serializers.register_wire_class(Proxy, "Pyro5.client.Proxy")
_serializers.register_wire_class(Daemon, "Pyro5.server.Daemon")


def batch(proxy):
    """A batch proxy for ``proxy`` (call it to send the batched calls)."""
    return _client.BatchProxy(proxy)


def asyncproxy(proxy, asynchronous=True):
    """Turn ``proxy``'s calls asynchronous (they return a future result), or back."""
    proxy._pyroAsync(asynchronous)


def _locateNS(host=None, port=None, broadcast=True, hmac_key=None):
    """A Pyro4 proxy for the name server, found at host:port, or by broadcast."""
    found = _nameserver.locate_ns(host, port, broadcast, _protocol48.PROTOCOL_VERSION, hmac_key)
    proxy = Proxy(found._pyroUri)
    found._pyroRelease()
    proxy._pyroHmacKey = hmac_key
    proxy.ping()
    return proxy


def _resolve(uri, hmac_key=None):
    """The PYRO uri a PYRONAME or PYROMETA uri stands for (asking the name server in protocol 48)."""
    return _core.resolve(uri, protocol=_protocol48.PROTOCOL_VERSION, hmac_key=hmac_key)
