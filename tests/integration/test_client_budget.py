"""Issue 21 finding 4: per-client limits count work, not requests (fcgi-app/src/api/
client_budget.h). A cost-14 hash is four cost-12 hashes, a cost-10 one a quarter, and a
verify counts its hash's cost. Over budget: 429 in the usual JSON error shape, with
Retry-After, before any hashing. The charge is taken when a request is accepted, so
requests sent together are charged within milliseconds of each other: the outcome does not
depend on how fast the machine hashes."""

import concurrent.futures
import time

import bcrypt


def hash_at(stack, cost):
    return stack.post("/v1/hash", json={"password": "budget-test-pw", "cost": cost}, timeout=60)


def test_the_budget_counts_cost_weighted_work_and_answers_429(make_stack):
    # One process, 1 cost-12 hash a second, at most 1 banked.
    stack = make_stack(processes=1, app_env={
        "HASHD_CLIENT_WORK_RATE": "1", "HASHD_CLIENT_WORK_BURST": "1",
        "HASHD_COST_MIN": "10", "HASHD_COST_MAX": "14", "HASHD_THREADS": "2",
        "HASHD_QUEUE_DEADLINE_MS": "0"})
    # Four cost-10 hashes are one cost-12 hash: four fit in the bucket, a fifth does not.
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: hash_at(stack, 10), range(5)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 200, 200, 429], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 429)
    body = refused.json()
    assert body["error"] == "client_budget_exceeded", body
    assert body["request_id"] == refused.headers["X-Request-Id"]
    assert int(refused.headers["Retry-After"]) >= 1

    # A verify counts its hash's cost: with a full bucket (1 unit) a $2b$14$ verify runs (a
    # bucket's worth or more runs from a full bucket) and leaves 3 units of debt, so the
    # cheapest hash right after it is refused; a $2b$10$ verify would have left room.
    time.sleep(1.2)
    dear = bcrypt.hashpw(b"budget-test-pw", bcrypt.gensalt(14)).decode()
    # The cheap hash is sent while the verify is still being computed, so that the refill
    # between the two charges is the 0.2 s slept, not however long the verify takes here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        verify = pool.submit(lambda: stack.post(
            "/v1/verify", json={"password": "budget-test-pw", "hash": dear}, timeout=120))
        time.sleep(0.2)
        after = hash_at(stack, 10)
        v = verify.result()
    assert v.status_code == 200 and v.json()["match"] is True, v.text
    assert after.status_code == 429, after.text
    assert int(after.headers["Retry-After"]) >= 2, after.headers
