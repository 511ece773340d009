"""What clients and servers share: URIs, reserved object names, name resolution.

URI forms::

    PYRO:objectid@host:port          a TCP address (IPv6 hosts in brackets)
    PYRO:objectid@./u:sockname       a Unix domain socket
    PYRONAME:name[@host[:port]]      looked up in a name server
    PYROMETA:m1,m2[@host[:port]]     looked up in a name server by metadata
"""

import ipaddress
import logging
import random
import re

from . import config, errors, serializers

__all__ = ["URI", "DAEMON_NAME", "NAMESERVER_NAME", "resolve", "locate_ns", "type_meta"]

log = logging.getLogger("geopyro.core")

DAEMON_NAME = "Pyro.Daemon"
NAMESERVER_NAME = "Pyro.NameServer"
UNIX_PREFIX = "./u:"

_URI_PATTERN = re.compile(r"(?P<protocol>[Pp][Yy][Rr][Oo][a-zA-Z]*):(?P<object>\S+?)(@(?P<location>.+))?$")
_IPV6_LOCATION = re.compile(r"\[([0-9a-fA-F:%.]+)\](:(\d+))?$")
_PROTOCOLS = ("PYRO", "PYRONAME", "PYROMETA")


class URI:
    """A Pyro object address; parse it from a string, compare it, and print it back."""

    __slots__ = ("protocol", "object", "sockname", "host", "port")

    def __init__(self, uri):
        if isinstance(uri, URI):
            self.__setstate__(uri.__getstate__())
            return
        if not isinstance(uri, str):
            raise TypeError("uri must be a str or URI, not %s" % type(uri).__name__)
        self.sockname = self.host = self.port = None
        match = _URI_PATTERN.match(uri)
        if not match:
            raise errors.PyroError("invalid uri %r: expected PROTOCOL:object[@location], e.g. PYRO:obj@host:port"
                                   % uri)
        self.protocol = match.group("protocol").upper()
        self.object = match.group("object")
        location = match.group("location")
        if self.protocol not in _PROTOCOLS:
            raise errors.PyroError("invalid uri %r: unknown protocol %s (use PYRO, PYRONAME or PYROMETA)"
                                   % (uri, self.protocol))
        if self.protocol == "PYRO":
            if not location:
                raise errors.PyroError("invalid uri %r: a PYRO uri needs a location (@host:port or @./u:socket)"
                                       % uri)
            self._parse_location(uri, location, None)
        else:
            if self.protocol == "PYROMETA":
                self.object = {part.strip() for part in self.object.split(",")}
            if location:
                self._parse_location(uri, location, config.NS_PORT)

    def _parse_location(self, uri, location, default_port):
        if location.startswith(UNIX_PREFIX):
            self.sockname = location[len(UNIX_PREFIX):]
            if not self.sockname or ":" in self.sockname:
                raise errors.PyroError("invalid uri %r: bad unix socket name" % uri)
            return
        if location.startswith("["):
            if location.startswith("[["):
                raise errors.PyroError("invalid ipv6 address: enclosed in too many brackets")  # Pyro5's words
            match = _IPV6_LOCATION.match(location)
            if not match:
                raise errors.PyroError("invalid ipv6 address: the part between brackets must be a numeric ipv6 "
                                       "address")  # Pyro5's words
            host, port = match.group(1), match.group(3)
        else:
            host, _, port = location.partition(":")
            if ":" in port:
                raise errors.PyroError("invalid uri %r: put an ipv6 address in brackets, like [::1]:9090" % uri)
        if not host:
            raise errors.PyroError("invalid uri %r: missing host" % uri)
        self.host = host
        if not port:
            if default_port is None:
                raise errors.PyroError("invalid uri %r: missing port" % uri)
            self.port = default_port
            return
        try:
            self.port = int(port)
        except ValueError:
            raise errors.PyroError("invalid uri %r: port %r is not a number" % (uri, port)) from None
        # (a port past 65535 is kept, as Pyro5 keeps it: connecting fails with a CommunicationError)

    @staticmethod
    def isUnixsockLocation(location):
        """True if a location string names a Unix domain socket."""
        return location.startswith(UNIX_PREFIX)

    @property
    def location(self):
        """``host:port``, ``[ipv6]:port``, ``./u:sockname``, or None."""
        if self.host:
            if ":" in self.host:
                return "[%s]:%d" % (self.host, self.port)
            return "%s:%d" % (self.host, self.port)
        if self.sockname:
            return UNIX_PREFIX + self.sockname
        return None

    def __str__(self):
        if self.protocol == "PYROMETA":
            text = "PYROMETA:" + ",".join(sorted(self.object))
        else:
            text = self.protocol + ":" + self.object
        location = self.location
        return text + "@" + location if location else text

    def __repr__(self):
        return "<%s.%s at 0x%x; %s>" % (type(self).__module__, type(self).__name__, id(self), self)

    def __eq__(self, other):
        return isinstance(other, URI) and self.__getstate__() == other.__getstate__()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        state = self.__getstate__()
        if isinstance(state[1], set):
            state = (state[0], frozenset(state[1])) + state[2:]
        return hash(state)

    def __getstate__(self):
        return self.protocol, self.object, self.sockname, self.host, self.port

    def __setstate__(self, state):
        self.protocol, self.object, self.sockname, self.host, self.port = state
        if self.protocol == "PYROMETA" and not isinstance(self.object, set):
            self.object = set(self.object)  # sets arrive as tuples or lists from json/msgpack


