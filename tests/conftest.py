"""Shared fixtures: a clean config per test, and daemons that run in a background thread."""

import os
import sys
import threading

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import geopyro  # noqa: E402
from geopyro import server  # noqa: E402


@pytest.fixture(autouse=True)
def clean_config():
    """Every test starts and ends with the default configuration."""
    geopyro.config.reset(use_environment=False)
    yield geopyro.config
    geopyro.config.reset(use_environment=False)


@pytest.fixture(autouse=True)
def clean_call_context():
    """The call context of the test's own greenlet must not leak between tests."""
    from geopyro.callcontext import current_context
    for name, value in (("annotations", {}), ("correlation_id", None), ("response_annotations", {})):
        setattr(current_context, name, value)
    yield
    for name, value in (("annotations", {}), ("correlation_id", None), ("response_annotations", {})):
        setattr(current_context, name, value)


class DaemonRunner:
    """Runs daemons' request loops in background threads and stops them at the end of a test."""

    def __init__(self):
        self.running = []

    def start(self, daemon=None, **daemon_kwargs):
        """Start ``daemon`` (or a new Daemon on 127.0.0.1 made with ``daemon_kwargs``) and return it."""
        if daemon is None:
            daemon_kwargs.setdefault("host", "127.0.0.1")
            daemon = server.Daemon(**daemon_kwargs)
        thread = threading.Thread(target=daemon.requestLoop, daemon=True, name="daemon %s" % daemon.locationStr)
        thread.start()
        self.running.append((daemon, thread))
        return daemon

    def serve(self, obj, object_id=None, **daemon_kwargs):
        """Register one object or class in a new running daemon; return its URI."""
        daemon = server.Daemon(host="127.0.0.1", **daemon_kwargs)
        uri = daemon.register(obj, object_id)
        self.start(daemon)
        return uri

    def stop_all(self):
        for daemon, thread in self.running:
            if daemon.transportServer is not None:
                daemon.shutdown()
            thread.join(10)
            assert not thread.is_alive(), "daemon thread did not stop"
        self.running.clear()


@pytest.fixture
def daemons():
    """Start daemons in background threads; all are shut down after the test."""
    runner = DaemonRunner()
    yield runner
    runner.stop_all()


SERVER_TYPES = ["greenlet", "multiplex"]


@pytest.fixture(params=SERVER_TYPES)
def servertype(request, clean_config):
    """Run the test once per server type (sets config.SERVERTYPE before daemons are made)."""
    clean_config.SERVERTYPE = request.param
    return request.param


@pytest.fixture
def pyro4_serializer():
    """Set the real Pyro4's client serializer for one test (Pyro4's config is global): call it with a name."""
    Pyro4 = pytest.importorskip("Pyro4", reason="this test talks with the real Pyro4")
    saved = Pyro4.config.SERIALIZER
    yield lambda name: setattr(Pyro4.config, "SERIALIZER", name)
    Pyro4.config.SERIALIZER = saved
