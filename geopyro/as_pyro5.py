"""``import geopyro.as_pyro5`` as a program's first import: from then on ``import Pyro5...`` loads geopyro.

The in-code form of ``python -m geopyro.run``; see geopyro.run.
"""

from .run import install

install()
