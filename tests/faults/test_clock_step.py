"""A wall-clock step while requests wait must not make the queue deadline shed everything
(a step forward) or nothing (a step back).

How the clock is stepped without touching the machine's: the whole stack (run-local,
nginx, spawn-fcgi, hashd-fcgi) runs under Debian's libfaketime (LD_PRELOAD), whose clock
is "real time + the offset in a file" (FAKETIME_TIMESTAMP_FILE, re-read on every call with
FAKETIME_NO_CACHE=1). Rewriting the file from "+0" to "+3600" steps the wall clock of every
process of the stack at once, as an NTP step or an operator's `date -s` would step a VM's,
while CLOCK_MONOTONIC stays untouched (FAKETIME_DONT_FAKE_MONOTONIC=1), as it does in a
real step. The machine's clock and every other program on it are unaffected. (A time
namespace cannot do this: it offsets CLOCK_MONOTONIC and CLOCK_BOOTTIME, never
CLOCK_REALTIME.)

What must hold: the time a request waited is measured on a monotonic clock. A step
forward while a burst that fits in the deadline waits must not shed it, and a step back
while a burst far beyond the deadline waits must still shed part of it (and serve part).
Each burst is sent twice: once straddling the step and once after it.
"""

import concurrent.futures
import glob
import json
import os
import pathlib
import shutil
import tempfile
import threading

import pytest
import requests

from harness.hashd_stack import fcgi_bin, wait_for


def libfaketime():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.fail("libfaketime is missing (scripts/install-deps installs it)")
    return found[0]


# Runs the real program with libfaketime. nginx hands its workers an empty environment
# except the variables its `env` directives name: those are added with -g (nginx keeps only
# the last -g, so an existing one is extended).
WRAPPER = """#!/usr/bin/python3
import os, sys
real, faked = {real!r}, {faked!r}
args = sys.argv[1:]
if os.path.basename(real) == "nginx":
    keep = " ".join(f"env {{name}};" for name in faked)
    if "-g" in args:
        args[args.index("-g") + 1] += " " + keep
    else:
        args += ["-g", keep]
os.execve(real, [real, *args], {{**os.environ, **faked}})
"""


