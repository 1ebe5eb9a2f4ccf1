"""examples/client.py against the real local stack: hashing and login (with needs_rehash)
from the command line, the password never in its output or logs; and under overload it
retries 503s after Retry-After-Ms, a bounded number of times."""

import concurrent.futures
import json
import pathlib
import secrets
import subprocess
import sys
import threading
import time

import requests

import pytest

# The example client is the subject (its retries and its output), not the app's memory: left
# out of the sanitized run of tests/integration, run in the plain one.
pytestmark = pytest.mark.slow
REPO = pathlib.Path(__file__).resolve().parents[2]
CLIENT = REPO / "examples" / "client.py"
sys.path.insert(0, str(CLIENT.parent))
import client  # noqa: E402  (examples/client.py)


def run_client(stack, password, *args):
    result = subprocess.run(
        [sys.executable, str(CLIENT), "--url", stack.url(""), "--cacert", str(stack.cert), "-v",
         *args], input=password, capture_output=True, text=True, timeout=120)
    return result


def test_hash_and_login_from_the_command_line(stack):
    password = "client " + secrets.token_hex(6)
    hashed = run_client(stack, password, "hash", "--cost", "10")
    assert hashed.returncode == 0, hashed.stderr
    old = json.loads(hashed.stdout)["bcrypt"]
    assert old.startswith("$2b$10$")

    # Cost 10 is below the policy (12): the login matches and hands back a new hash.
    login = run_client(stack, password, "login", old)
    assert login.returncode == 0, login.stderr
    out = json.loads(login.stdout)
    assert out["match"] is True and out["new_hash"].startswith("$2b$12$")

    # The new hash is current: no second rehash; a wrong password neither matches nor rehashes.
    assert json.loads(run_client(stack, password, "login", out["new_hash"]).stdout) == \
        {"match": True, "new_hash": None}
    assert json.loads(run_client(stack, "not " + password, "login", old).stdout) == \
        {"match": False, "new_hash": None}

    # Its debug log names requests by id; the password is nowhere.
    assert "request " in login.stderr
    for r in (hashed, login):
        assert password not in r.stdout + r.stderr
    stack.assert_not_logged(password)


def test_a_bad_request_is_an_error_not_a_retry(stack):
    c = client.HashdClient(stack.url(""), verify=str(stack.cert))
    with pytest.raises(client.HashdError) as e:
        c.hash("x" * 80)
    assert e.value.status == 400 and e.value.error == "password_too_long"
    assert c.retries == 0


def test_overload_is_retried_after_retry_after_ms_with_bounded_attempts(make_stack):
    # One process, one hashing thread, a 300 ms queue deadline: of a burst of five cost-12
    # hashes (~0.2 s each, more on a busy machine) some are refused at first with 503; with
    # ten attempts each, the refused ones get through once the burst has drained.
    stack = make_stack(processes=1, app_env={"HASHD_THREADS": 1, "HASHD_QUEUE_DEADLINE_MS": 300})
    slept = []
    lock = threading.Lock()

    def sleep(seconds):
        with lock:
            slept.append(seconds)
        time.sleep(seconds)

    def one(i):
        c = client.HashdClient(stack.url(""), verify=str(stack.cert), max_attempts=10,
                               max_total_wait=30, sleep=sleep)
        try:
            c.hash(f"burst {i}", cost=12)
            return "ok", c.retries
        except client.Unavailable:
            return "gave up", c.retries

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(one, range(5)))
    outcomes = [o for o, _ in results]
    retries = [n for _, n in results]
    # Some were refused and retried (the overload was real), a refused one that waited got
    # through (retrying works), and no caller went past its bound.
    assert sum(retries) > 0, results
    assert any(o == "ok" and n > 0 for o, n in results), results
    assert all(n <= 9 for n in retries), results
    # Each wait was hashd's hint plus jitter: at least the 1 ms the header can say, and
    # never the 0 of an immediate retry.
    assert slept and min(slept) > 0, slept
    print(f"\nclient under overload: outcomes {outcomes}, retries {retries}, "
          f"waits {min(slept):.3f}..{max(slept):.3f} s")


def test_the_wait_is_retry_after_ms_plus_bounded_jitter():
    def response(**headers):
        r = requests.Response()
        r.status_code = 503
        r.headers.update(headers)
        return r

    low = client.HashdClient("https://h", rng=lambda: 0.0, max_jitter=0.5)
    high = client.HashdClient("https://h", rng=lambda: 1.0, max_jitter=0.5)
    assert low.retry_delay(response(**{"Retry-After": "1", "Retry-After-Ms": "240"})) == 0.24
    assert high.retry_delay(response(**{"Retry-After": "1", "Retry-After-Ms": "240"})) == 0.36
    assert low.retry_delay(response(**{"Retry-After": "2"})) == 2.0  # nginx's 503: seconds
    assert low.retry_delay(response()) == 1.0


def test_the_code_docs_quote_is_the_example():
    quoted = (REPO / "docs" / "client.md").read_text().split("```python\n")[1:]
    source = CLIENT.read_text()
    assert len(quoted) == 2
    for block in quoted:
        assert block.split("```")[0] in source
