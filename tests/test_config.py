"""The global configuration: Pyro5's items and defaults, environment overrides, validation."""

import os
import subprocess
import sys

import pytest

import Pyro5.configure

import geopyro
import geopyro.api
import geopyro.errors
from geopyro import configure
from support import child_env


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No stray PYRO_* variables, and the shared global config back at its defaults after every test."""
    for key in list(os.environ):
        if key.startswith("PYRO_"):
            monkeypatch.delenv(key)
    geopyro.config.reset(use_environment=False)
    yield
    monkeypatch.undo()
    geopyro.config.reset(use_environment=False)


def pyro5_config(use_environment=False):
    """A private Pyro5 Configuration (not Pyro5's global one), reset with or without the environment."""
    cfg = object.__new__(Pyro5.configure.Configuration)
    cfg.reset(use_environment=use_environment)
    return cfg


def test_global_config_is_the_configure_module_object():
    assert geopyro.config is configure.global_config
    assert isinstance(geopyro.config, configure.Configuration)


def test_every_pyro5_item_exists_with_pyro5s_default():
    theirs = pyro5_config().as_dict()
    ours = geopyro.config.as_dict()
    missing = set(theirs) - set(ours)
    assert not missing, "config items missing: %s" % sorted(missing)
    for name, value in theirs.items():
        if name == "SERVERTYPE":
            continue
        if name == "LOGFILE":
            # the default names the package's own log file ("pyro5.log" vs "geopyro.log"); both honour PYRO_LOGFILE
            assert ours[name] == geopyro._logfile
            continue
        assert ours[name] == value, name
        assert type(ours[name]) is type(value), name


def test_servertype_default_is_greenlet_and_thread_is_accepted():
    assert geopyro.config.SERVERTYPE == "greenlet"
    assert pyro5_config().SERVERTYPE == "thread"
    for servertype in ("thread", "multiplex", "greenlet"):
        geopyro.config.SERVERTYPE = servertype
        assert geopyro.config.SERVERTYPE == servertype


def test_a_bad_servertype_fails_in_daemon_as_in_pyro5():
    """Checked where Pyro5 checks it: a program may set it, then catch the error Daemon() raises."""
    import Pyro5.api
    import Pyro5.errors
    for config, daemon_class, error in ((geopyro.config, geopyro.api.Daemon, geopyro.errors.PyroError),
                                        (Pyro5.api.config, Pyro5.api.Daemon, Pyro5.errors.PyroError)):
        config.SERVERTYPE = "undefined"
        try:
            with pytest.raises(error, match="invalid server type 'undefined'"):
                daemon_class(host="127.0.0.1")
        finally:
            config.reset(use_environment=False)


def test_an_unknown_serializer_fails_in_proxy_as_in_pyro5():
    """(In a fresh interpreter: once geopyro's Pyro4 API is imported, its config may name pickle.)"""
    import Pyro5.api
    Pyro5.api.config.SERIALIZER = "pickle"
    try:
        with pytest.raises(ValueError, match="unknown serializer configured"):
            Pyro5.api.Proxy("PYRO:x@127.0.0.1:1")
    finally:
        Pyro5.api.config.reset(use_environment=False)
    for name in ("pickle", "nonsense"):
        code = ("import geopyro.api as api\napi.config.SERIALIZER = %r\n"
                "try:\n    api.Proxy('PYRO:x@127.0.0.1:1')\nexcept ValueError as exc:\n    print(exc)" % name)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(),
                              timeout=60)
        assert "unknown serializer configured: %r" % name in done.stdout, done.stdout + done.stderr


def test_commtimeout_none_means_no_timeout(daemons, servertype):
    """Pyro5 programs (and Pyro5's own tests) set COMMTIMEOUT = None."""
    geopyro.config.COMMTIMEOUT = None
    assert geopyro.config.COMMTIMEOUT is None
    daemon = geopyro.api.Daemon(host="127.0.0.1")
    uri = daemon.register(Echo, "echo")
    daemons.start(daemon)
    with geopyro.api.Proxy(uri) as proxy:
        assert proxy._pyroTimeout is None
        assert proxy.echo(5) == 5


@geopyro.api.expose
class Echo:
    def echo(self, value):
        return value


