"""Pyro4's constants."""

VERSION = "4.82"  # the Pyro4 version whose API this package offers

DAEMON_NAME = "Pyro.Daemon"
NAMESERVER_NAME = "Pyro.NameServer"
FLAME_NAME = "Pyro.Flame"
PROTOCOL_VERSION = 48
