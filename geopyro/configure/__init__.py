"""Global configuration: every Pyro5 config item, with Pyro5's defaults.

One object, ``geopyro.config``, holds the settings. Daemons and proxies read it
when they are made. Environment variables ``PYRO_<ITEM>`` override defaults at
import time and on ``reset()``, the same convention as Pyro5.

As in Pyro5, an item takes any value; it is checked where it is used (a bad
SERVERTYPE fails in ``Daemon()``, say). Only unknown item names are refused
at once. A number given where a float is expected is stored as a float, and
0 or 1 where a bool is expected as a bool.

Run ``python -m geopyro.configure`` to print the active configuration.
"""

import difflib
import os
import platform

from .. import __version__, _logfile, _loglevel

ENV_PREFIX = "PYRO_"

# name -> (default, accepted kinds). A kind of None means "None is allowed".
_DEFAULTS = {
    "HOST": ("localhost", (str,)),
    "NS_HOST": ("localhost", (str,)),
    "NS_PORT": (9090, (int,)),
    "NS_BCPORT": (9091, (int,)),
    "NS_BCHOST": (None, (str, None)),
    "NS_AUTOCLEAN": (0.0, (float,)),
    "NS_LOOKUP_DELAY": (0.0, (float,)),
    "NATHOST": (None, (str, None)),
    "NATPORT": (0, (int,)),
    "COMPRESSION": (False, (bool,)),
    # geopyro's default is the greenlet server; "thread" is the greenlet server with every call on a thread.
    "SERVERTYPE": ("greenlet", (str,)),
    "COMMTIMEOUT": (0.0, (float,)),
    "POLLTIMEOUT": (2.0, (float,)),
    "MAX_RETRIES": (0, (int,)),
    "SOCK_REUSE": (True, (bool,)),
    "SOCK_NODELAY": (False, (bool,)),
    "DETAILED_TRACEBACK": (False, (bool,)),
    "THREADPOOL_SIZE": (80, (int,)),
    "THREADPOOL_SIZE_MIN": (4, (int,)),
    "MAX_MESSAGE_SIZE": (1024 * 1024 * 1024, (int,)),
    "BROADCAST_ADDRS": (["<broadcast>", "0.0.0.0"], (list,)),
    "PREFER_IP_VERSION": (0, (int,)),
    "SERIALIZER": ("serpent", (str,)),
    "SERPENT_BYTES_REPR": (False, (bool,)),
    "ITER_STREAMING": (True, (bool,)),
    "ITER_STREAM_LIFETIME": (0.0, (float,)),
    "ITER_STREAM_LINGER": (30.0, (float,)),
    "LOGFILE": (_logfile, (str, None)),
    "LOGLEVEL": (_loglevel, (str, None)),
    "LOGWIRE": (False, (bool,)),
    "SSL": (False, (bool,)),
    "SSL_SERVERCERT": ("", (str,)),
    "SSL_SERVERKEY": ("", (str,)),
    "SSL_SERVERKEYPASSWD": ("", (str,)),
    "SSL_REQUIRECLIENTCERT": (False, (bool,)),
    "SSL_CLIENTCERT": ("", (str,)),
    "SSL_CLIENTKEY": ("", (str,)),
    "SSL_CLIENTKEYPASSWD": ("", (str,)),
    "SSL_CACERTS": ("", (str,)),
    # Pyro4's item, honoured by geopyro: run oneway calls in their own greenlet.
    "ONEWAY_THREADED": (True, (bool,)),
    # geopyro only: refuse connections beyond this many per daemon (0 = no limit).
    "MAX_CONNECTIONS": (0, (int,)),
    # geopyro only: where calls run: "auto" (inline when the program is monkey-patched, else on
    # a thread pool of THREADPOOL_SIZE), "inline" (in the connection's greenlet) or "thread".
    "CALL_EXECUTION": ("auto", (str,)),
    # geopyro only: warn when an inline call blocks the event loop longer than this (seconds; 0 = off).
    "BLOCKING_WARNING": (0.1, (float,)),
    # geopyro only: a daemon also serves Pyro4 clients (protocol 48) on its port; False turns that off.
    "ACCEPT_PYRO4": (True, (bool,)),
    # geopyro only: the protocol proxies speak: 502 (Pyro5 and geopyro servers) or 48 (Pyro4 servers);
    # one proxy can differ with proxy._pyroProtocol.
    "CLIENT_PROTOCOL": (502, (int,)),
}

