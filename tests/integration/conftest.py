"""Fixtures of the integration tests: the real local stack and store servers of the test
harness (tests/harness/fixtures.py says what each fixture gives), and one of this suite's own:

    openapi_responses  (autouse) every response from a stack's HTTPS listener is checked
                against docs/openapi.yaml (openapi_check.py); an undescribed status,
                header, content type or body fails the test.
"""

import pytest

import openapi_check

# Imported by name so that pytest finds them in this conftest.
from harness.fixtures import (  # noqa: F401
    make_stack,
    network_store,
    pytest_runtest_makereport,
    stack,
    store,
)


@pytest.fixture(autouse=True)
def openapi_responses(monkeypatch):
    checker = openapi_check.checker()
    first = len(checker.problems)
    openapi_check.install(monkeypatch, checker)
    yield checker
    problems = checker.problems[first:]
    if problems:
        pytest.fail(f"{len(problems)} responses do not match docs/openapi.yaml:\n  " +
                    "\n  ".join(problems[:20]), pytrace=False)
