"""The Messages API when things break, against each store backend
(docs/persistence.md): kill -9 of every FastCGI process right after a batch of 201s, the store stopped
mid-run and at start-up (503 + Retry-After, /readyz 503, hashing unaffected, recovery without
a restart), and a full LMDB map (507, reads still served).

Every test starts its own store server and its own stack, and stops both by PID.
"""

import concurrent.futures
import hashlib
import signal
import threading
import time

import pytest
import requests

from harness.hashd_stack import wait_for
from harness.store_servers import open_store
from test_messages import UNLIMITED_NGINX, digest_of, post

RECOVERY_TIMEOUT_S = 30.0  # bounds the wait for hashd to notice a store that came back
HASH_PASSWORD = "store-outage-hash-password-5e1"


def app_env(store, **extra):
    # Cost 4 keeps the hashing checks fast.
    return {"HASHD_STORE": store.url(), "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4",
            **extra}


def post_batch(stack, messages):
    """POSTs the messages from 16 threads at once; returns {digest: message} of the 201s."""
    local = threading.local()

    def write(message):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        r = post(stack, {"message": message}, session=local.session)
        return message, r

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(write, messages))
    acknowledged = {}
    for message, r in results:
        assert r.status_code == 201, r.text
        acknowledged[r.json()["digest"]] = message
    return acknowledged


# A connection that failed while the store was down waits out its reconnect backoff (up to
# Backoff::kMax, 2 s + jitter) before it tries again, answering 503 meanwhile: each accepting
# thread has its own, so a read on another thread than the write may still get that 503 just
# after recovery. A 503 is "not now", not "lost"; a 404 or another status fails at once.
BACKOFF_GRACE_S = 5.0


def assert_all_readable(stack, acknowledged):
    for digest, message in acknowledged.items():
        deadline = time.monotonic() + BACKOFF_GRACE_S
        while True:
            r = stack.get(f"/messages/{digest}", verify=str(stack.cert))
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 200, f"acknowledged {digest} lost: {r.status_code} {r.text}"
        assert r.json() == {"message": message}


def wait_ready(stack):
    wait_for(lambda: stack.get("/readyz", verify=str(stack.cert)).status_code == 200,
             RECOVERY_TIMEOUT_S, "/readyz to answer 200")


def assert_store_unavailable(response, backend):
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "store_unavailable"
    assert "unavailable" in body["err_msg"] and backend in body["err_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert int(response.headers["Retry-After"]) >= 1


def assert_hashing_works(stack):
    r = stack.post("/v1/hash", json={"password": HASH_PASSWORD, "cost": 4},
                   verify=str(stack.cert))
    assert r.status_code == 200, r.text
    assert r.json()["bcrypt"].startswith("$2b$04$")


@pytest.mark.slow
def test_acknowledged_messages_survive_kill_9_of_every_fastcgi_process(make_stack, store):
    stack = make_stack(processes=2, app_env=app_env(store), nginx=UNLIMITED_NGINX)
    acknowledged = post_batch(stack, [f"kill -9 batch message {i}" for i in range(60)])
    old = [stack.signal(n, signal.SIGKILL) for n in (1, 2)]  # right after the last 201
    for n, pid in zip((1, 2), old):
        stack.wait_restarted(n, pid)
    wait_ready(stack)
    assert_all_readable(stack, acknowledged)
    assert store.count() == len(acknowledged)

    if store.name == "lmdb":
        # The whole stack down and up again on the same directory.
        stack.stop()
        stack = make_stack(processes=2, app_env=app_env(store))
    else:
        # The store's own crash: its durability settings (AOF fsync always, synchronous
        # commit) keep every acknowledged write; hashd reconnects by itself.
        store.kill()
        store.start()
        wait_ready(stack)
    assert_all_readable(stack, acknowledged)
    stack.assert_not_logged(*acknowledged.values())


def test_store_stopped_mid_run_answers_503_and_recovers_without_restart(make_stack,
                                                                        network_store):
    store = network_store
    stack = make_stack(processes=2, app_env=app_env(store))
    pids = {n: stack.pid(n) for n in (1, 2)}
    before = post(stack, {"message": "stored before the outage"})
    assert before.status_code == 201, before.text
    digest = before.json()["digest"]

    store.stop()
    # Every thread of both processes must notice, whichever serves each request.
    for _ in range(8):
        assert_store_unavailable(post(stack, {"message": "written during the outage"}),
                                 store.name)
        assert_store_unavailable(stack.get(f"/messages/{digest}", verify=str(stack.cert)),
                                 store.name)
    # Each process asks the store at most once a second for /readyz (readiness.h): the
    # answer flips within that, not at once.
    # (A list: a 503 Response is falsy, and wait_for waits for a truthy value.)
    [ready] = wait_for(lambda: [r] if (r := stack.get("/readyz", verify=str(stack.cert))).status_code == 503 else None,
                       10, "/readyz to answer 503")
    assert store.name in ready.json()["err_msg"]
    assert int(ready.headers["Retry-After"]) >= 1
    assert_hashing_works(stack)
    assert stack.get("/healthz", verify=str(stack.cert)).status_code == 200

    store.start()
    wait_for(lambda: post(stack, {"message": "written after the outage"}).status_code == 201,
             RECOVERY_TIMEOUT_S, "POST /messages to succeed again")
    wait_ready(stack)
    assert_all_readable(stack, {digest: "stored before the outage",
                                digest_of("written after the outage"): "written after the outage"})
    assert {n: stack.pid(n) for n in (1, 2)} == pids, "recovery must not need a restart"
    stack.assert_not_logged(HASH_PASSWORD, "stored before the outage")


def test_store_down_at_start_up_then_up(make_stack, network_store):
    store = network_store
    store.stop()
    stack = make_stack(processes=2, app_env=app_env(store), ready_path="/healthz")
    assert_store_unavailable(post(stack, {"message": "too early"}), store.name)
    assert stack.get("/readyz", verify=str(stack.cert)).status_code == 503
    assert_hashing_works(stack)

    store.start()
    wait_for(lambda: post(stack, {"message": "in time"}).status_code == 201,
             RECOVERY_TIMEOUT_S, "POST /messages to succeed once the store is up")
    wait_ready(stack)
    assert_all_readable(stack, {digest_of("in time"): "in time"})


def test_full_lmdb_map_answers_507_and_keeps_serving_reads(make_stack):
    store = open_store("lmdb")
    try:
        stack = make_stack(processes=2, app_env=app_env(store, HASHD_LMDB_MAP_SIZE="65536"))
        acknowledged, full = {}, None
        for i in range(200):  # 64 KiB hold a few dozen 2 KB messages
            message = f"filler {i} " + "x" * 2000
            r = post(stack, {"message": message})
            if r.status_code != 201:
                full = r
                break
            acknowledged[r.json()["digest"]] = message
        assert full is not None, "the map never filled up"
        assert full.status_code == 507, full.text
        body = full.json()
        assert body["error"] == "store_full"
        assert "full" in body["err_msg"] and body["request_id"]
        assert acknowledged, "not even one message fitted"

        assert_all_readable(stack, acknowledged)
        assert stack.get("/readyz", verify=str(stack.cert)).status_code == 200
        digest, message = next(iter(acknowledged.items()))
        repeat = post(stack, {"message": message})
        assert repeat.status_code == 201 and repeat.json()["digest"] == digest
        assert_hashing_works(stack)
        assert hashlib.sha256(message.encode()).hexdigest() == digest
    finally:
        store.cleanup()
