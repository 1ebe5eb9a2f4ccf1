"""Fixtures of the integration tests: the real local stack and store servers of the test
harness (tests/harness/fixtures.py says what each fixture gives)."""

# Imported by name so that pytest finds them in this conftest.
from harness.fixtures import (  # noqa: F401
    make_stack,
    network_store,
    pytest_runtest_makereport,
    stack,
    store,
)
