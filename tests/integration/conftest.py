"""Fixtures of the integration tests: the real local stack (hashd_stack.Stack).

    stack       one default stack (2 processes, LMDB store) shared by the whole session;
                for tests that only send requests and read logs.
    make_stack  a factory for a test's own stack, with its own settings, stopped when the
                test ends; for tests that kill processes, change limits or settings.
    store       a real store server of each backend in turn (LMDB directory, Redis,
                PostgreSQL: store_servers.py), removed when the test ends.
    network_store  the same for the shared backends only (Redis, PostgreSQL).
    openapi_responses  (autouse) every response from a stack's HTTPS listener is checked
                against docs/openapi.yaml (openapi_check.py); an undescribed status,
                header, content type or body fails the test.

Both stop their stack at the end and fail if a process died that the test did not kill,
or if a process did not exit cleanly. A failed test keeps its stack's directory (logs,
rendered nginx configuration) and names it; a passed one removes it.

The app binary is build/fcgi-app/hashd-fcgi, or HASHD_FCGI_BIN (the ASan run). Without it
the tests fail: an integration test that did not run did not pass.
"""

import pytest

import openapi_check
from hashd_stack import Stack, StackError
from store_servers import open_store


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; left out of the sanitized run")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remembers each phase's outcome on the test item, so fixtures can tell at teardown
    # whether the test failed (and keep its stack's logs).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"hashd_{report.when}_failed", report.failed)


def _finish(stack, failed, reporter_note):
    try:
        stack.stop()
    except StackError:
        reporter_note(f"kept {stack.root} for inspection")
        raise
    if failed:
        reporter_note(f"test failed; kept {stack.root} for inspection")
    else:
        stack.cleanup()


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


@pytest.fixture(scope="session")
def stack(request):
    s = Stack().start()
    yield s
    failed = request.session.testsfailed > 0
    _finish(s, failed, lambda note: print(f"\nhashd stack: {note}"))


@pytest.fixture
def make_stack(request):
    started = []

    def make(**kwargs):
        s = Stack(**kwargs)
        started.append(s)
        return s.start()

    yield make
    failed = getattr(request.node, "hashd_call_failed", False)
    errors = []
    for s in started:
        try:
            _finish(s, failed, lambda note: print(f"\nhashd stack: {note}"))
        except StackError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(params=["lmdb", "redis", "postgresql"])
def store(request):
    s = open_store(request.param)
    yield s
    s.cleanup()


@pytest.fixture(params=["redis", "postgresql"])
def network_store(request):
    s = open_store(request.param)
    yield s
    s.cleanup()
