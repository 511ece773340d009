"""compat/pyro5_suite.py: it runs each test file on Pyro5 and through geopyro.run, and scores what passes."""

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "compat", "pyro5_suite.py")


def test_report_counts_only_what_passes_on_pyro5_and_runs_geopyro_through_the_alias(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_which.py").write_text(textwrap.dedent("""\
        import Pyro5.core

        def test_both():
            assert Pyro5.core.URI("PYRO:x@h:1").port == 1

        def test_only_on_pyro5():
            assert Pyro5.core.__name__ == "Pyro5.core"

        def test_only_on_geopyro():
            assert Pyro5.core.__name__ == "geopyro.core"

        def test_fails_everywhere():
            assert False
        """))
    (tests / "test_threadpool.py").write_text("def test_left_out():\n    assert False\n")
    done = subprocess.run([sys.executable, SCRIPT, "--workdir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # the baseline is what passes on Pyro5 (2 tests); of those, only test_both passes on geopyro
    assert "1 of 2 baseline tests pass (50.0%)" in out, out
    assert "test_which::test_only_on_pyro5: failed" in out
    assert "test_only_on_geopyro" not in out.split("not passing on geopyro:")[1]
    assert "left out: Pyro5's thread-pool internals" in out
