"""Fixtures of the fault tests (faults under load, durability a test can see): the test
harness's real local stack and store servers (tests/harness/fixtures.py), as they are.

    make_stack   the stack factory (real nginx, spawn-fcgi, hashd-fcgi; stopped at the
                 end, failing the test if a process died unexpectedly)
    store, network_store   its store servers (every backend; the shared ones)
    counts       where a scenario writes its figures (requests sent, errors by kind,
                 acknowledged messages, lost); they are printed at the end of the run,
                 passed or failed, so `make fault-test` always shows them.

Each scenario starts its own servers, injects one fault, and stops everything by PID.
"""

import pytest

# The harness's fixtures and hook, the very ones of tests/integration (one stack life cycle
# for every test of the project); imported by name so that pytest finds them here.
from harness.fixtures import (  # noqa: F401
    make_stack,
    network_store,
    pytest_runtest_makereport,
    store,
)

_REPORTED = []


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
