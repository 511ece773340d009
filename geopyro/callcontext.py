"""The context of the call being handled (server side) or made (client side).

It is greenlet-local, and therefore also thread-local: every connection's
greenlet sees its own client, sequence number and annotations.
"""

import uuid

import gevent.local

from . import errors


class _CallContext(gevent.local.local):
    """Per-greenlet state of the current call."""

    def __init__(self):
        self.client = None
        self.client_sock_addr = None
        self.seq = 0
        self.msg_flags = 0
        self.serializer_id = 0
        self.annotations = {}
        self.response_annotations = {}
        self._correlation = None  # a uuid.UUID, its 16 bytes (made into a UUID when read), or None

    @property
    def correlation_id(self):
        """The uuid.UUID that labels the current call (None when there is none)."""
        value = self._correlation
        if value.__class__ is bytes and len(value) == 16:
            value = self._correlation = uuid.UUID(bytes=value)
        return value

    @correlation_id.setter
    def correlation_id(self, value):
        self._correlation = value

    def correlation_bytes(self):
        """The correlation id as the 16 bytes that go on the wire, or None (no UUID object is made)."""
        value = self._correlation
        if value is None or value.__class__ is bytes:
            return value
        return value.bytes

    def reset(self):
        """Forget the call (a pool thread does this after each task, so no client is kept alive by it)."""
        self.__init__()

    def to_global(self):
        """The values as a dict, to carry them into another greenlet or thread."""
        return {name: getattr(self, name) for name in (
            "client", "client_sock_addr", "seq", "msg_flags", "serializer_id",
            "annotations", "response_annotations", "correlation_id")}

    def from_global(self, values):
        """Restore values captured with ``to_global``."""
        for name, value in values.items():
            setattr(self, name, value)

    def track_resource(self, resource):
        """Tie a resource to the current connection: it is closed when the client disconnects."""
        if self.client is None:
            raise errors.PyroError("cannot track resource on a connectionless call")
        self.client.tracked_resources.add(resource)

    def untrack_resource(self, resource):
        """Stop tracking a resource for the current connection."""
        if self.client is None:
            raise errors.PyroError("cannot untrack resource on a connectionless call")
        self.client.tracked_resources.discard(resource)


current_context = _CallContext()
