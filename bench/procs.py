"""Processes and the machine, as the benchmark sees them: logging, PIDs and their CPU and memory,
the CPU other work used meanwhile, the priority of everything the benchmark starts.

Only Python's standard library. Every server the benchmark starts is stopped by PID.
"""

import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The harness itself failed (a server did not start, a tool crashed)."""


# --- Processes and the machine -----------------------------------------------------------------


def read_pid(path, timeout=0.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(pathlib.Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is dead for our purposes.
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def stop_popen(proc, sig=signal.SIGTERM, timeout=15):
    """Stops a process we started, by its PID; SIGKILL if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"pid {proc.pid} ignored signal {sig}; killing it")
        proc.kill()
        proc.wait(5)


def proc_children():
    """Maps every live pid to its children."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid, children=None):
    children = children if children is not None else proc_children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks_of(pids):
    """utime+stime+cutime+cstime of these processes (children they waited for included)."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total


def machine_busy_ticks():
    fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle


class OtherLoad:
    """CPU used by everything that is not this benchmark (other engineers' builds), in cores."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_ticks()
        self.ours0 = cpu_ticks_of(descendants(os.getpid()))

    def cores(self):
        elapsed = time.monotonic() - self.t0
        busy = machine_busy_ticks() - self.busy0
        ours = cpu_ticks_of(descendants(os.getpid())) - self.ours0
        hz = os.sysconf("SC_CLK_TCK")
        return max(0.0, (busy - ours) / hz / elapsed) if elapsed > 0 else 0.0


class Prioritizer(threading.Thread):
    """Gives every process of the benchmark the same high CPU priority while it runs.

    On a machine shared with other people's builds, the figures are only comparable if the
    code under test gets the CPU it asks for. Plain nice is not enough on Linux with
    autogroup scheduling (kernel.sched_autogroup_enabled=1): the scheduler first shares the
    CPU fairly among sessions, and only then by nice inside a session. Servers started with
    their own session (run-local's spawn-fcgi children, nginx, gunicorn) would each count as
    one more "user", so a pool of P processes would get P shares against the limit program's
    one, a bias in favour of the service. So twice a second this sets the
    session-level nice (/proc/PID/autogroup) of every descendant, and the per-process nice,
    to the same value. Needs root for negative values; the other-load column still reports
    what the rest of the machine used.
    """

    def __init__(self, nice):
        super().__init__(daemon=True)
        self.nice = nice
        self.done = threading.Event()
        self.apply()
        self.start()

    def apply(self):
        for pid in descendants(os.getpid()):
            try:
                if os.getpriority(os.PRIO_PROCESS, pid) != self.nice:
                    os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                group = pathlib.Path(f"/proc/{pid}/autogroup")
                if group.exists() and not group.read_text().strip().endswith(f"nice {self.nice}"):
                    group.write_text(str(self.nice))
            except OSError:
                pass  # exited meanwhile, or not permitted (then nothing is changed)

    def run(self):
        while not self.done.wait(0.5):
            self.apply()

    def stop(self):
        self.done.set()
        self.join()


def memory_kib(pids):
    """(RSS sum, PSS sum) in KiB over these processes."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def wait_http(url, cafile=None, timeout=30.0, proc=None, what="server"):
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
                return r.read()
        except (urllib.error.URLError, OSError) as e:
            last = e
            time.sleep(0.2)
    raise BenchError(f"{what} not answering {url} after {timeout:.0f}s: {last}")


# --- The programs under test ---------------------------------------------------------------------


def git_commit():
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def cpu_model():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"
