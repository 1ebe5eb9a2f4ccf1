"""Issue 21 finding 2: hashd-worker when completing a datum keeps failing.

The store refuses the completion (PostgreSQL: a trigger on hashd_multivac_first raising
SQLSTATE 53100 disk_full, which is exactly what a full disk answers the INSERT), while claims
still succeed: the worst case, because the same head datum is claimed again at once. Before
the fix the worker spun: a claim and a failed completion back to back, three log lines a turn,
a core and a journald flood. What must hold now: the worker backs off (exponentially, capped),
logs a bounded number of lines, and reports the failures in /metrics
(hashd_worker_failed_total, hashd_worker_consecutive_failures); once the store accepts again
the datum is processed, by itself, without a restart.

Figures (CPU of the worker and its log lines over the window) are printed in the fault
summary; the bounds asserted are gross ones (a spinning worker is far above them).
"""

import os
import time

from harness.hashd_stack import wait_for
from harness.store_servers import open_store
from integration.test_multivac import Inspector, Worker, answer, post_datum

WINDOW_S = 8.0
TICKS = os.sysconf("SC_CLK_TCK")

FAIL = """
CREATE OR REPLACE FUNCTION hashd_test_disk_full() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hashd_test_disk_full BEFORE INSERT ON hashd_multivac_first
FOR EACH ROW EXECUTE FUNCTION hashd_test_disk_full();
"""


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def metric(stack, name):
    for line in stack.status("/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_failing_completion_backs_off_with_bounded_logs_and_recovers(make_stack, counts):
    store = open_store("postgresql")
    try:
        stack = make_stack(processes=1, app_env={"HASHD_STORE": store.url()})
        assert post_datum(stack, "the datum that cannot be completed").status_code == 200
        # The tables exist (the app made them); now completions fail like on a full disk.
        assert store.psql(FAIL) is not None
        worker = Worker(stack).start()
        try:
            wait_for(lambda: (metric(stack, "hashd_worker_failed_total") or 0) >= 1, 30,
                     "the first failed completion")
            lines_before = len(worker.log.read_text().splitlines())
            failed_before = metric(stack, "hashd_worker_failed_total")
            cpu_before = cpu_seconds(worker.proc.pid)
            time.sleep(WINDOW_S)
            cpu = cpu_seconds(worker.proc.pid) - cpu_before
            lines = len(worker.log.read_text().splitlines()) - lines_before
            wait_for(lambda: metric(stack, "hashd_worker_failed_total") > failed_before, 30,
                     "the metrics file to be rewritten")
            failed = metric(stack, "hashd_worker_failed_total") - failed_before
            streak = metric(stack, "hashd_worker_consecutive_failures")
            counts.add("window_s", WINDOW_S)
            counts.add("worker_cpu_percent", round(100 * cpu / WINDOW_S, 1))
            counts.add("log_lines", lines)
            counts.add("failed_completions", failed)
            counts.add("consecutive_failures", streak)
            assert inspector_depth(store) == 1, "the datum stays queued"
            assert cpu / WINDOW_S < 0.05, f"the worker used {cpu:.2f} s of CPU in {WINDOW_S} s"
            assert lines <= 4, worker.log.read_text()[-3000:]
            assert failed <= 10, f"{failed} completions in {WINDOW_S} s: no back-off"
            assert streak is not None and streak >= 1

            store.psql("DROP TRIGGER hashd_test_disk_full ON hashd_multivac_first")
            fixed_at = time.monotonic()
            wait_for(lambda: answer(stack) != b"INSUFFICIENT DATA FOR MEANINGFUL ANSWER.", 60,
                     "the datum to be processed once the store accepts it")
            counts.add("recovered_s", round(time.monotonic() - fixed_at, 1))
            assert inspector_depth(store) == 0
            wait_for(lambda: metric(stack, "hashd_worker_consecutive_failures") == 0, 30,
                     "the failure streak to be reported over")
        finally:
            worker.stop()
    finally:
        store.cleanup()


def inspector_depth(store):
    return Inspector(store).depth()