serializers.register_wire_class(URI, "Pyro5.core.URI")


class _ExceptionWrapper:
    """Carries an exception inside a batch result list; the receiver re-raises it."""

    def __init__(self, exception):
        self.exception = exception

    def raiseIt(self):
        exc = self.exception
        try:
            raise exc
        finally:
            del exc

    def __getstate__(self):
        return {"exception": self.exception}


def _wrapper_to_dict(wrapper):
    return {"__class__": serializers.pyro_name("Pyro5.core._ExceptionWrapper"),
            "exception": serializers.SerializerBase.class_to_dict(wrapper.exception)}


serializers.SerializerBase.register_class_to_dict(_ExceptionWrapper, _wrapper_to_dict)


def resolve(uri, delay_time=0.0, protocol=None, hmac_key=None):
    """Turn a PYRONAME or PYROMETA uri into the PYRO uri it stands for (asking a name server).

    A PYRO uri is returned as it is. ``delay_time`` is how long to wait for a
    name to appear in the name server. ``protocol`` and ``hmac_key``: how to
    talk to the name server (a proxy resolving its own uri passes its own).
    """
    if isinstance(uri, str):
        uri = URI(uri)
    elif not isinstance(uri, URI):
        raise TypeError("can only resolve Pyro URIs")
    if uri.protocol == "PYRO":
        return uri
    log.debug("resolving %s", uri)
    from . import nameserver
    with nameserver.locate_ns(uri.host, uri.port, protocol=protocol, hmac_key=hmac_key) as ns:
        if uri.protocol == "PYRONAME":
            return nameserver.lookup(ns, uri.object, delay_time=delay_time)
        if protocol == 48:  # (Pyro4's name servers have no yplookup)
            candidates = ns.list(metadata_all=uri.object)
        else:
            candidates = nameserver.yplookup(ns, uri.object, None, False, delay_time=delay_time)
        if candidates:
            return URI(random.choice(list(candidates.values())))
        raise errors.NamingError("no registrations available with desired metadata properties %s"
                                 % sorted(uri.object))


def locate_ns(host=None, port=None, broadcast=True):
    """A proxy for a name server: at ``host``/``port`` if given, else found by broadcast or at NS_HOST."""
    from . import nameserver
    return nameserver.locate_ns(host, port, broadcast)


def type_meta(class_or_object, prefix="class:"):
    """Name-server metadata describing a class and its bases (``class:module.Name``)."""
    if hasattr(class_or_object, "__mro__"):
        return {prefix + c.__module__ + "." + c.__name__
                for c in class_or_object.__mro__ if c.__module__ not in ("builtins", "__builtin__")}
    if hasattr(class_or_object, "__class__"):
        return type_meta(class_or_object.__class__)
    return frozenset()


def host_for_uri(host):
    """A host string as it appears inside a URI (IPv6 addresses go in brackets)."""
    host = str(host)
    try:
        if ipaddress.ip_address(host.split("%")[0]).version == 6:
            return "[%s]" % host
    except ValueError:
        pass
    return host
