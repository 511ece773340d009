"""pytest plugin: turns the catalogue into test items for the chosen (server, client) pairs.

Loaded with ``-p conformance.plugin`` (xdist passes it on to its workers). Each worker
shares one server process per (target, scenario, server type) among its checks.
"""

import pytest

from . import catalogue, harness, targets


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--conformance-pairs", default="geopyro/geopyro",
                    help="comma-separated server/client target pairs")


def pairs_from(config):
    return [tuple(p.split("/", 1)) for p in config.getoption("conformance_pairs").split(",") if p]


def node_id(pair, check):
    return "%s/%s:%s" % (pair[0], pair[1], check.id)


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    params = []
    for pair in pairs_from(metafunc.config):
        for chk in catalogue.all_checks():
            marks = []
            na = chk.not_applicable(*pair)
            if na:
                marks.append(pytest.mark.skip(reason="not applicable: " + na))
            else:
                bug = chk.known_bug(*pair)
                if bug:
                    marks.append(pytest.mark.xfail(reason=bug, strict=False))
            params.append(pytest.param((pair, chk), id=node_id(pair, chk), marks=marks))
    metafunc.parametrize("case", params)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing check's report says what it verifies and where that is documented (a section of the report,
    shown by pytest under the failure when the plugin is used directly, and carried over from xdist workers)."""
    outcome = yield
    report = outcome.get_result()
    case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
    if case is not None and report.failed:
        _pair, chk = case
        report.sections.append(("conformance check %s (%s)" % (chk.id, chk.topic), "\n".join(chk.describe(""))))


@pytest.fixture(scope="session")
def conformance_pool():
    pool = harness.Pool()
    yield pool
    pool.close()


@pytest.fixture
def ctx(case, conformance_pool):
    (server, client), chk = case
    context = harness.Ctx(conformance_pool, server, targets.load(client), chk.servertype)
    yield context
    context.cleanup()