@pytest.fixture
def clock_dir():
    """A world-readable directory for the clock file and the wrappers (nginx's workers run as
    www-data and read the clock file too)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="hashd-faketime-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def faked_stack(make_stack, clock_dir, deadline_ms):
    """A one-process stack whose nginx and hashd-fcgi run under libfaketime. Only those two:
    wrappers put the preload in front of them alone (run-local's own Python sleeps on a
    clock libfaketime would step too)."""
    clock_file = clock_dir / "faketime"
    clock_file.write_text("+0\n")
    clock_file.chmod(0o644)
    faked = {"LD_PRELOAD": libfaketime(), "FAKETIME_TIMESTAMP_FILE": str(clock_file),
             "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    bin_dir = clock_dir / "bin"
    bin_dir.mkdir()
    for name, real in (("nginx", shutil.which("nginx")), ("hashd-fcgi", fcgi_bin())):
        wrapper = bin_dir / name
        wrapper.write_text(WRAPPER.format(real=str(real), faked=faked))
        wrapper.chmod(0o755)
    stack = make_stack(processes=1, binary=bin_dir / "hashd-fcgi", app_env={
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HASHD_THREADS": "1", "HASHD_COST_MIN": "4", "HASHD_QUEUE_DEADLINE_MS": str(deadline_ms),
    }, nginx={"queued_per_thread": 64})
    # The processes really are under the faked clock.
    for pid in (stack.pid(1), stack.nginx_pid()):
        assert "libfaketime" in pathlib.Path(f"/proc/{pid}/maps").read_text()
    return stack, clock_file


def burst(stack, size, cost, step=None, clock_file=None):
    """Sends `size` hash requests at once; with `step`, writes it to the clock file as soon
    as nginx has handed them all to the process (so every one was stamped before the step,
    and the first ones are still far from the deadline). Each request has its own keep-alive
    connection, opened (TLS and all) before the burst, so that the burst itself takes
    milliseconds even on a loaded machine. Returns the statuses ("200", "503 overloaded",
    ...) and how many requests were still unanswered at the step."""
    done = []
    lock = threading.Lock()
    sessions = []
    for _ in range(size):
        s = requests.Session()
        s.trust_env = False
        s.verify = str(stack.cert)
        assert s.get(stack.url("/healthz"), timeout=60).status_code == 200
        sessions.append(s)
    go = threading.Barrier(size + 1)

    def one(i):
        go.wait()
        try:
            r = sessions[i].post(stack.url("/v1/hash"), timeout=300,
                                 data=json.dumps({"password": f"clock-step-{i}", "cost": cost}),
                                 headers={"Content-Type": "application/json"})
            label = str(r.status_code) if r.status_code != 503 else f"503 {r.json()['error']}"
        except requests.RequestException as e:
            label = type(e).__name__
        with lock:
            done.append(label)
        return label

    waiting_at_step = None
    try:
        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            futures = [pool.submit(one, i) for i in range(size)]
            go.wait()
            if step is not None:
                # stub_status "Writing" counts its own request too.
                wait_for(lambda: stack.requests_in_flight() - 1 + len(done) >= size, 60,
                         "the burst to reach the process", interval=0.01)
                clock_file.write_text(step + "\n")
                with lock:
                    waiting_at_step = size - len(done)
            labels = [f.result() for f in futures]
    finally:
        for s in sessions:
            s.close()
    return labels, waiting_at_step


def tally(labels):
    return {k: labels.count(k) for k in sorted(set(labels))}


def test_step_forward_does_not_shed_a_burst_that_fits_the_deadline(make_stack, clock_dir, counts):
    # 4 hashes at cost 10 (~55 ms each on an idle core) against a 10 s deadline: they fit
    # even on a machine many times slower.
    stack, clock = faked_stack(make_stack, clock_dir, deadline_ms=10000)
    straddling, waiting = burst(stack, 4, 10, step="+3600", clock_file=clock)
    after, _ = burst(stack, 4, 10)
    counts.add("step", "+3600 s")
    counts.add("waiting_at_step", waiting)
    counts.add("straddling_burst", tally(straddling))
    counts.add("burst_after_step", tally(after))
    assert waiting >= 1, "the step came after the burst was served: the test proved nothing"
    assert straddling.count("200") == 4, f"requests shed because the wall clock jumped: {straddling}"
    assert after.count("200") == 4, after


def test_step_back_still_sheds_part_of_a_burst_beyond_the_deadline(make_stack, clock_dir, counts):
    # 30 hashes at cost 13 (~0.45 s each on an idle core with libxcrypt, ~13 s in all; the
    # interleaved engine's ~2.5x still needs ~5 s, well past 2 s) against 2 s: the
    # step comes milliseconds after the burst reached the process, long before any request
    # has waited 2 s, so every shed request of the straddling burst was judged after it.
    stack, clock = faked_stack(make_stack, clock_dir, deadline_ms=2000)
    straddling, waiting = burst(stack, 30, 13, step="-3600", clock_file=clock)
    after, _ = burst(stack, 30, 13)
    counts.add("step", "-3600 s")
    counts.add("waiting_at_step", waiting)
    counts.add("straddling_burst", tally(straddling))
    counts.add("burst_after_step", tally(after))
    assert waiting >= 1, "the step came after the burst was served: the test proved nothing"
    for labels in (straddling, after):
        assert set(labels) <= {"200", "503 overloaded"}, labels
        assert labels.count("200") >= 1, f"nothing served: {labels}"
        assert labels.count("503 overloaded") >= 1, f"nothing shed after the clock went back: {labels}"
