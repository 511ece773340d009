"""``python -m geopyro.configure``: print the active configuration."""

from . import dump

dump()
