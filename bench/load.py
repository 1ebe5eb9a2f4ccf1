"""Running the measuring programs: the raw bcrypt limit (limit.cc) and the load generator
(loadgen.cc), with the CPU each part of the system used per response while it ran."""

import json
import os
import signal
import subprocess
import time

from procs import BenchError, OtherLoad, cpu_ticks_of, memory_kib, stop_popen


def run_limit(tools, cost, seconds):
    out = subprocess.run([str(tools.limit), "--costs", str(cost), "--seconds", str(seconds)],
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return {"rate": float(fields["rate"]), "hashes": int(fields["hashes"]),
            "threads": int(fields["threads"])}


def loadgen_cmd(tools, url, *, rate=None, connections=None, duration, warmup, timeout, drain=None,
                method="GET", body=None, cafile=None, expect='"hash"', log_file=None,
                arrivals="uniform"):
    cmd = [str(tools.loadgen), url, "--duration", str(duration), "--warmup", str(warmup),
           "--timeout", str(timeout), "--method", method, "--expect", expect]
    cmd += (["--rate", str(rate), "--arrivals", arrivals] if rate
            else ["--connections", str(connections)])
    if drain is not None:
        cmd += ["--drain", str(drain)]
    if body is not None:
        cmd += ["--body", body, "--header", "Content-Type: application/json"]
    if cafile:
        cmd += ["--cacert", str(cafile)]
    if log_file:
        cmd += ["--log", str(log_file)]
    return cmd


def run_load(cmd, sample_pids=None, budget=None, cpu_groups=None):
    """Runs the load generator and returns its report, plus: other_load; with sample_pids, the
    peak RSS/PSS of those processes (sampled every 0.5 s); with cpu_groups ({name: pids()}),
    the CPU each group used per response, in microseconds (client: the load generator)."""
    other = OtherLoad()
    cpu0 = {name: cpu_ticks_of(pids()) for name, pids in (cpu_groups or {}).items()}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = (0, 0)
    deadline = time.monotonic() + (budget or 600)
    while proc.poll() is None:
        if time.monotonic() > deadline:
            stop_popen(proc, signal.SIGKILL)
            raise BenchError(f"load generator overran its time budget: {' '.join(cmd)}")
        if sample_pids is not None:
            rss, pss = memory_kib(sample_pids())
            if rss > peak[0]:
                peak = (rss, pss)
        time.sleep(0.5)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"load generator failed ({proc.returncode}): {err.strip()}")
    report = json.loads(out)
    report["other_load"] = other.cores()
    if sample_pids is not None:
        report["rss_kib"], report["pss_kib"] = peak
    if cpu_groups:
        hz = os.sysconf("SC_CLK_TCK")
        responses = max(1, sum(report["statuses"].values()))
        per = {name: (cpu_ticks_of(pids()) - cpu0[name]) / hz * 1e6 / responses
               for name, pids in cpu_groups.items()}
        per["client"] = report["client_cpu_s"] * 1e6 / responses
        report["cpu_us_per_response"] = per
    return report
