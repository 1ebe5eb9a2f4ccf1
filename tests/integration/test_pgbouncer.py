"""The store role's PgBouncer option (issue 21, finding 11): hashd behind Debian's PgBouncer
in transaction mode, configured by the role's own template (ansible/roles/store/templates/
pgbouncer.ini.j2, rendered with Jinja2 as the template module would, from the role's
defaults plus this machine's ports), works as on PostgreSQL directly: messages stored and
read back, the MultiVAC queue (its SKIP LOCKED transactions) processed by a worker, while
the app's many sessions share a pool of two server connections. Real PostgreSQL, real
PgBouncer, the real app; both servers started and stopped by PID.
"""

import concurrent.futures
import hashlib

from harness.hashd_stack import wait_for
from harness.pgbouncer import PgBouncer
from harness.store_servers import open_store

POOL_SIZE = 2


# Named prepared statements are per server session, so under transaction pooling (PgBouncer
# 1.18, Debian 12, has no protocol-level prepared statements; they came in 1.21) they met other
# sessions' server connections ("prepared statement "hashd_put" already exists") and /readyz
# stayed 503. The app now sends unnamed statements (PQsendQueryParams), which this proves.
def test_hashd_works_through_pgbouncer_in_transaction_mode(make_stack):
    postgres = open_store("postgresql")
    bouncer = PgBouncer(postgres, POOL_SIZE)
    try:
        bouncer.start()
        store = bouncer.url()
        stack = make_stack(processes=2, workers=1,
                           app_env={"HASHD_STORE": store, "HASHD_ACCEPT_THREADS": "2"})
        messages = [f"through pgbouncer {i}" for i in range(40)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda m: stack.post("/messages", json={"message": m}).status_code,
                                     messages))
        assert statuses == [201] * len(messages)
        for m in messages[:5]:
            digest = hashlib.sha256(m.encode()).hexdigest()
            assert stack.get(f"/messages/{digest}").json() == {"message": m}
        for i in range(5):
            assert stack.post("/multivac/data", data={"data": f"datum {i}"}).status_code == 200
        wait_for(lambda: stack.get("/multivac").content == b"datum 0", 120, "the worker to process")
        assert postgres.count() == len(messages)
        servers = postgres.client_sessions()
        print(f"\npgbouncer: app sessions = 2 processes x 2 accept threads + 1 worker, "
              f"PostgreSQL server sessions = {servers} (pool {POOL_SIZE})")
        assert servers <= POOL_SIZE
    finally:
        bouncer.cleanup()
        postgres.cleanup()
