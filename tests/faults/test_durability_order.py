"""Durability that a test can see: the store's flush happens before the 201 leaves the process.

kill -9 leaves the page cache intact, so a crash test passes just as well without any
flush. What a 201 promises is an order, so the test looks at the order itself: `strace -f`
(Debian's strace) on the worker, and on the store's own processes, records every write,
flush and socket call while one new message is POSTed, and the trace must show, per backend:

- LMDB (embedded): every write of the commit to data.mdb is durable before the worker
  writes "Status: 201" to its FastCGI socket: the data pages by an fdatasync that returned
  before the reply, the meta page by its O_DSYNC descriptor (LMDB opens the meta file
  descriptor with O_DSYNC; the test reads the flag from /proc/PID/fdinfo).
- Redis: with the configuration of the test's Redis (appendonly yes, appendfsync always,
  read back with CONFIG GET), the server writes the SET to its AOF and fdatasyncs it before
  it writes "+OK" to hashd's connection, and hashd reads that "+OK" before it writes the
  201. Redis's promise is its configuration's: with appendfsync everysec (its default) the
  reply comes before the flush and a crash of the Redis host loses up to a second of
  acknowledged messages (docs/persistence.md, "Durability"); this test pins down that hashd waits for the
  reply, and what the reply means under the configuration it checks.
- PostgreSQL: hashd reads the CommandComplete of its INSERT ("INSERT 0 1"; a single-
  statement transaction, so that is the COMMIT) before it writes the 201, and the server
  (the backend or its WAL writer, both traced) fdatasyncs the WAL after it wrote the
  commit record and before it sends CommandComplete (synchronous_commit = on).

Each check would fail if the order were reversed (test_checker_rejects_a_reply_written_
before_the_flush runs the same checker over such a trace).
"""

import json
import pathlib
import signal
import subprocess
import time

import pytest

from harness.hashd_stack import wait_for
from syscall_trace import READS, WRITES, first, parse, unflushed_writes

O_DSYNC = 0o10000
STRACE_CALLS = ",".join(["read", "readv", "recvfrom", "recvmsg", "write", "writev", "pwrite64",
                         "pwritev", "pwritev2", "sendto", "sendmsg", "fdatasync", "fsync",
                         "sync_file_range", "msync"])


def tracer_of(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("TracerPid:")))


