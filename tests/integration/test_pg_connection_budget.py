"""The PostgreSQL connection budget of a group (issue 21, finding 11; docs/security.md,
"PostgreSQL connection budget"): a group of hashd "VMs" (local stacks: P processes, T
accepting threads, one hashd-worker each) on one real PostgreSQL.

- A VM's sessions are counted once, as the runbook says to (pg_stat_activity), and stay
  within the formula's bound P x T x s + w with s, w <= 2.
- At the budget: max_connections = VMs x the sessions of one VM (+ this test's own psql), the
  whole group under load answers every request (0 errors).
- Past it (half the budget): requests on the sessions that could not open fail, as 503
  store_unavailable JSON, and no acknowledged message is lost.
- Through PgBouncer in transaction mode (the role's template), the same group on that
  half-budget server: 0 errors again, the server holding at most the pool.

Real PostgreSQL, PgBouncer and the app; everything started and stopped by PID.
"""

import concurrent.futures
import hashlib

import pytest

from harness.hashd_stack import wait_for
from harness.pgbouncer import PgBouncer
from harness.store_servers import open_store

pytestmark = pytest.mark.slow

VMS = 3
PROCESSES = 2
ACCEPT_THREADS = 2
# Per VM and round; enough concurrency that every accepting thread of every process serves.
MESSAGES = 48
CONCURRENCY = 12
MONITOR = 1  # this test's psql, counting sessions


def start_group(make_stack, store_url, count, ready_path="/readyz"):
    return [make_stack(processes=PROCESSES, workers=1, ready_path=ready_path,
                       app_env={"HASHD_STORE": store_url,
                                "HASHD_ACCEPT_THREADS": str(ACCEPT_THREADS)})
            for _ in range(count)]


def load(group, tag):
    """Messages and MultiVAC data posted to every VM at once. Returns the (status, body) of
    each message post, with the message, and the statuses of the data posts."""
    jobs = [(vm, f"{tag} vm{i} message {n}") for i, vm in enumerate(group) for n in range(MESSAGES)]

    def post(job):
        vm, message = job
        r = vm.post("/messages", json={"message": message})
        return message, r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY * len(group)) as pool:
        results = list(pool.map(post, jobs))
        data = list(pool.map(lambda vm: vm.post("/multivac/data", data={"data": f"{tag}"}).status_code,
                             [vm for vm in group for _ in range(3)]))
    # /readyz and /metrics reach the store too (the readiness check, the queue's stats).
    for vm in group:
        vm.get("/readyz")
        vm.get("/metrics")
    return results, data


def assert_served(results, data):
    failed = [(m, status, body) for m, status, body in results if status != 201]
    assert failed == []
    assert data == [200] * len(data)


def test_group_at_its_connection_budget_past_it_and_through_pgbouncer(make_stack):
    postgres = open_store("postgresql")
    bouncer = None
    try:
        # One VM, counted as the runbook says.
        one = start_group(make_stack, postgres.url(), 1)
        assert_served(*load(one, "count"))
        wait_for(lambda: one[0].get("/multivac").status_code == 200, 60, "the worker to process")
        per_vm = postgres.client_sessions()
        bound = PROCESSES * ACCEPT_THREADS * 2 + 2
        print(f"\nconnection budget: one VM (P={PROCESSES}, T={ACCEPT_THREADS}, 1 worker) holds "
              f"{per_vm} sessions (formula bound {bound})")
        assert 0 < per_vm <= bound
        for vm in one:
            vm.stop()

        # At the budget.
        budget = VMS * per_vm
        postgres.stop()
        postgres.max_connections = budget + MONITOR
        postgres.start()
        group = start_group(make_stack, postgres.url(), VMS)
        assert_served(*load(group, "at"))
        held = postgres.client_sessions()
        print(f"connection budget: {VMS} VMs on max_connections {budget} (+{MONITOR}): "
              f"0 errors, {held} sessions")
        assert held <= budget
        for vm in group:
            vm.stop()

        # Past it: half the budget.
        postgres.stop()
        postgres.max_connections = budget // 2 + MONITOR
        postgres.start()
        group = start_group(make_stack, postgres.url(), VMS, ready_path="/healthz")
        results, _ = load(group, "past")
        failed = [(status, body.get("error")) for _, status, body in results if status != 201]
        print(f"connection budget: {VMS} VMs on max_connections {budget // 2}: "
              f"{len(failed)} of {len(results)} message posts refused")
        assert failed, "the group fit in half its budget: the budget is not what the docs say"
        assert set(failed) == {(503, "store_unavailable")}
        acknowledged = [m for m, status, _ in results if status == 201]
        for vm in group:
            vm.stop()

        # Through PgBouncer on the same half-budget server.
        bouncer = PgBouncer(postgres, pool_size=budget // 2).start()
        group = start_group(make_stack, bouncer.url(), VMS)
        assert_served(*load(group, "bouncer"))
        held = postgres.client_sessions()
        print(f"connection budget: {VMS} VMs through PgBouncer (pool {budget // 2}) on "
              f"max_connections {budget // 2}: 0 errors, {held} server sessions")
        assert held <= budget // 2
        # What was acknowledged past the budget is there.
        for m in acknowledged[:20]:
            digest = hashlib.sha256(m.encode()).hexdigest()
            assert group[0].get(f"/messages/{digest}").json() == {"message": m}
        assert postgres.count() == MESSAGES + 2 * VMS * MESSAGES + len(acknowledged)
    finally:
        if bouncer is not None:
            bouncer.cleanup()
        postgres.cleanup()
