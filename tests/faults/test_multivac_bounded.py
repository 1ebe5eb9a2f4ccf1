"""Issue 21 finding 3, the rest of it: processed MultiVAC data are not kept forever.

hashd 0.1.0 kept every processed datum (LMDB's `processed` database, the Redis hash
hashd:multivac:processed, PostgreSQL's hashd_multivac_processed), so with the backlog
bounded the store still grew by every datum a worker finished, until the disk (or Redis's
memory) was full. Now a completion keeps only the first datum (what GET /multivac serves);
the counts the API reports are the queue's depth and hashd-worker's own counter. Per backend:

- rounds of a full backlog (HASHD_MULTIVAC_MAX_QUEUED data, 4 KiB each), each drained by a
  worker: after every round the store holds no processed datum, its size (LMDB's file, Redis's
  keys and memory, PostgreSQL's relations) stays at about one backlog's, and GET /multivac and
  the metrics' counts stay right;
- a store an older version left full of processed data (written the way it wrote them) is
  pruned by the new worker in bounded batches, while the first datum stays as it was.
"""

import os
import random
import string
import subprocess

from harness.hashd_stack import wait_for
from integration.test_multivac import Inspector, Worker, answer, post_datum

BOUND = 50
ROUNDS = 6
DATUM_BYTES = 4096
LEGACY = 2500  # processed data an older version left: more than two prune batches (1000)


def datum(i):
    """Datum i: 4 KiB that PostgreSQL's TOAST cannot compress away (the sizes stay honest)."""
    head = f"bounded datum {i:05d} "
    return head + "".join(random.Random(i).choices(string.ascii_letters,
                                                   k=DATUM_BYTES - len(head)))


