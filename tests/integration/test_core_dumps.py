"""Issue 21 finding 9: no process that holds plaintext passwords may dump core. Each of
hashd-fcgi and hashd-worker sets RLIMIT_CORE 0 and PR_SET_DUMPABLE 0 at start
(fcgi-app/src/core/no_core_dumps.h); the kernel's view of the running process says so:
/proc/<pid>/limits for the limit; for the dumpable flag, /proc/<pid>/status's
"CoreDumping"-style fields do not show it, so the unit test NoCoreDumps covers the prctl."""

import subprocess

from harness.hashd_stack import wait_for


def core_limit(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def test_both_binaries_run_with_a_core_limit_of_zero(make_stack, tmp_path):
    stack = make_stack(processes=1)
    assert stack.get("/healthz").status_code == 200
    assert core_limit(stack.serving_pid(1)) == ["0", "0"]
    worker = subprocess.Popen([str(stack.worker_binary)], env={
        "HASHD_STORE": f"lmdb:{tmp_path}/store", "HASHD_RUNTIME_DIR": str(tmp_path),
        "HASHD_LOG": "stderr", "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE, text=True)
    try:
        # Its metrics file is written from its loop, after start-up.
        wait_for(lambda: (tmp_path / "hashd-worker.prom").exists(), 10, "hashd-worker to start")
        assert core_limit(worker.pid) == ["0", "0"]
    finally:
        worker.terminate()
        worker.wait(timeout=10)
