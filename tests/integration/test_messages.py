"""The Messages API (docs/api.md "Messages"), the same suite against each store backend.

Each backend's server (redis-server, a PostgreSQL cluster; LMDB is a directory) is started
by the test on loopback in a temporary directory and stopped by PID (store_servers.py). One
stack per backend serves the contract tests; the concurrency test counts what the backend
itself holds. Failure cases (kill -9, store down, full map) are in test_messages_failures.py.
"""

import concurrent.futures
import hashlib
import json
import threading

import pytest
import requests

from harness.hashd_stack import Stack
from harness.store_servers import open_store

BACKENDS = ["lmdb", "redis", "postgresql"]

# The test talks to hashd, not to nginx's abuse limits: let 100 concurrent writers through.
UNLIMITED_NGINX = {"general_rate": "100000r/s", "general_burst": 100000,
                   "queued_per_thread": 100, "conn_per_client": 65535}


def digest_of(message):
    return hashlib.sha256(message.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module", params=BACKENDS)
def store(request):
    s = open_store(request.param)
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def api(store):
    stack = Stack(processes=2, app_env={"HASHD_STORE": store.url()}, nginx=UNLIMITED_NGINX)
    stack.start()
    yield stack
    stack.stop()
    stack.cleanup()


def post(stack, body, session=None):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return (session or stack.session).post(
        stack.url("/messages"), data=data, headers={"Content-Type": "application/json"},
        verify=str(stack.cert), timeout=30)


def assert_not_found(response):
    assert response.status_code == 404, response.text
    assert response.json()["err_msg"] == "Message not found"


def test_readyz_names_the_backend(api, store):
    r = api.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["store"] == store.name


def test_post_answers_201_with_the_digest_also_on_a_repeat(api):
    for _ in range(2):
        r = post(api, {"message": "foo"})
        assert r.status_code == 201, r.text
        assert r.json() == {"digest": digest_of("foo")}
    r = api.get(f"/messages/{digest_of('foo')}")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "foo"}


def test_digest_lookup_is_case_insensitive(api):
    digest = post(api, {"message": "Case matters not"}).json()["digest"]
    r = api.get(f"/messages/{digest.upper()}")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Case matters not"}


@pytest.mark.parametrize("digest", [
    digest_of("never stored anywhere"),
    "xyz",
    "a" * 63,
    "a" * 65,
    "g" * 64,
    digest_of("x")[:-1] + "%",
])
def test_unknown_or_malformed_digest_is_404(api, digest):
    assert_not_found(api.get(f"/messages/{digest}"))


@pytest.mark.parametrize("body", [
    {"message": 42}, {"message": None}, {"message": ["a"]}, {"message": {"a": "b"}},
    {"msg": "a"}, "not json", "[1, 2]",
])
def test_message_must_be_a_json_string(api, body):
    r = post(api, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_messages_up_to_64_kib_are_stored_and_larger_ones_are_413(api):
    limit = "m" * 65536
    r = post(api, {"message": limit})
    assert r.status_code == 201, r.text
    assert api.get(f"/messages/{digest_of(limit)}").json()["message"] == limit

    r = post(api, {"message": limit + "m"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]
    # 64 KiB counts UTF-8 bytes: 21846 three-byte characters are 65538 bytes.
    r = post(api, {"message": "\u20ac" * 21846})
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("message", [
    "h\u00e9llo w\u00f6rld \u2713 \U0001F600 \u4e2d\u6587",
    "nul \u0000 inside",
    "",
    "quotes \" and \\ backslashes\nand newlines",
])
def test_utf8_and_binary_safe_round_trip(api, message):
    r = post(api, {"message": message})
    assert r.status_code == 201, r.text
    assert r.json()["digest"] == digest_of(message)
    r = api.get(f"/messages/{digest_of(message)}")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": message}
    assert r.headers["Content-Type"].startswith("application/json")


def test_message_bodies_are_not_logged(api):
    secret = "a message body that must never reach a log 7c1f"
    assert post(api, {"message": secret}).status_code == 201
    assert api.get(f"/messages/{digest_of(secret)}").status_code == 200
    api.assert_not_logged(secret)


def test_100_concurrent_writers_of_the_same_and_of_different_messages(api, store):
    before = store.count()
    same = "the one message everybody writes"
    different = [f"writer {i} has its own message" for i in range(100)]
    local = threading.local()

    def write(message):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        r = post(api, {"message": message}, session=local.session)
        return message, r.status_code, r.text

    messages = [same] * 100 + different
    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(write, messages))
    errors = [(status, text) for _, status, text in results if status != 201]
    assert not errors, f"{len(errors)} of {len(results)} writes failed, e.g. {errors[:3]}"
    for message, _, text in results:
        assert json.loads(text) == {"digest": digest_of(message)}

    # Each distinct message is stored exactly once, as the backend itself counts.
    assert store.count() - before == 1 + len(different)
    for message in [same] + different:
        r = api.get(f"/messages/{digest_of(message)}")
        assert r.status_code == 200 and r.json()["message"] == message
