#!/usr/bin/python3
"""Per-request overhead of the app at cost 4, where the hash (~0.9 ms) is small enough for the
rest to show: one process, one hashing thread, closed loop with 4 connections for 10 s.

    bench/overhead.py BINARY [BINARY ...] [--runs 3] [--mode cpu|strace|perf]

cpu     the app's CPU per response (utime + stime of the process, /proc) and its goodput;
        binaries alternate run by run, so a busy machine hits them alike
strace  system calls per response (strace -f -c on the app; slows it, counts only)
perf    where the app's CPU goes (perf record -g, software clock: this VM has no hardware
        counters), report in OUT.perf.txt
Used for bench/README.md, "Per-request overhead". Starts the integration tests' stack
(tests/harness/hashd_stack.py) on free loopback ports and stops it by PID.
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

BENCH = pathlib.Path(__file__).resolve().parent
# The test harness (tests/harness), the very stack and store servers the tests run.
sys.path.insert(0, str(BENCH.parent / "tests"))
from harness.hashd_stack import Stack  # noqa: E402

LOADGEN = BENCH.parent / "build" / "bench" / "hashd-bench-loadgen"


def cpu_ticks(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(binary, mode, out):
    stack = Stack(processes=1, binary=binary, app_env={"HASHD_COST_MIN": "4",
                                                       "HASHD_COST_DEFAULT": "4"}).start()
    try:
        pid = stack.pid(1)
        side = None
        if mode == "strace":
            side = subprocess.Popen(["strace", "-f", "-c", "-o", f"{out}.strace", "-p", str(pid)])
        elif mode == "perf":
            side = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", f"{out}.perf",
                                     "-p", str(pid)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        before = cpu_ticks(pid)
        report = json.loads(subprocess.run(
            [str(LOADGEN), stack.url("/v1/hash"), "--connections", "4", "--duration", "10",
             "--warmup", "1", "--method", "POST", "--body", '{"password":"pw","cost":4}',
             "--header", "Content-Type: application/json", "--cacert", str(stack.cert),
             "--expect", "hash"], capture_output=True, text=True, check=True, timeout=120).stdout)
        ticks = cpu_ticks(pid) - before
        if side is not None:
            side.send_signal(signal.SIGINT)
            side.wait(60)
        responses = max(1, sum(report["statuses"].values()))
        return {"goodput": report["goodput"],
                "app_cpu_us": ticks / os.sysconf("SC_CLK_TCK") * 1e6 / responses,
                "responses": responses}
    finally:
        stack.stop(check=False)
        stack.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", choices=("cpu", "strace", "perf"), default="cpu")
    ap.add_argument("--out", default=tempfile.gettempdir() + "/hashd-overhead")
    args = ap.parse_args()
    for run in range(args.runs):
        for n, binary in enumerate(args.binaries):
            r = measure(binary, args.mode, f"{args.out}-{n}")
            print(f"run {run + 1} {binary}: goodput {r['goodput']:.0f}/s, app CPU "
                  f"{r['app_cpu_us']:.0f} µs/response over {r['responses']}", flush=True)
    if args.mode == "perf":
        for n, _ in enumerate(args.binaries):
            with open(f"{args.out}-{n}.perf.txt", "w") as f:
                subprocess.run(["perf", "report", "-i", f"{args.out}-{n}.perf", "--no-children",
                                "--sort", "dso", "--stdio"], stdout=f, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
