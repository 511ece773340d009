"""Pyro4's socket utilities (``Pyro4.socketutil``) under their Pyro4 names."""

import socket as _socket

from geopyro import socketutil as _socketutil
from geopyro.socketutil import SocketConnection  # noqa: F401


def getIpAddress(hostname, workaround127=False, ipVersion=None):
    """The IP address of ``hostname`` as a string (with ``workaround127``, a real interface's instead of 127.x)."""
    return str(_socketutil.get_ip_address(hostname, workaround127, ipVersion))


def getInterfaceAddress(ip_address):
    """The address (a string) of the interface that would be used to reach ``ip_address``."""
    return str(_socketutil.get_interface(ip_address).ip)


def getIpVersion(hostnameOrAddress):
    """4 or 6: the IP version of a host name or address."""
    return 6 if ":" in str(getIpAddress(hostnameOrAddress)) else 4


def createSocket(bind=None, connect=None, reuseaddr=False, keepalive=True, timeout=-1, noinherit=False,
                 ipv6=False, nodelay=True, sslContext=None):
    """A TCP (or Unix domain) socket, bound or connected."""
    return _socketutil.create_socket(bind, connect, reuseaddr, keepalive, timeout, noinherit, ipv6, nodelay,
                                     sslContext)


def createBroadcastSocket(bind=None, reuseaddr=False, timeout=-1, ipv6=False):
    """A UDP socket for broadcasts."""
    return _socketutil.create_bc_socket(bind, reuseaddr, timeout, ipv6)


def findProbablyUnusedPort(family=_socket.AF_INET, socktype=_socket.SOCK_STREAM):
    """A port number that was free a moment ago."""
    return _socketutil.find_probably_unused_port(family, socktype)