def test_reset_restores_defaults_and_fresh_lists():
    config = geopyro.config
    config.NS_PORT = 1
    config.COMPRESSION = True
    config.HOST = "elsewhere"
    config.BROADCAST_ADDRS.append("10.0.0.255")
    config.reset(use_environment=False)
    assert (config.NS_PORT, config.COMPRESSION, config.HOST) == (9090, False, "localhost")
    assert config.BROADCAST_ADDRS == ["<broadcast>", "0.0.0.0"]
    config.BROADCAST_ADDRS.append("x")
    config.reset(use_environment=False)
    assert config.BROADCAST_ADDRS == ["<broadcast>", "0.0.0.0"]


def test_copy_is_independent():
    config = geopyro.config
    copy = config.copy()
    assert isinstance(copy, configure.Configuration)
    assert copy.as_dict() == config.as_dict()
    copy.NS_PORT = 1234
    copy.BROADCAST_ADDRS.append("copy-only")
    assert config.NS_PORT == 9090
    assert config.BROADCAST_ADDRS == ["<broadcast>", "0.0.0.0"]
    config.HOST = "original-only"
    assert copy.HOST == "localhost"
    with pytest.raises(ValueError):
        copy.NO_SUCH_ITEM = 1


def test_as_dict():
    result = geopyro.config.as_dict()
    assert type(result) is dict
    assert result["NS_PORT"] == 9090 and result["SERIALIZER"] == "serpent"
    result["NS_PORT"] = 1
    assert geopyro.config.NS_PORT == 9090
    geopyro.config.NS_HOST = "ns.example"
    assert geopyro.config.as_dict()["NS_HOST"] == "ns.example"


def test_dump_text():
    geopyro.config.NS_PORT = 4321
    text = geopyro.config.dump()
    lines = text.splitlines()
    assert lines[0] == "geopyro version: %s" % geopyro.__version__
    assert "Protocol version: 502" in lines
    assert any(line.startswith("Python version: ") for line in lines)
    start = lines.index("Currently active global configuration settings:") + 1
    settings = lines[start:]
    assert settings == sorted(settings)
    assert len(settings) == len(geopyro.config.as_dict())
    for name, value in geopyro.config.as_dict().items():
        assert "%s = %s" % (name, value) in settings
    assert "NS_PORT = 4321" in settings
    assert "SERVERTYPE = greenlet" in settings


def test_module_dump_prints(capsys):
    configure.dump()
    out = capsys.readouterr().out
    assert "Currently active global configuration settings:" in out
    assert "MAX_MESSAGE_SIZE = 1073741824" in out


# ---------------------------------------------------------------- environment overrides

@pytest.mark.parametrize("name, text, expected", [
    ("COMPRESSION", "yes", True), ("COMPRESSION", "TRUE", True), ("COMPRESSION", "on", True),
    ("COMPRESSION", "1", True), ("COMPRESSION", "off", False), ("SOCK_REUSE", "false", False),
    ("SOCK_REUSE", "No", False), ("DETAILED_TRACEBACK", "0", False),
    ("NS_PORT", "1234", 1234), ("MAX_RETRIES", "-1", -1), ("MAX_MESSAGE_SIZE", "1000", 1000),
    ("COMMTIMEOUT", "2.5", 2.5), ("COMMTIMEOUT", "3", 3.0), ("NS_AUTOCLEAN", "1e2", 100.0),
    ("BROADCAST_ADDRS", "a, b,c", ["a", "b", "c"]), ("BROADCAST_ADDRS", "single", ["single"]),
    ("HOST", "myhost.example", "myhost.example"), ("SERIALIZER", "json", "json"),
    ("SERVERTYPE", "thread", "thread"), ("SSL_CACERTS", "/path/ca.pem", "/path/ca.pem"),
    ("NS_BCHOST", "bchost", "bchost"), ("NATHOST", "nat.example", "nat.example"), ("NATHOST", "", None),
])
def test_environment_overrides(monkeypatch, name, text, expected):
    monkeypatch.setenv("PYRO_" + name, text)
    geopyro.config.reset()
    value = getattr(geopyro.config, name)
    assert value == expected
    assert type(value) is type(expected)
    geopyro.config.reset(use_environment=False)
    assert getattr(geopyro.config, name) == configure._DEFAULTS[name][0]


