"""Stand-ins for the Pyro5 and Pyro4 packages in the child processes of a program run by ``geopyro.run``.

The launcher puts this folder on ``PYTHONPATH`` (and on its own ``sys.path``,
which multiprocessing's spawn and forkserver hand to their children), so a
child Python that imports Pyro5 or Pyro4 finds a stand-in first
(``Pyro5/__init__.py`` here), which installs geopyro's alias in that process
too and becomes geopyro. A child interpreter without geopyro gets the real
package, if it has one (``_geopyro_standin``).
"""

import os

FOLDER = os.path.dirname(os.path.abspath(__file__))
