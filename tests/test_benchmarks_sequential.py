"""The sequential benchmark runs end to end, and its floor server speaks real Pyro (no timing judged here)."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("Pyro5", reason="the benchmarks compare against Pyro5")
pytest.importorskip("msgpack", reason="the benchmark rows use serpent and msgpack")

from benchmarks import sequential  # noqa: E402
from benchmarks.floor import FloorClient  # noqa: E402

NUMBERS = ("calls_per_s", "vs_baseline", "client_us_per_call", "server_us_per_call")


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.timeout(90)
def test_smoke_run_has_every_row_with_positive_numbers(tmp_path):
    out = tmp_path / "sequential.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.sequential", "--smoke", "--json", str(out),
                           "--output", str(tmp_path)], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=80)
    assert proc.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "round 1/1" in proc.stderr  # progress goes to stderr
    modes = ["pinned", "unpinned"] if len(os.sched_getaffinity(0)) >= 2 else ["unpinned"]
    with open(out) as f:
        results = json.load(f)["results"]
    assert sorted(results) == sorted(modes)
    expected = [(sequential.row_label(c, s), ser) for ser in sequential.SERIALIZERS for c, s in sequential.PAIRS]
    assert len(expected) == 40 and ("FLOOR client -> FLOOR server", "serpent") in expected
    for mode in modes:
        rows = {(row["row"], row["serializer"]): row for row in results[mode]}
        assert sorted(rows) == sorted(expected), mode
        for key, row in rows.items():
            for name in NUMBERS:
                assert _positive(row[name]), (mode, key, name, row[name])
            assert row["calls"] > 0, (mode, key)
        for ser in sequential.SERIALIZERS:
            assert rows[("Pyro5 client -> Pyro5 thread server", ser)]["vs_baseline"] == 1.0
    # the printed tables: one per placement, every row in each
    for mode in modes:
        assert "#### %s:" % mode in proc.stdout
    for label, ser in expected:
        assert proc.stdout.count("| %s | %s |" % (label, ser)) == len(modes), (label, ser)


@pytest.fixture
def floor_uri():
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.floor"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("URI PYRO:"), line
        yield line.split(None, 1)[1].strip()
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("serializer", ["serpent", "msgpack"])
def test_floor_server_answers_real_proxies(floor_uri, serializer):
    """A geopyro Proxy and a Pyro5 Proxy bind to the floor server and get echo("hello") back: its bytes are right."""
    import Pyro5.api
    import geopyro.api

    for proxy_class in (geopyro.api.Proxy, Pyro5.api.Proxy):
        with proxy_class(floor_uri) as proxy:
            proxy._pyroSerializer = serializer
            assert proxy.echo("hello") == "hello"
            assert proxy.echo([1, 2.5, None]) == [1, 2.5, None]
            assert isinstance(proxy.cpu(), float)
    client = FloorClient(floor_uri, serializer)
    try:
        assert client.echo("hello") == "hello"
    finally:
        client.close()
