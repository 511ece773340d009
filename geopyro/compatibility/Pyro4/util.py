"""Pyro4's utilities (``Pyro4.util``): tracebacks and the serializers by Pyro4's names and ids."""

from geopyro import pickles as _pickles
from geopyro import protocol48 as _protocol48
from geopyro import serializers as _serializers
from geopyro.errors import excepthook  # noqa: F401
from geopyro.errors import format_traceback as formatTraceback  # noqa: F401
from geopyro.errors import get_pyro_traceback as getPyroTraceback  # noqa: F401
from geopyro.serializers import SerializerBase, all_exceptions  # noqa: F401


def get_serializer(name):
    """The serializer ``name`` as Pyro4 clients and servers use it."""
    return _serializers.get_pyro4_serializer(name)


def get_serializer_by_id(sid):
    """The serializer with Pyro4's id ``sid`` (pickle's too)."""
    serializer_id = _protocol48.serializer_id_from_48(sid)
    return _pickles.by_id(serializer_id) or _serializers.get_serializer_by_id(serializer_id)
