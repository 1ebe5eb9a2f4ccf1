"""Admission by expected wait (fcgi-app/src/hashing/admission.cc) on the real stack.

A burst the CPU can finish within HASHD_QUEUE_DEADLINE_MS is served whole; a larger one gets
503s at once, with Retry-After (seconds) and Retry-After-Ms; probes never wait behind a hash.
Every assertion is about statuses, headers, the app's own log and the order of events,
never about how long something took on the wall clock.
"""

import concurrent.futures
import json
import math
import threading

import requests

from harness.hashd_stack import wait_for

PASSWORD = "admission-test-pw"  # sent in bodies; checked never to be logged


def burst(stack, n, cost):
    """n POST /v1/hash sent at once, each on its own connection; their responses."""
    ready = threading.Barrier(n)

    def one(_):
        with requests.Session() as s:
            s.trust_env = False
            s.verify = str(stack.cert)
            ready.wait(60)
            return s.post(stack.url("/v1/hash"), json={"password": PASSWORD, "cost": cost},
                          timeout=300)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def app_entries(stack):
    """Every request line of every process's log, by request id."""
    out = {}
    for path in stack.log_dir.glob("hashd-*.log"):
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == "request":
                    out[entry["REQUEST_ID"]] = entry
    return out


def hash_seconds(stack, cost, n=4):
    """The slowest of n cost-`cost` hashes as the app timed them right now (its log's
    DURATION_US): how fast this machine hashes while the test runs, whatever else loads it."""
    ids = []
    for _ in range(n):
        r = stack.post("/v1/hash", json={"password": PASSWORD, "cost": cost}, timeout=300)
        assert r.status_code == 200, r.text
        ids.append(r.headers["X-Request-Id"])
    entries = wait_for(lambda: (e := app_entries(stack)) and all(i in e for i in ids) and e,
                       30, "the warm-up requests' log lines")
    return max(int(entries[i]["DURATION_US"]) for i in ids) / 1e6


def test_a_burst_the_cpu_can_finish_within_the_deadline_is_served_whole(make_stack):
    # The burst is sized from the hash time measured just before it, to half of what two
    # single-thread processes can finish within the 5 s deadline: 16 cost-10 hashes on an
    # idle machine (~0.45 s of work per process), fewer when other work slows the machine
    # down. nginx's count cap is the production one (a safety bound well above this).
    stack = make_stack(processes=2, app_env={"HASHD_QUEUE_DEADLINE_MS": 5000})
    fits = 2 * 5.0 / hash_seconds(stack, 10)
    n = max(2, min(16, int(fits / 2)))
    responses = burst(stack, n, 10)
    assert [r.status_code for r in responses] == [200] * n, [r.text for r in responses]
    assert all(r.json()["cost"] == 10 for r in responses)
    stack.assert_not_logged(PASSWORD)


def test_a_larger_burst_gets_fast_503s_with_retry_after(make_stack):
    # Deadline 300 ms and cost 12 (~0.25 s a hash here): each single-thread process admits
    # about two (the second with one hash ahead) and refuses the rest at once.
    stack = make_stack(processes=2, app_env={"HASHD_QUEUE_DEADLINE_MS": 300})
    responses = burst(stack, 24, 12)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    assert len(ok) + len(refused) == 24, [r.status_code for r in responses]
    assert ok and refused
    for r in refused:
        body = r.json()
        assert body["error"] == "overloaded" and body["request_id"] == r.headers["X-Request-Id"]
        ms = int(r.headers["Retry-After-Ms"])
        assert ms >= 1
        # The standard header in whole seconds, rounded up from the finer one.
        assert int(r.headers["Retry-After"]) == max(1, math.ceil(ms / 1000))
    # "At once": a refusal never waited in the queue and took less time in the app than any
    # hash did (an ordering of the app's own measurements, not a wall-clock limit).
    entries = wait_for(lambda: (e := app_entries(stack)) and
                       all(r.headers["X-Request-Id"] in e for r in responses) and e,
                       30, "every request's log line")
    refused_us = [int(entries[r.headers["X-Request-Id"]]["DURATION_US"]) for r in refused]
    hashed_us = [int(entries[r.headers["X-Request-Id"]]["DURATION_US"]) for r in ok]
    assert all(entries[r.headers["X-Request-Id"]]["QUEUE_WAIT_US"] == "0" for r in refused)
    assert max(refused_us) < min(hashed_us), (refused_us, hashed_us)
    # Counted as shed, per process, in the pool's metrics.
    code, text = stack.status("/metrics")
    shed = sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('hashd_shed_requests_total{reason="queue_deadline"}'))
    assert code == 200 and shed == len(refused)
    stack.assert_not_logged(PASSWORD)


def test_probes_are_answered_while_hashes_are_queued(make_stack):
    # One process, one hashing thread, a deadline long enough to queue a few seconds of
    # cost-12 work: /healthz and /readyz must come back while those hashes still wait.
    stack = make_stack(processes=1, app_env={"HASHD_QUEUE_DEADLINE_MS": 60000})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(burst, stack, 8, 12)
        # All 8 are in the app (stub_status counts this status request too).
        wait_for(lambda: stack.requests_in_flight() >= 9, 120, "the burst to be in flight")
        health = stack.get("/healthz")
        ready = stack.get("/readyz")
        still_queued = stack.requests_in_flight() >= 2
        responses = pending.result()
    assert health.status_code == 200 and ready.status_code == 200
    assert still_queued, "the probes came back only after every hash had finished"
    assert [r.status_code for r in responses] == [200] * 8
    entries = app_entries(stack)
    assert entries[health.headers["X-Request-Id"]]["QUEUE_WAIT_US"] == "0"