_TRUE = ("1", "yes", "on", "true")
_FALSE = ("0", "no", "off", "false")


# Pyro4's items that Pyro5 dropped: their PYRO_* variables belong to geopyro.compatibility.Pyro4's config
PYRO4_ONLY_ITEMS = frozenset(("SERIALIZERS_ACCEPTED", "METADATA", "REQUIRE_EXPOSE", "AUTOPROXY", "FLAME_ENABLED",
                              "PICKLE_PROTOCOL_VERSION", "DILL_PROTOCOL_VERSION", "JSON_MODULE", "USE_MSG_WAITALL"))


class UnknownConfigItem(AttributeError, ValueError):
    """Assigning an item Pyro5 does not know: an AttributeError, as in Pyro5 (and a ValueError, as geopyro
    said before)."""


def _unknown_item(name):
    close = difflib.get_close_matches(name, _DEFAULTS, n=1)
    hint = " (did you mean %s?)" % close[0] if close else ""
    return "unknown config item %r%s" % (name, hint)


def _coerce(name, value):
    """The value as stored: the harmless conversions to the item's kind (int -> float, 0/1 -> bool), any
    other value as it is (Pyro5 stores whatever it is given)."""
    kinds = _DEFAULTS[name][1]
    if bool in kinds:
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
    elif float in kinds:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    elif list in kinds:
        if isinstance(value, tuple):
            return list(value)
    return value


def _parse_env(name, text):
    """Turn an environment variable's text into a value of the item's kind."""
    kinds = _DEFAULTS[name][1]
    if None in kinds and text == "":
        return None
    if bool in kinds:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("bad boolean for %s%s: %r (use one of %s)"
                         % (ENV_PREFIX, name, text, ", ".join(_TRUE + _FALSE)))
    if list in kinds:
        return [part.strip() for part in text.split(",")]
    for kind in (float, int):
        if kind in kinds:
            try:
                return kind(text)
            except ValueError:
                raise ValueError("bad %s for %s%s: %r" % (kind.__name__, ENV_PREFIX, name, text)) from None
    return text


class Configuration:
    """The set of config items. Assigning an unknown item raises UnknownConfigItem."""

    __slots__ = tuple(_DEFAULTS)

    def __init__(self):
        self.reset()

    def __setattr__(self, name, value):
        if name not in _DEFAULTS:
            raise UnknownConfigItem(_unknown_item(name))
        object.__setattr__(self, name, _coerce(name, value))

    def reset(self, use_environment=True):
        """Back to the defaults; then apply PYRO_* environment variables unless told not to."""
        for name, (default, _) in _DEFAULTS.items():
            setattr(self, name, list(default) if isinstance(default, list) else default)
        if use_environment:
            for key, text in os.environ.items():
                if not key.startswith(ENV_PREFIX):
                    continue
                name = key[len(ENV_PREFIX):]
                if name in PYRO4_ONLY_ITEMS:
                    continue  # read by Pyro4's API on geopyro (geopyro.compatibility.Pyro4.config)
                if name not in _DEFAULTS:
                    raise UnknownConfigItem("environment variable %s: %s" % (key, _unknown_item(name)))
                setattr(self, name, _parse_env(name, text))

    def copy(self):
        """An independent copy of these settings."""
        other = object.__new__(Configuration)
        for name in _DEFAULTS:
            value = getattr(self, name)
            object.__setattr__(other, name, list(value) if isinstance(value, list) else value)
        return other

    def as_dict(self):
        """The settings as a plain dict."""
        return {name: getattr(self, name) for name in _DEFAULTS}

    def dump(self):
        """Human-readable diagnostics: versions and every setting."""
        from ..protocol import PROTOCOL_VERSION
        lines = [
            "geopyro version: %s" % __version__,
            "Loaded from: %s" % os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            "Python version: %s %s (%s, %s)" % (platform.python_implementation(), platform.python_version(),
                                                platform.system(), os.name),
            "Protocol version: %d" % PROTOCOL_VERSION,
            "Currently active global configuration settings:",
        ]
        lines.extend("%s = %s" % (name, value) for name, value in sorted(self.as_dict().items()))
        return "\n".join(lines)


global_config = Configuration()


def dump():
    """Print the active configuration (the ``python -m geopyro.configure`` entry point)."""
    print(global_config.dump())

