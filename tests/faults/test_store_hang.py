"""A hung store: Redis or PostgreSQL frozen with SIGSTOP (not stopped, not killed).

A frozen server is the nasty case: its kernel still accepts TCP connections and buffers
what is sent, so nothing fails fast; only hashd's own timeout (HASHD_STORE_TIMEOUT_MS) can
end a request. What must hold (docs/persistence.md "When the store is down"):
/messages answers 503 store_unavailable within the store timeout, hashing keeps working,
/healthz stays 200, and after SIGCONT everything recovers without a restart.

"Within the timeout" is checked on the app's own measure of each request (DURATION_US in
its log), with slack for a loaded machine: the bar is 1.5x the timeout, so a request
that spent the timeout twice (say on a stale connection and then again on a fresh one)
fails it while scheduling noise does not.
"""

import concurrent.futures
import json
import os
import signal
import time


from harness.hashd_stack import wait_for
from load import digest_of
from harness.store_servers import _children

STORE_TIMEOUT_MS = 2000
RECOVERY_TIMEOUT_S = 30.0
HASH_PASSWORD = "hung-store-hash-password-77f"


def freeze(store):
    """SIGSTOPs the server and every process of it (PostgreSQL's backends too)."""
    pids = [store.proc.pid, *_children(store.proc.pid)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def thaw(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def post_message(stack, message):
    return stack.post("/messages", data=json.dumps({"message": message}),
                      headers={"Content-Type": "application/json"}, timeout=120)


def app_duration_ms(stack, request_id):
    """The app's own DURATION_US for one request, from its JSON log lines."""
    def find():
        for path in stack.log_dir.glob("hashd-*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if request_id in line and '"DURATION_US"' in line:
                    entry = json.loads(line)
                    if entry.get("REQUEST_ID") == request_id:
                        return int(entry["DURATION_US"]) / 1000
        return None
    return wait_for(find, 10, f"the app's log line of {request_id}")


def test_hung_store_answers_503_within_the_timeout_and_recovers(make_stack, network_store,
                                                                counts):
    store = network_store
    stack = make_stack(processes=2, app_env={
        "HASHD_STORE": store.url(), "HASHD_STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS),
        "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})
    pids = {n: stack.pid(n) for n in (1, 2)}
    # Every process and thread holds a connection before the freeze (a stale connection is
    # the case that must not cost the timeout twice).
    stored = {}
    for i in range(6):
        message = f"stored before the hang {i}"
        r = post_message(stack, message)
        assert r.status_code == 201, r.text
        stored[digest_of(message)] = message

    frozen = freeze(store)
    statuses, app_ms, client_ms = [], [], []
    hashes_ok = 0

    def store_request(i):
        started = time.monotonic()
        if i % 2 == 0:
            r = post_message(stack, f"written during the hang {i}")
        else:
            r = stack.get(f"/messages/{next(iter(stored))}", timeout=120)
        return r, round((time.monotonic() - started) * 1000)

    try:
        # First two at once, so that least_conn gives one to each process: both meet the
        # hang on a connection that was fine a moment ago. Then one at a time.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = list(pool.map(store_request, [0, 1]))
        for r, ms in first + [store_request(i) for i in range(2, 8)]:
            client_ms.append(ms)
            statuses.append(r.status_code)
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "store_unavailable"
            assert int(r.headers["Retry-After"]) >= 1
            app_ms.append(round(app_duration_ms(stack, r.headers["X-Request-Id"])))
        for _ in range(4):
            h = stack.post("/v1/hash", json={"password": HASH_PASSWORD, "cost": 4}, timeout=120)
            assert h.status_code == 200, h.text
            hashes_ok += 1
        assert stack.get("/healthz").status_code == 200
        ready = stack.get("/readyz", timeout=120)
        assert ready.status_code == 503, ready.text
    finally:
        thaw(frozen)

    counts.add("backend", store.name)
    counts.add("timeout_ms", STORE_TIMEOUT_MS)
    counts.add("sent_during_hang", len(statuses) + hashes_ok)
    counts.add("messages_503", statuses.count(503))
    counts.add("hashes_200", hashes_ok)
    counts.add("app_ms", app_ms)
    counts.add("client_ms", client_ms)

    # Recovery: every process's connection comes back by itself (each backs off up to 2 s),
    # so each read is retried until it succeeds, within a bound.
    thawed_at = time.monotonic()
    wait_for(lambda: post_message(stack, "written after the hang").status_code == 201,
             RECOVERY_TIMEOUT_S, "POST /messages to succeed after SIGCONT")
    stored[digest_of("written after the hang")] = "written after the hang"
    for digest, message in stored.items():
        r = wait_for(lambda: (r := stack.get(f"/messages/{digest}")).status_code != 503 and r,
                     RECOVERY_TIMEOUT_S, f"GET /messages/{digest} after SIGCONT")
        assert r.status_code == 200 and r.json() == {"message": message}, r.text
    wait_for(lambda: all(stack.get("/readyz").status_code == 200 for _ in range(4)),
             RECOVERY_TIMEOUT_S, "/readyz to answer 200 from every process")
    counts.add("recovered_ms", round((time.monotonic() - thawed_at) * 1000))
    counts.add("lost", 0)

    assert max(app_ms) <= 1.5 * STORE_TIMEOUT_MS, (
        f"a request took {max(app_ms)} ms in the app, more than the store timeout "
        f"({STORE_TIMEOUT_MS} ms) allows: {app_ms}")
    assert {n: stack.pid(n) for n in (1, 2)} == pids, "recovery must not need a restart"
    stack.assert_not_logged(HASH_PASSWORD, *stored.values())


def test_a_thread_waiting_on_the_hung_store_leaves_probes_and_hashes_accepted(
        make_stack, network_store):
    """One process, so that nginx has nowhere else to send a probe: while one accepting
    thread waits on the frozen store (up to the store timeout), the other must be the one in
    accept(). Accepting threads take turns (fcgi-app/src/server/accept_turn.h); a thread that kept
    its turn across a store call would hold every probe and hash for the whole timeout."""
    store = network_store
    stack = make_stack(processes=1, app_env={
        "HASHD_STORE": store.url(), "HASHD_STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS),
        "HASHD_ACCEPT_THREADS": "2", "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})
    message = "stored before the freeze"
    assert post_message(stack, message).status_code == 201
    frozen = freeze(store)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            blocked = pool.submit(lambda: stack.get(f"/messages/{digest_of(message)}",
                                                    timeout=120))
            time.sleep(0.3)  # the read is waiting on the store by now
            assert not blocked.done(), "the read did not wait on the frozen store"
            probe_started = time.monotonic()
            health = stack.get("/healthz", timeout=120)
            probe_s = time.monotonic() - probe_started
            hashed = stack.post("/v1/hash", json={"password": HASH_PASSWORD, "cost": 4},
                                timeout=120)
            both_s = time.monotonic() - probe_started
            read = blocked.result()
            read_s = time.monotonic() - started
    finally:
        thaw(frozen)
    assert health.status_code == 200, health.text
    assert hashed.status_code == 200, hashed.text
    assert read.status_code == 503 and read.json()["error"] == "store_unavailable", read.text
    # The read took about the timeout; the probe and the hash a small part of it.
    assert read_s >= STORE_TIMEOUT_MS / 1000 * 0.8, read_s
    assert both_s < STORE_TIMEOUT_MS / 1000 / 2, (probe_s, both_s)


def store_ops(stack, op):
    """hashd_store_operations_total of `op` on the configured backend, by result."""
    text = stack.get("/metrics", timeout=120).text
    found = {}
    for line in text.splitlines():
        if line.startswith("hashd_store_operations_total{") and f'op="{op}"' in line:
            result = line.split('result="')[1].split('"')[0]
            found[result] = found.get(result, 0) + float(line.rsplit(" ", 1)[1])
    return found


def test_readyz_and_metrics_on_a_hung_store_leave_probes_and_hashes_accepted(
        make_stack, network_store, counts):
    """Issue 21 finding 1: /readyz (once its cache is stale) and every /metrics scrape ask the
    store (Check(), the queue's Stats()). Such a call must pass the accept turn on like any
    other store call, or one process with a frozen store accepts nothing, probes and hashes
    included, for the store timeout, about once a second. And it must be counted in the store
    metrics (op "check" and "stats"), so that a hung store with no /messages traffic is seen."""
    store = network_store
    stack = make_stack(processes=1, app_env={
        "HASHD_STORE": store.url(), "HASHD_STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS),
        "HASHD_ACCEPT_THREADS": "2", "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})
    assert stack.get("/readyz").status_code == 200
    assert stack.get("/metrics").status_code == 200
    before = {op: store_ops(stack, op) for op in ("check", "stats")}
    frozen = freeze(store)
    timings = {}
    answers = {}
    try:
        for path in ("/readyz", "/metrics"):
            time.sleep(1.2)  # past /readyz's one-second cache
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                blocked = pool.submit(lambda: stack.get(path, timeout=120))
                time.sleep(0.3)  # its store call is waiting on the frozen store by now
                assert not blocked.done(), f"{path} did not wait on the frozen store"
                probe_started = time.monotonic()
                health = stack.get("/healthz", timeout=120)
                hashed = stack.post("/v1/hash", json={"password": HASH_PASSWORD, "cost": 4},
                                    timeout=120)
                both_s = time.monotonic() - probe_started
                answers[path] = blocked.result()
                blocked_s = time.monotonic() - started
            assert health.status_code == 200, health.text
            assert hashed.status_code == 200, hashed.text
            timings[path] = (round(blocked_s * 1000), round(both_s * 1000))
    finally:
        thaw(frozen)
    counts.add("backend", store.name)
    counts.add("timeout_ms", STORE_TIMEOUT_MS)
    for path, (blocked_ms, both_ms) in timings.items():
        counts.add(f"{path}_ms", blocked_ms)
        counts.add(f"healthz+hash_during_{path}_ms", both_ms)
    assert answers["/readyz"].status_code == 503, answers["/readyz"].text
    # /metrics still answers, without the queue's figures it could not read.
    assert answers["/metrics"].status_code == 200
    assert "hashd_requests_total" in answers["/metrics"].text
    for path, (blocked_ms, both_ms) in timings.items():
        assert blocked_ms >= STORE_TIMEOUT_MS * 0.8, (path, timings)
        assert both_ms < STORE_TIMEOUT_MS / 2, (path, timings)
    # Both calls are in the store metrics, as errors.
    wait_for(lambda: stack.get("/readyz").status_code == 200, RECOVERY_TIMEOUT_S,
             "/readyz to answer 200 after SIGCONT")
    after = {op: store_ops(stack, op) for op in ("check", "stats")}
    counts.add("store_ops_before", before)
    counts.add("store_ops_after", after)
    for op in ("check", "stats"):
        assert after[op].get("error", 0) >= before[op].get("error", 0) + 1, (op, before, after)
        assert after[op].get("ok", 0) >= 1, (op, after)