def metric(stack, name):
    for line in stack.status("/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def footprint(store):
    """The store's size for the queue, as its own tools report it."""
    if store.name == "lmdb":
        return {"data_mdb_bytes": os.path.getsize(store.path / "multivac" / "data.mdb")}
    if store.name == "redis":
        info = store.cli("INFO", "memory")
        used = next(int(line.split(":")[1]) for line in info.splitlines()
                    if line.startswith("used_memory:"))
        # Less the workers' liveness keys (one per worker of the last 10 s, not data) and the
        # idempotency keys (one per enqueue's X-Request-Id): both expire by themselves, which
        # is asserted here, so they are bounded by time rather than by what was processed.
        alive = store.cli("--raw", "KEYS", "hashd:multivac:alive:*").split()
        remembered = store.cli("--raw", "KEYS", "hashd:multivac:key:*").split()
        for name in alive + remembered:
            assert int(store.cli("PTTL", name)) != -1, f"{name} never expires"  # -2: gone
        return {"keys": int(store.cli("DBSIZE")) - len(alive) - len(remembered),
                "used_memory": used}
    # What autovacuum does within a minute: deleted rows' space becomes reusable.
    assert store.psql("VACUUM") is not None
    size = store.psql("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                      " WHERE c.relname LIKE 'hashd_multivac_%' AND c.relkind = 'r'")
    return {"relations_bytes": int(size)}


def test_processed_data_are_not_kept_and_the_store_stays_bounded(make_stack, store, counts):
    stack = make_stack(processes=2, app_env={
        "HASHD_STORE": store.url(), "HASHD_MULTIVAC_MAX_QUEUED": str(BOUND)})
    inspector = Inspector(store)
    sizes = []
    for r in range(ROUNDS):
        # A full backlog first, as when the worker was down, then a worker drains it.
        for i in range(r * BOUND, (r + 1) * BOUND):
            assert post_datum(stack, datum(i)).status_code == 200
        worker = Worker(stack, f"round-{r}").start()
        try:
            wait_for(lambda: inspector.depth() == 0, 120, "the worker to drain the backlog")
            wait_for(lambda: metric(stack, "hashd_worker_processed_total") == (r + 1) * BOUND,
                     30, "the worker's counter")
        finally:
            worker.stop()
        kept = inspector.kept()
        sizes.append(footprint(store))
        assert kept == 0, f"round {r}: the store keeps {kept} processed data"
        assert answer(stack) == datum(0).encode()
    assert metric(stack, "hashd_multivac_queue_depth") == 0
    counts.add("backend", store.name)
    counts.add("processed", ROUNDS * BOUND)
    counts.add("after_round_1", sizes[0])
    counts.add(f"after_round_{ROUNDS}", sizes[-1])
    # Space freed by each round is reused by the next: no growth with what was processed (that
    # would be 5 more backlogs, 1 MiB); a slack of two backlogs for the stores' own bookkeeping.
    first, last = sizes[0], sizes[-1]
    for key in first:
        slack = 0 if key == "keys" else 2 * BOUND * DATUM_BYTES
        assert last[key] <= first[key] + slack, sizes


def seed_legacy(store):
    """Processed data and a first datum as hashd 0.1.0 wrote them."""
    first = "legacy first datum"
    if store.name == "lmdb":
        lines = ["VERSION=3", "format=bytevalue", "type=btree", "HEADER=END"]
        for i in range(1, LEGACY + 1):
            lines += [" " + str(i).encode().hex(), " " + datum(i).encode().hex()]
        lines.append("DATA=END")
        env = str(store.path / "multivac")
        subprocess.run(["mdb_load", "-s", "processed", env], input="\n".join(lines) + "\n",
                       text=True, check=True, timeout=60)
        subprocess.run(["mdb_load", "-s", "meta", env], check=True, timeout=60, text=True,
                       input="VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n "
                       f"{b'first'.hex()}\n {first.encode().hex()}\nDATA=END\n")
    elif store.name == "redis":
        store.cli("EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('HSET', KEYS[1], i,"
                  " ARGV[2] .. i) end redis.call('SET', KEYS[2], ARGV[3]) return 1", "2",
                  "hashd:multivac:processed", "hashd:multivac:first", str(LEGACY),
                  "x" * DATUM_BYTES, first)
    else:
        assert store.psql(
            "CREATE TABLE IF NOT EXISTS hashd_multivac_processed (id bigint PRIMARY KEY, data bytea NOT NULL,"
            " processed_at timestamptz NOT NULL DEFAULT clock_timestamp());"
            f" INSERT INTO hashd_multivac_processed (id, data) SELECT i, convert_to(repeat('x',"
            f" {DATUM_BYTES}), 'UTF8') FROM generate_series(1, {LEGACY}) AS i;"
            f" INSERT INTO hashd_multivac_first (id, data) VALUES (1, '{first}')") is not None
    return first


def test_an_older_store_s_processed_data_are_pruned_in_batches(make_stack, store, counts):
    stack = make_stack(processes=1, app_env={"HASHD_STORE": store.url()})
    assert answer(stack) == b"INSUFFICIENT DATA FOR MEANINGFUL ANSWER."  # the app made its tables
    first = seed_legacy(store)
    inspector = Inspector(store)
    assert inspector.kept() == LEGACY
    before = footprint(store)
    worker = Worker(stack).start()
    try:
        wait_for(lambda: inspector.kept() == 0, 60, "the worker to prune the old processed data")
        wait_for(lambda: '"PRUNED":"%d"' % LEGACY in worker.log.read_text(), 30,
                 "the worker to log the end of the pruning")
        assert answer(stack) == first.encode()
        assert post_datum(stack, "after the pruning").status_code == 200
        wait_for(lambda: inspector.depth() == 0, 60, "the new datum processed")
        assert answer(stack) == first.encode()
    finally:
        worker.stop()
    log = worker.log.read_text()
    counts.add("backend", store.name)
    counts.add("legacy_processed", LEGACY)
    counts.add("before", before)
    counts.add("after", footprint(store))
    assert log.count("deleting the processed data an older version kept") == 1, log[-3000:]
