"""Fixtures of the fault tests (issue 9, "Faults under load" and "Durability that a test can
see"): the integration suite's real local stack and store servers, reused as they are.

    make_stack   tests/integration/conftest.py's factory (real nginx, spawn-fcgi, hashd-fcgi;
                 stopped at the end, failing the test if a process died unexpectedly)
    store, network_store   its store servers (every backend; the shared ones)
    counts       where a scenario writes its figures (requests sent, errors by kind,
                 acknowledged messages, lost); they are printed at the end of the run,
                 passed or failed, so `make fault-test` always shows them.

Each scenario starts its own servers, injects one fault, and stops everything by PID.
"""

import importlib.util
import pathlib
import sys

import pytest

INTEGRATION = pathlib.Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

# The integration suite's conftest, loaded under its own name so that its fixtures and hooks
# are the very same here (one stack life cycle for every test of the project).
_spec = importlib.util.spec_from_file_location("hashd_integration_conftest",
                                               INTEGRATION / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
make_stack = _integration.make_stack
store = _integration.store
network_store = _integration.network_store
pytest_runtest_makereport = _integration.pytest_runtest_makereport

_REPORTED = []


def pytest_configure(config):
    _integration.pytest_configure(config)


class Counts:
    """One scenario's figures, as ordered "name: value" pairs."""

    def __init__(self, scenario):
        self.scenario = scenario
        self.items = []

    def add(self, name, value):
        self.items.append((name, value))

    def line(self):
        return f"{self.scenario}: " + ", ".join(f"{k}={v}" for k, v in self.items)


@pytest.fixture
def counts(request):
    c = Counts(request.node.name)
    yield c
    _REPORTED.append(c)


def pytest_terminal_summary(terminalreporter):
    if not _REPORTED:
        return
    terminalreporter.section("fault figures")
    for c in _REPORTED:
        terminalreporter.write_line(c.line())
