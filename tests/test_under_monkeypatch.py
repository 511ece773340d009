"""The Daemon/Proxy behaviour tests again, in a program that called gevent.monkey.patch_all() first.

Each module runs in its own subprocess (patching must happen before anything
else is imported); there, the daemons' "threads" are greenlets of one hub.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

MODULES = [
    "test_smoke.py", "test_daemon.py", "test_proxy.py", "test_exposure.py", "test_instance_modes.py",
    "test_streaming.py", "test_oneway_batch_async.py", "test_callcontext_server.py", "test_multiplex.py",
]

RUNNER = """
from gevent import monkey
monkey.patch_all()
import sys
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "timeout=60", "-o", "timeout_method=signal",
                      sys.argv[1]]))
"""


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_when_monkeypatched(module):
    done = subprocess.run([sys.executable, "-c", RUNNER, os.path.join(HERE, module)], cwd=os.path.dirname(HERE),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-6000:]
    assert " passed" in done.stdout
