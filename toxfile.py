"""tox inline plugin: let tox find the interpreters pyenv keeps outside PATH.

pyenv installs every Python under ``~/.pyenv/versions/<version>/bin``; only
one of them is usually on PATH. Putting all of them on PATH before tox looks
for interpreters lets py39 ... py313 resolve, and tox's
``skip_missing_interpreters`` skips the ones a machine does not have.
"""

import glob
import os

_roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
_found = []
for _root in filter(None, _roots):
    _found.extend(sorted(glob.glob(os.path.join(_root, "versions", "*", "bin")), reverse=True))
if _found:
    os.environ["PATH"] = os.pathsep.join(_found + [os.environ.get("PATH", "")])
