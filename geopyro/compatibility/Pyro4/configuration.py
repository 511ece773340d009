"""Pyro4's configuration object.

Items Pyro4 shares with Pyro5 are geopyro's own configuration items, read and
written through (so ``Pyro4.config.SERIALIZER = "json"`` is what every proxy
uses); their defaults are geopyro's. Items only Pyro4 has are kept here, with
Pyro4's defaults and its ``PYRO_*`` environment variables; the ones geopyro
cannot honour other than at their default refuse other values, and
``JSON_MODULE`` and ``USE_MSG_WAITALL`` are kept but change nothing.
"""

import logging
import os
import pickle

from geopyro import config as _geopyro_config
from geopyro.configure import PYRO4_ONLY_ITEMS

log = logging.getLogger("geopyro.compatibility.Pyro4")

# Pyro4's items that Pyro5 dropped, with Pyro4's defaults
_PYRO4_ONLY = {
    "SERIALIZERS_ACCEPTED": "serpent,marshal,json",  # (a set once read; the serializers a daemon accepts)
    "METADATA": True,  # a proxy asks for the object's metadata when it connects
    "REQUIRE_EXPOSE": True,
    "AUTOPROXY": True,
    "FLAME_ENABLED": False,
    "PICKLE_PROTOCOL_VERSION": pickle.HIGHEST_PROTOCOL,
    "DILL_PROTOCOL_VERSION": -1,
    "JSON_MODULE": "json",
    "USE_MSG_WAITALL": True,
}
# Pyro4 items geopyro supports only at their default, and why
_ONLY_DEFAULT = {
    "METADATA": "a proxy always learns the object's methods when it connects, as in Pyro5",
    "REQUIRE_EXPOSE": "members must be marked with @expose, as in Pyro5",
    "AUTOPROXY": "registered objects always travel as proxies, as in Pyro5",
    "FLAME_ENABLED": "geopyro has no Flame (remote module and code execution)",
}
assert set(_PYRO4_ONLY) == PYRO4_ONLY_ITEMS  # (geopyro's own config leaves their PYRO_* variables to this one)
_SHARED = ("HOST", "NS_HOST", "NS_PORT", "NS_BCPORT", "NS_BCHOST", "NS_AUTOCLEAN", "NATHOST", "NATPORT",
           "COMPRESSION", "SERVERTYPE", "COMMTIMEOUT", "POLLTIMEOUT", "SOCK_REUSE", "SOCK_NODELAY", "ONEWAY_THREADED",
           "DETAILED_TRACEBACK", "THREADPOOL_SIZE", "THREADPOOL_SIZE_MIN", "MAX_MESSAGE_SIZE", "BROADCAST_ADDRS",
           "PREFER_IP_VERSION", "SERIALIZER", "LOGWIRE", "MAX_RETRIES", "ITER_STREAMING", "ITER_STREAM_LIFETIME",
           "ITER_STREAM_LINGER", "SSL", "SSL_SERVERCERT", "SSL_SERVERKEY", "SSL_SERVERKEYPASSWD",
           "SSL_REQUIRECLIENTCERT", "SSL_CLIENTCERT", "SSL_CLIENTKEY", "SSL_CLIENTKEYPASSWD", "SSL_CACERTS")


class Configuration:
    """Pyro4's ``config``: attribute access to the items, ``reset()``, ``asDict()``, ``dump()``."""

    __slots__ = tuple(_PYRO4_ONLY)

    def __init__(self):
        self._reset_own(useenvironment=True)  # (geopyro's items keep what the program set before this import)

    def __getattr__(self, name):
        if name in _SHARED:
            return getattr(_geopyro_config, name)
        raise AttributeError("no config item %r" % name)

    def __setattr__(self, name, value):
        if name in _SHARED:
            setattr(_geopyro_config, name, value)
        elif name in _PYRO4_ONLY:
            if name in _ONLY_DEFAULT and value != _PYRO4_ONLY[name]:
                raise ValueError("%s = %r is not supported by geopyro: %s" % (name, value, _ONLY_DEFAULT[name]))
            object.__setattr__(self, name, value)
        else:
            raise AttributeError("no config item %r" % name)

    def reset(self, useenvironment=True):
        """Pyro4's defaults for its own items (and geopyro's for the shared ones), then PYRO_* variables."""
        _geopyro_config.reset(use_environment=useenvironment)
        self._reset_own(useenvironment)

    def _reset_own(self, useenvironment):
        for name, default in _PYRO4_ONLY.items():
            value = os.environ.get("PYRO_" + name) if useenvironment else None
            if value is not None and isinstance(default, bool):
                value = value.lower() in ("1", "yes", "true", "on")
            elif value is not None and not isinstance(default, str):
                value = type(default)(value)
            if value is not None and name in _ONLY_DEFAULT and value != default:
                log.warning("PYRO_%s is ignored: %s = %r is not supported by geopyro: %s", name, name, value,
                            _ONLY_DEFAULT[name])
                value = None
            object.__setattr__(self, name, default if value is None else value)
        accepted = self.SERIALIZERS_ACCEPTED
        if isinstance(accepted, str):
            object.__setattr__(self, "SERIALIZERS_ACCEPTED", {item.strip() for item in accepted.split(",")})

    def asDict(self):
        """Every item, shared and Pyro4-only, as a dict of name -> current value."""
        result = {name: getattr(self, name) for name in _SHARED}
        result.update((name, getattr(self, name)) for name in _PYRO4_ONLY)
        return result

    def parseAddressesString(self, addresses):
        """A comma separated list of addresses as a list ("''" stands for the empty address)."""
        result = []
        for address in addresses.split(","):
            address = address.strip()
            result.append("" if address == "''" else address)
        return result

    def dump(self):
        """The configuration as text: a version line, then one ``NAME = value`` line per item, sorted by name."""
        from . import constants
        lines = ["Pyro version: %s (Pyro4's API on geopyro)" % constants.VERSION, "Active configuration settings:"]
        lines += ["%s = %s" % item for item in sorted(self.asDict().items())]
        return "\n".join(lines)


config = Configuration()