def test_environment_parsed_like_pyro5(monkeypatch):
    environment = {"PYRO_COMPRESSION": "on", "PYRO_NS_PORT": "7777", "PYRO_COMMTIMEOUT": "1.5",
                   "PYRO_BROADCAST_ADDRS": "1.2.3.255, <broadcast>", "PYRO_HOST": "h", "PYRO_NATHOST": "nat",
                   "PYRO_SOCK_NODELAY": "yes", "PYRO_SERIALIZER": "msgpack", "PYRO_ITER_STREAM_LINGER": "5"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    geopyro.config.reset()
    theirs = pyro5_config(use_environment=True)
    for key in environment:
        name = key[len("PYRO_"):]
        assert getattr(geopyro.config, name) == getattr(theirs, name), name
        assert type(getattr(geopyro.config, name)) is type(getattr(theirs, name)), name


@pytest.mark.parametrize("name, text, message", [
    ("NO_SUCH_ITEM", "1", "unknown config item"),
    ("NS_PROT", "1", "did you mean NS_PORT"),
    ("COMPRESSION", "maybe", "bad boolean"),
    ("NS_PORT", "abc", "bad int"),
    ("NS_PORT", "12.5", "bad int"),
    ("COMMTIMEOUT", "soon", "bad float"),
])
def test_bad_environment_values(monkeypatch, name, text, message):
    monkeypatch.setenv("PYRO_" + name, text)
    with pytest.raises(ValueError, match=message):
        geopyro.config.reset()
    geopyro.config.reset(use_environment=False)  # a reset without the environment is still possible
    assert geopyro.config.NS_PORT == 9090


def test_reset_without_environment_ignores_it(monkeypatch):
    monkeypatch.setenv("PYRO_NS_PORT", "1")
    monkeypatch.setenv("PYRO_BOGUS", "1")
    geopyro.config.reset(use_environment=False)
    assert geopyro.config.NS_PORT == 9090


def test_non_pyro_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("PYROX_NS_PORT", "1")
    monkeypatch.setenv("XPYRO_NS_PORT", "1")
    geopyro.config.reset()
    assert geopyro.config.NS_PORT == 9090


# ---------------------------------------------------------------- assignment

@pytest.mark.parametrize("name", ["NO_SUCH_ITEM", "ns_port", "NS_PROT", "_private"])
def test_unknown_attribute(name):
    with pytest.raises(AttributeError, match="unknown config item"):  # Pyro5 raises AttributeError
        setattr(geopyro.config, name, 1)
    with pytest.raises(ValueError, match="unknown config item"):  # and geopyro used to say ValueError
        setattr(geopyro.config, name, 1)
    assert not hasattr(geopyro.config, name)


@pytest.mark.parametrize("name, value", [
    ("NS_PORT", "9090"), ("NS_PORT", 1.5), ("NS_PORT", True), ("NS_PORT", None),
    ("COMPRESSION", "yes"), ("COMPRESSION", 2), ("COMPRESSION", None),
    ("COMMTIMEOUT", "1"), ("COMMTIMEOUT", True), ("COMMTIMEOUT", None),
    ("HOST", None), ("HOST", 123), ("BROADCAST_ADDRS", "a,b"), ("BROADCAST_ADDRS", None),
    ("SERIALIZER", "pickle"), ("SERIALIZER", None), ("SERVERTYPE", "multiprocess"),
])
def test_any_value_is_stored_as_pyro5_stores_it(name, value):
    import Pyro5.api
    setattr(geopyro.config, name, value)
    setattr(Pyro5.api.config, name, value)
    try:
        assert getattr(geopyro.config, name) == getattr(Pyro5.api.config, name) == value
    finally:
        Pyro5.api.config.reset(use_environment=False)


@pytest.mark.parametrize("name, value, stored", [
    ("COMMTIMEOUT", 3, 3.0), ("POLLTIMEOUT", 0.5, 0.5), ("COMPRESSION", 1, True), ("COMPRESSION", 0, False),
    ("BROADCAST_ADDRS", ("a", "b"), ["a", "b"]), ("NATHOST", None, None), ("NATHOST", "nat", "nat"),
    ("NS_BCHOST", None, None), ("LOGLEVEL", "DEBUG", "DEBUG"), ("LOGLEVEL", None, None),
    ("NS_PORT", 0, 0), ("SERIALIZER", "marshal", "marshal"),
])
def test_good_values_are_stored_in_the_items_kind(name, value, stored):
    setattr(geopyro.config, name, value)
    assert getattr(geopyro.config, name) == stored
    assert type(getattr(geopyro.config, name)) is type(stored)
