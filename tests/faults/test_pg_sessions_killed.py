"""Issue 21 finding 7: PostgreSQL sessions killed mid-transaction.

pg_terminate_backend of every session of the app and the workers (application_name hashd),
in a loop, while two hashd-workers claim and complete and clients enqueue. Each kill lands
wherever the sessions are: between BEGIN and a claim, inside a claim's open transaction,
before or after a COMMIT. Before the fix a lone statement of a transaction was re-sent on a
fresh session (a claim without its BEGIN holds no lock: two workers process one datum; a
COMMIT there "succeeds" having committed nothing), and a client's retry of an enqueue whose
answer was lost queued it again under a new id. What must hold now, read from the store:
every datum stored once (the clients retry with one Idempotency-Key per datum), no id
processed twice, the workers' processed count equal to the rows processed, and every
acknowledged enqueue processed.

Figures (kills, sessions killed, posts, retries, acknowledged, stored, processed, lost,
duplicates) are printed in the fault summary.
"""

import collections
import concurrent.futures
import json
import threading
import time
import uuid

import requests

from harness.hashd_stack import wait_for
from harness.store_servers import open_store
from integration.test_messages import UNLIMITED_NGINX
from integration.test_multivac import UPDATED, Inspector, Worker

KILL_SECONDS = 20.0
KILL_INTERVAL_S = 0.05
CLIENTS = 4
# Clients post until the kill loop ends, at most this many data each.
DATA_PER_CLIENT = 1500
ATTEMPTS = 30
DRAIN_TIMEOUT_S = 180.0
KILL = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'hashd' AND pid <> pg_backend_pid()")


def logged_ids(worker):
    ids = []
    for line in worker.processed():
        ids.append(json.loads(line[line.index("{"):])["DATUM_ID"])
    return ids


def test_sessions_killed_mid_transaction_lose_and_duplicate_nothing(make_stack, counts):
    store = open_store("postgresql")
    try:
        stack = make_stack(processes=2, app_env={"HASHD_STORE": store.url()},
                           nginx=UNLIMITED_NGINX)
        workers = [Worker(stack, "a").start(), Worker(stack, "b").start()]
        stop = threading.Event()
        kills = []

        def killer():
            deadline = time.monotonic() + KILL_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                killed = store.psql(KILL)
                kills.append(int(killed) if killed else 0)
                time.sleep(KILL_INTERVAL_S)
            stop.set()

        tally = collections.Counter()
        acknowledged = {}
        lock = threading.Lock()

        def client(n):
            session = requests.Session()
            for i in range(DATA_PER_CLIENT):
                if stop.is_set():
                    break
                datum = f"client {n} datum {i:03d} {uuid.uuid4().hex[:8]}"
                key = uuid.uuid4().hex
                for attempt in range(ATTEMPTS):
                    try:
                        r = session.post(stack.url("/multivac/data"), data={"data": datum},
                                         headers={"Idempotency-Key": key},
                                         verify=str(stack.cert), timeout=30)
                    except requests.RequestException:
                        with lock:
                            tally["connection_errors"] += 1
                        time.sleep(0.2)
                        continue
                    with lock:
                        tally["posts"] += 1
                        tally["retries"] += attempt > 0
                    if r.status_code == 200 and r.content == UPDATED:
                        with lock:
                            acknowledged[datum] = r.headers.get("X-Datum-Id")
                        break
                    with lock:
                        tally[f"status_{r.status_code}"] += 1
                    time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0) * 0.3)

        kill_thread = threading.Thread(target=killer)
        kill_thread.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                list(pool.map(client, range(CLIENTS)))
        finally:
            stop.set()
            kill_thread.join()

        inspector = Inspector(store)
        wait_for(lambda: inspector.depth() == 0, DRAIN_TIMEOUT_S, "the workers to drain")
        for worker in workers:
            worker.stop()
        processed = inspector.processed()
        by_data = collections.Counter(processed.values())
        ids = [i for worker in workers for i in logged_ids(worker)]
        repeated_ids = [i for i, n in collections.Counter(ids).items() if n > 1]
        duplicates = [d for d, n in by_data.items() if n > 1]
        lost = [d for d in acknowledged if d not in by_data]
        wrong_id = [d for d, i in acknowledged.items() if processed.get(i) != d]

        counts.add("kills", len(kills))
        counts.add("sessions_killed", sum(kills))
        for name in sorted(tally):
            counts.add(name, tally[name])
        counts.add("acknowledged", len(acknowledged))
        counts.add("rows_processed", len(processed))
        counts.add("worker_processed", len(ids))
        counts.add("ids_processed_twice", len(repeated_ids))
        counts.add("data_stored_twice", len(duplicates))
        counts.add("acknowledged_lost", len(lost))

        assert sum(kills) > 0, "no session was killed: the test proved nothing"
        assert not lost, f"acknowledged but never processed: {lost[:5]}"
        assert not duplicates, f"stored twice: {duplicates[:5]}"
        assert not repeated_ids, f"processed twice (a lost claim lock): {repeated_ids[:5]}"
        assert len(ids) == len(processed), "the workers' processed count is not the rows'"
        assert not wrong_id, f"answered an id that is another datum's: {wrong_id[:5]}"
    finally:
        store.cleanup()
