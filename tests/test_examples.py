"""Every folder in examples/ runs as its Readme says; a folder without an entry here fails the suite."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# folder -> list of (script, text that its output must contain)
RUNS = {
    "eventloop": [
        ("server_selectors.py", ["client: server says tick 3", "did its own work several times"]),
        ("server_gevent.py", ["first tick 2", "second tick 2", "heartbeat greenlet ran meanwhile: yes"]),
    ],
}


def example_folders():
    return sorted(name for name in os.listdir(EXAMPLES) if os.path.isdir(os.path.join(EXAMPLES, name))
                  and not name.startswith((".", "_")))


def test_every_example_folder_is_exercised():
    assert set(example_folders()) == set(RUNS), "add the new example folder to RUNS in tests/test_examples.py"


def test_every_example_folder_has_a_readme():
    for folder in example_folders():
        names = {name.lower() for name in os.listdir(os.path.join(EXAMPLES, folder))}
        assert "readme.md" in names or "readme.txt" in names, folder


@pytest.mark.parametrize("folder,script,expected",
                         [(folder, script, expected) for folder, runs in sorted(RUNS.items())
                          for script, expected in runs])
def test_example_runs(folder, script, expected):
    env = dict(os.environ)
    root = os.path.dirname(EXAMPLES)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, script], cwd=os.path.join(EXAMPLES, folder), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True)
    assert done.returncode == 0, done.stdout
    for text in expected:
        assert text in done.stdout, done.stdout