class Strace:
    """strace -f attached to running processes (each with all its threads); stop() detaches."""

    def __init__(self, pids, out):
        self.out = out
        self.pids = pids
        argv = ["strace", "-f", "-tt", "-yy", "-s", "256", "-e", f"trace={STRACE_CALLS}",
                "-o", str(out)]
        for pid in pids:
            argv += ["-p", str(pid)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        wait_for(lambda: all(self._traced(pid) for pid in pids), 30, "strace to attach")

    def _traced(self, pid):
        if self.proc.poll() is not None:
            raise AssertionError(f"strace exited: {self.proc.stderr.read().decode()}")
        threads = list(pathlib.Path(f"/proc/{pid}/task").iterdir())
        return all(tracer_of(int(t.name)) == self.proc.pid for t in threads)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # detaches and leaves the processes running
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.out.read_text(errors="replace")


def post_message(stack, message):
    r = stack.post("/messages", data=json.dumps({"message": message}),
                   headers={"Content-Type": "application/json"}, timeout=120)
    assert r.status_code == 201, r.text
    return r


def the_201(calls, app_pid_threads):
    return first(calls, lambda c: c.pid in app_pid_threads and c.name in WRITES
                 and "Status: 201" in c.args, "write of \"Status: 201\" by the worker")


def threads_of(pid):
    return {int(t.name) for t in pathlib.Path(f"/proc/{pid}/task").iterdir()}


def dsync_fds(pid, path_part):
    """The worker's file descriptors on a file whose path contains path_part, opened with
    O_DSYNC (every write through them is durable when it returns)."""
    found = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
            flags = pathlib.Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text().split("flags:")[1]
        except (FileNotFoundError, IndexError):
            continue
        if path_part in target and int(flags.split()[0], 8) & O_DSYNC:
            found.add(int(fd.name))
    return found


def traced_post(stack, store, tmp_path, extra_pids=()):
    """POSTs one new message while strace records the worker and extra_pids; returns the
    parsed calls, the worker's thread ids and the message."""
    app = stack.pid(1)
    post_message(stack, "warm-up: connection, table and prepared statements")
    message = f"durable message {time.time_ns()}"
    tracer = Strace([app, *extra_pids], tmp_path / f"strace-{store.name}.txt")
    try:
        post_message(stack, message)
        time.sleep(0.5)  # the server's last calls after the reply (irrelevant, but complete)
    finally:
        text = tracer.stop()
    return parse(text), threads_of(app), message, text


def check_lmdb(stack, store, tmp_path, counts):
    app = stack.pid(1)
    calls, app_threads, _, _ = traced_post(stack, store, tmp_path)
    reply = the_201(calls, app_threads)
    meta_fds = dsync_fds(app, "data.mdb")
    assert meta_fds, "LMDB's meta page descriptor is not O_DSYNC: a meta write is not durable"

    def is_data_file(c):
        return c.pid in app_threads and c.fd_path().endswith("/data.mdb")

    def through_dsync_fd(c):
        return int(c.args.split("<", 1)[0]) in meta_fds

    writes = [c for c in calls if c.name in WRITES and is_data_file(c) and c.start < reply.start]
    flushes = [c for c in calls if c.name == "fdatasync" and is_data_file(c)
               and c.end is not None and c.end < reply.start]
    counts.add("lmdb_writes_before_201", len(writes))
    counts.add("lmdb_fdatasyncs_before_201", len(flushes))
    counts.add("lmdb_dsync_meta_writes", sum(1 for w in writes if through_dsync_fd(w)))
    assert writes, "the commit wrote nothing to data.mdb before the 201"
    assert flushes, "no fdatasync of data.mdb returned before the 201"
    assert not unflushed_writes(calls, reply, is_data_file, through_dsync_fd)


def check_redis(stack, store, tmp_path, counts):
    config = {k: store.cli("CONFIG", "GET", k).splitlines()[1] for k in ("appendonly", "appendfsync")}
    counts.add("redis_config", config)
    assert config == {"appendonly": "yes", "appendfsync": "always"}
    server = store.proc.pid
    calls, app_threads, message, _ = traced_post(stack, store, tmp_path, [server])
    server_threads = threads_of(server)
    reply = the_201(calls, app_threads)

    def is_aof(c):
        return c.pid in server_threads and ".aof" in c.fd_path()

    aof_write = first(calls, lambda c: c.name in WRITES and is_aof(c) and message in c.args,
                      "Redis writing the SET to its AOF")
    ok_sent = first(calls, lambda c: c.pid in server_threads and c.name in WRITES
                    and c.start > aof_write.start and c.args.split(", ", 1)[1].startswith('"+OK'),
                    "Redis writing +OK to hashd")
    ok_read = first(calls, lambda c: c.pid in app_threads and c.name in READS
                    and c.end is not None and c.end > ok_sent.start and '"+OK' in c.args,
                    "hashd reading +OK")
    counts.add("redis_order", "aof write < fdatasync < +OK sent < +OK read < 201 written")
    assert not unflushed_writes(calls, ok_sent, is_aof), "Redis answered before its AOF fsync"
    assert ok_read.end < reply.start, "hashd wrote the 201 before Redis's reply arrived"


def check_postgresql(stack, store, tmp_path, counts):
    backend = int(store.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'hashd'"))
    walwriter = int(store.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'"))
    sync_commit = store.psql("SHOW synchronous_commit")
    counts.add("postgresql_synchronous_commit", sync_commit)
    assert sync_commit == "on"
    calls, app_threads, _, _ = traced_post(stack, store, tmp_path, [backend, walwriter])
    reply = the_201(calls, app_threads)
    server = {backend, walwriter}

    def is_wal(c):
        return c.pid in server and "/pg_wal/" in c.fd_path()

    complete_sent = first(calls, lambda c: c.pid == backend and c.name in WRITES
                          and "INSERT 0 1" in c.args, "the backend sending INSERT 0 1")
    complete_read = first(calls, lambda c: c.pid in app_threads and c.name in READS
                          and c.end is not None and c.end > complete_sent.start
                          and "INSERT 0 1" in c.args,
                          "hashd reading INSERT 0 1")
    wal_writes = [c for c in calls if c.name in WRITES and is_wal(c)
                  and c.start < complete_sent.start]
    counts.add("postgresql_wal_writes_before_complete", len(wal_writes))
    counts.add("postgresql_order",
               "wal write < wal fdatasync < CommandComplete sent < read < 201 written")
    assert wal_writes, "no WAL write before the commit was acknowledged"
    assert not unflushed_writes(calls, complete_sent, is_wal), (
        "PostgreSQL acknowledged the commit before flushing its WAL")
    assert complete_read.end < reply.start, "hashd wrote the 201 before the COMMIT completed"


CHECKS = {"lmdb": check_lmdb, "redis": check_redis, "postgresql": check_postgresql}


def test_store_flush_happens_before_the_201_leaves_the_worker(make_stack, store, tmp_path,
                                                              counts):
    # One process with one accepting thread (store writes run on the accepting threads, each
    # with its own store connection): the warm-up and the traced POST share one connection,
    # so the PostgreSQL backend to trace is the one that exists before the trace starts.
    stack = make_stack(processes=1,
                       app_env={"HASHD_STORE": store.url(), "HASHD_ACCEPT_THREADS": "1"})
    counts.add("backend", store.name)
    CHECKS[store.name](stack, store, tmp_path, counts)


REVERSED_TRACE = """\
100 00:00:00.000001 writev(5</d/data.mdb>, [{iov_base="page", iov_len=4096}], 1) = 4096
100 00:00:00.000002 write(7<UNIX-STREAM:[1->2,"/run/hashd-1.sock"]>, "\\1\\6Status: 201 Created\\r\\n", 27) = 27
100 00:00:00.000003 fdatasync(5</d/data.mdb>) = 0
"""
IN_ORDER_TRACE = """\
100 00:00:00.000001 writev(5</d/data.mdb>, [{iov_base="page", iov_len=4096}], 1) = 4096
101 00:00:00.000002 fdatasync(5</d/data.mdb> <unfinished ...>
100 00:00:00.000003 futex(0x1, FUTEX_WAIT, 0, NULL) = 0
101 00:00:00.000004 <... fdatasync resumed>) = 0
100 00:00:00.000005 write(7<UNIX-STREAM:[1->2,"/run/hashd-1.sock"]>, "\\1\\6Status: 201 Created\\r\\n", 27) = 27
"""


@pytest.mark.parametrize("trace,in_order", [(REVERSED_TRACE, False), (IN_ORDER_TRACE, True)])
def test_checker_rejects_a_reply_written_before_the_flush(trace, in_order):
    calls = parse(trace)
    reply = the_201(calls, {100})
    problems = unflushed_writes(calls, reply, lambda c: c.fd_path() == "/d/data.mdb")
    assert (not problems) == in_order
