"""Conformance targets from outside the package: a module path, a file, an entry point, and a server command.

Each test writes an adapter into a temporary folder (nothing in the conformance package changes) and runs
``python -m conformance`` on a few checks in a subprocess, reading its ``--json`` results.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support import SEED_NUMBERING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ADAPTER = textwrap.dedent('''
    """An adapter living outside the conformance package: geopyro under another name, two serializers."""
    from conformance.targets import pyro5_api_target

    NAME = "outside"
    WIRE = "pyro-502"
    SERIALIZERS = ["serpent", "json"]
    PIP_PACKAGE = IMPORT_NAME = "geopyro"


    def load():
        return pyro5_api_target("geopyro", "greenlet", SERIALIZERS, {})
''')

CHECKS = "private.single-underscore or serializer.json or serializer.marshal or oneway.still-runs"


def conformance(tmp_path, *args, pythonpath=None):
    """Run the CLI; return (exit code, output, parsed --json or None)."""
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYRO_", "CONFORMANCE_"))}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-m", "conformance", *args, "-q", "--json", str(results)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout[-4000:] + proc.stderr[-3000:]
    data = json.loads(results.read_text()) if results.exists() else None
    return proc.returncode, output, data


def outcomes(data):
    return {(r["server"], r["client"], r["check"]): r["outcome"] for r in data["results"]}


def assert_outside_ran(data, pair=("outside", "outside")):
    seen = outcomes(data)
    assert seen[pair + ("private.single-underscore",)] == "passed"
    assert seen[pair + ("serializer.json",)] == "passed"
    assert seen[pair + ("oneway.still-runs",)] == "passed"
    assert seen[pair + ("serializer.marshal",)] == "n/a"  # the adapter's own SERIALIZERS were read
    assert data["ok"] is True


def test_target_given_as_a_module_path(tmp_path):
    (tmp_path / "my_outside_adapter.py").write_text(ADAPTER)
    code, output, data = conformance(tmp_path, "--target", "my_outside_adapter", "-k", CHECKS, "-n", "0",
                                     pythonpath=tmp_path)
    assert code == 0, output
    assert_outside_ran(data)


def test_target_given_as_a_file_paired_with_pyro5_under_xdist(tmp_path):
    adapter = tmp_path / "adapters" / "outside_adapter.py"
    adapter.parent.mkdir()
    adapter.write_text(ADAPTER)
    code, output, data = conformance(tmp_path, "--server", str(adapter), "--client", "pyro5", "-k", CHECKS,
                                     "-n", "2")
    assert code == 0, output
    assert_outside_ran(data, ("outside", "pyro5"))  # the workers and the server process found the file too


def install_entry_point(folder, package, entry_point, module, adapter_text):
    """An 'installed package' in ``folder`` (a dist-info) whose entry point names an adapter module there."""
    (folder / ("%s.py" % module)).write_text(adapter_text)
    dist_info = folder / ("%s-1.0.dist-info" % package)
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % package)
    (dist_info / "entry_points.txt").write_text("[conformance.targets]\n%s = %s\n" % (entry_point, module))


def list_targets(pythonpath):
    return subprocess.run([sys.executable, "-m", "conformance", "--list-targets"], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(pythonpath)), capture_output=True, text=True,
                          timeout=60)


def test_target_registered_by_an_installed_package_entry_point(tmp_path):
    install_entry_point(tmp_path, "outside_pkg", "outside", "outside_pkg_adapter", ADAPTER)
    listing = list_targets(tmp_path)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("outside "))
    assert "ready" in lines[at] and "entry point outside = outside_pkg_adapter" in lines[at + 1], listing.stdout
    assert any(line.startswith("geopyro ") for line in lines) and "built in" in listing.stdout

    code, output, data = conformance(tmp_path, "--target", "outside", "-k", CHECKS, "-n", "0",
                                     pythonpath=tmp_path)
    assert code == 0, output
    assert_outside_ran(data)


def test_list_targets_names_a_file_adapter_given_on_the_command_line(tmp_path):
    adapter = tmp_path / "listed_adapter.py"
    adapter.write_text(ADAPTER.replace('NAME = "outside"', 'NAME = "listed"'))
    listing = subprocess.run([sys.executable, "-m", "conformance", "--list-targets", "--target", str(adapter)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "listed" in listing.stdout and "file %s" % adapter in listing.stdout


@pytest.mark.parametrize("spec, message", [
    ("no_such_adapter_module", "unknown target 'no_such_adapter_module'"),
    ("./no/such/adapter.py", "no adapter file"),
])
def test_an_adapter_that_cannot_be_found_is_a_usage_error(tmp_path, spec, message):
    code, output, _ = conformance(tmp_path, "--target", spec)
    assert code == 2 and message in output, output


def test_a_broken_adapter_file_is_a_usage_error_that_says_why(tmp_path):
    adapter = tmp_path / "broken_adapter.py"
    adapter.write_text("raise RuntimeError('adapter exploded')\n")
    code, output, _ = conformance(tmp_path, "--target", str(adapter))
    assert code == 2 and "adapter exploded" in output, output


BROKEN_ADAPTER = textwrap.dedent('''
    """geopyro with a deliberately broken URI class: it keeps the protocol as written ("pyro:" stays lowercase)."""
    from conformance.targets import pyro5_api_target

    NAME = "broken"
    WIRE = "pyro-502"
    SERIALIZERS = ["serpent"]
    PIP_PACKAGE = IMPORT_NAME = "geopyro"


    def load():
        target = pyro5_api_target("geopyro", "greenlet", SERIALIZERS, {})

        class URI(target.URI):
            __slots__ = ()

            def __init__(self, uri):
                super().__init__(uri)
                if isinstance(uri, str):
                    self.protocol = uri.split(":", 1)[0]

        target.URI = URI
        return target
''')


def test_a_failing_check_says_what_it_verifies_and_where_that_is_documented(tmp_path):
    adapter = tmp_path / "broken_adapter.py"
    adapter.write_text(BROKEN_ADAPTER)
    code, output, data = conformance(tmp_path, "--target", str(adapter), "-k", "uri.lowercase or uri.parse-pyro",
                                     "-n", "0")
    assert code == 1, output
    lines = output.splitlines()
    at = lines.index("FAIL  broken/broken  uri.lowercase")
    assert lines[at + 1:at + 4] == [
        "    protocol of 'pyro:x@h:1': expected 'PYRO', got 'pyro'",   # the failure, without pytest's decoration
        '    verifies: "the protocol may be written in lowercase"',    # the sentence, quoted
        "    source: Pyro4 API reference: Pyro4.core, URI",            # the document by its title, and the section
    ], output
    assert "uri.parse-pyro" not in "\n".join(lines[at:]), output  # a passing check stays one table row
    assert not SEED_NUMBERING.search(output), output

    rows = {r["check"]: r for r in data["results"]}
    failed = rows["uri.lowercase"]
    assert failed["outcome"] == "failed"
    assert failed["message"] == "protocol of 'pyro:x@h:1': expected 'PYRO', got 'pyro'"
    assert (failed["topic"], failed["sentence"], failed["source_title"], failed["section"]) == (
        "Binding, NAT and URIs", "the protocol may be written in lowercase", "Pyro4 API reference: Pyro4.core", "URI")
    assert failed["sources"] == [{"title": "Pyro4 API reference: Pyro4.core", "section": "URI", "quote": None,
                                  "text": "Pyro4 API reference: Pyro4.core, URI"}]
    assert rows["uri.parse-pyro"]["outcome"] == "passed" and rows["uri.parse-pyro"]["topic"] == failed["topic"]
    assert not SEED_NUMBERING.search(json.dumps(data)), data


SERVER_COMMAND = "%s -m conformance.contract_server --package Pyro5" % sys.executable


def test_server_command_runs_the_client_checks_over_the_wire(tmp_path):
    """A plain Pyro5 server started as a command; only some contract objects declared, one server type."""
    code, output, data = conformance(
        tmp_path, "--server-command", SERVER_COMMAND, "--objects", "conformance.everything,conformance.echo",
        "--client", "geopyro", "-k", "private.single-underscore or oneway.still-runs or nat.register-uri or "
                                     "ns.locate or servertype", "-n", "0")
    assert code == 0, output
    seen = {r["check"]: r for r in data["results"]}
    assert seen["private.single-underscore"]["outcome"] == "passed"  # on conformance.everything, over the wire
    for check_id, why in [("oneway.still-runs", "object 'conformance.oneway'"),  # not declared with --objects
                          ("nat.register-uri", "runs inside a server process"),  # server-side check
                          ("ns.locate", "name server"),
                          ("servertype.sequential", "one server type only")]:  # no {servertype} in the command
        assert seen[check_id]["outcome"] == "n/a" and why in seen[check_id]["message"], seen[check_id]
    assert data["pairs"] == [{"server": "command", "client": "geopyro"}]
    assert data["versions"]["command"].startswith("(started by: ")


def test_server_command_asks_the_daemon_for_its_objects_and_chooses_the_server_type(tmp_path):
    code, output, data = conformance(
        tmp_path, "--server-command", SERVER_COMMAND + " --servertype {servertype}", "--server-name", "pyro5cmd",
        "--client", "pyro5", "-k", "oneway.still-runs or servertype", "-n", "0")
    assert code == 0, output
    seen = outcomes(data)
    assert seen[("pyro5cmd", "pyro5", "oneway.still-runs")] == "passed"  # found through registered()
    assert seen[("pyro5cmd", "pyro5", "servertype.sequential")] == "passed"  # a multiplex server was started
    assert seen[("pyro5cmd", "pyro5", "servertype.concurrent")] == "passed"


def test_server_command_that_never_prints_a_uri_fails_with_its_output(tmp_path):
    command = "%s -c \"import sys; print('starting'); sys.stderr.write('no port for me'); sys.exit(4)\"" \
              % sys.executable
    code, output, data = conformance(tmp_path, "--server-command", command, "--client", "geopyro",
                                     "-k", "private.single-underscore", "-n", "0")
    assert code == 1, output
    failure = data["results"][0]
    assert failure["outcome"] in ("error", "failed") and "no port for me" in failure["message"], failure


def test_server_command_is_not_a_client(tmp_path):
    code, output, _ = conformance(tmp_path, "--server-command", SERVER_COMMAND)
    assert code == 2 and "--client" in output, output


def test_an_outside_adapter_may_not_take_a_built_in_name(tmp_path):
    """Workers and server processes would find the built-in first: the run would test the wrong thing."""
    adapter = tmp_path / "impostor.py"
    adapter.write_text(ADAPTER.replace('NAME = "outside"', 'NAME = "pyro5"'))
    code, output, _ = conformance(tmp_path, "--target", str(adapter))
    assert code == 2 and "the name of another target" in output, output
    code, output, _ = conformance(tmp_path, "--server-command", SERVER_COMMAND, "--server-name", "geopyro",
                                  "--client", "pyro5")
    assert code == 2 and "the name of another target" in output, output


def test_an_entry_point_target_is_called_by_the_entry_point_name(tmp_path):
    install_entry_point(tmp_path, "renamed", "mypyro", "renamed_adapter",
                        ADAPTER.replace('NAME = "outside"', 'NAME = "fancy"'))
    listing = list_targets(tmp_path)
    assert listing.returncode == 0 and "mypyro " in listing.stdout, listing.stdout + listing.stderr


def test_a_module_that_is_no_adapter_is_a_usage_error(tmp_path):
    code, output, _ = conformance(tmp_path, "--target", "json")
    assert code == 2 and "is not a conformance adapter" in output and "WIRE" in output, output


def test_a_server_command_that_exits_after_printing_its_uri_is_reported_as_exited(tmp_path):
    command = "%s -c \"print('PYRO:obj@127.0.0.1:9'); import sys; sys.stderr.write('bye now')\"" % sys.executable
    code, output, data = conformance(tmp_path, "--server-command", command, "--client", "geopyro",
                                     "-k", "private.single-underscore", "-n", "0")
    assert code == 1, output
    failure = data["results"][0]
    assert "exited" in failure["message"] and "bye now" in failure["message"], failure


@pytest.mark.parametrize("line", ['uri = "PYRO:obj@127.0.0.1:PORT"', "<PYRO:obj@127.0.0.1:PORT>",
                                  "listening: PYRO:obj@127.0.0.1:PORT."])
def test_the_uri_a_server_command_prints_may_stand_in_punctuation(line):
    from conformance import harness
    found = harness.URI_PATTERN.search(line.replace("PORT", "9090"))
    assert found.group(2) == "127.0.0.1:9090"
