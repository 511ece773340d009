"""Pyro4's exception classes: geopyro's own (the same names, the same hierarchy)."""

from geopyro.errors import (CommunicationError, ConnectionClosedError, DaemonError, MessageTooLargeError,  # noqa: F401
                            NamingError, ProtocolError, PyroError, SecurityError, SerializeError, TimeoutError)
