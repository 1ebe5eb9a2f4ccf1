#!/usr/bin/env python3
"""The three bcrypt limits side by side, in one run: libxcrypt (one hash per thread), hashd's
interleaved engine (K hashes per thread, K = 1..4) and John the Ripper's interleaved bcrypt
(`john --test --format=bcrypt`, [Blowfish 32/64 X3]), at the same cost and threads.

The machine may be shared, so absolute rates move between minutes; the three are measured
round-robin (libxcrypt, engine, john, then again) and each figure is the median of the rounds.
Ratios within a round are what the targets are about (issue 22: engine >= 95 % of John).

John's --test only benchmarks its built-in $2a$05 vectors, so its cost-12 rate is its cost-5
rate / 2^7 (bcrypt's work doubles per cost step, for John as for everyone; the engine's and
libxcrypt's cost-12 rates are measured, and their 5->12 ratio shows how well that holds).

    bench/engine_limits.py [--build build] [--costs 5,12] [--threads 1,2] [--rounds 3]
                           [--seconds 3] [--json OUT.json]

Prints a Markdown table; --json also writes every sample. Load average (uptime) is printed
before and after, since a shared machine is part of the figures.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path


def limit(build, engine, cost, threads, seconds, lanes=None):
    cmd = [str(build / "bench" / "hashd-bench-limit"), "--costs", str(cost), "--threads",
           str(threads), "--seconds", str(seconds), "--engine", engine]
    if lanes:
        cmd += ["--lanes", str(lanes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    return float(re.search(r"rate=([0-9.]+)", out).group(1))


def john(cost, threads, seconds):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(["john", f"--test={seconds}", "--format=bcrypt"], capture_output=True,
                         text=True, env=env, timeout=600).stdout
    m = re.search(r"Raw:\s+([0-9.]+)K? c/s real", out)
    if not m:
        raise SystemExit(f"engine_limits: cannot read john's rate from:\n{out}")
    rate = float(m.group(1)) * (1000 if "K c/s real" in out else 1)
    return rate / 2 ** (cost - 5)  # its test vectors are $2a$05


def load():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def measure(build, costs, threads_list, lanes_list, rounds, seconds, log=None):
    """{(cost, threads, name): [rate per round]}, the limits measured round-robin."""
    samples = {}
    for _ in range(rounds):
        for cost in costs:
            # Cost 12 takes 2^7 times as long a hash: give it time for a few hashes per thread.
            secs = seconds if cost <= 8 else max(seconds, 8)
            for threads in threads_list:
                runs = [("libxcrypt", lambda: limit(build, "libxcrypt", cost, threads, secs))]
                for k in lanes_list:
                    runs.append((f"engine K={k}",
                                 lambda k=k: limit(build, "interleaved", cost, threads, secs, k)))
                runs.append(("john", lambda: john(cost, threads, max(1, int(seconds)))))
                for name, run in runs:
                    if log:
                        log(f"limits: cost {cost}, {threads} threads, {name}")
                    samples.setdefault((cost, threads, name), []).append(run())
    return samples


def medians(samples, cost, threads):
    return {name: statistics.median(v) for (c, t, name), v in samples.items()
            if c == cost and t == threads}


def markdown(samples):
    """The limits table: every limit's median, its runs and its ratios to libxcrypt and john."""
    rounds = max(len(v) for v in samples.values())
    out = [f"| cost | threads | limit | hashes/s (median of {rounds}) | runs | / libxcrypt "
           "| / john |", "|---|---|---|---|---|---|---|"]
    for cost, threads in sorted({(c, t) for c, t, _ in samples}):
        med = medians(samples, cost, threads)
        for name, value in med.items():
            runs = ", ".join(f"{x:.1f}" for x in samples[(cost, threads, name)])
            out.append(f"| {cost} | {threads} | {name} | {value:.1f} | {runs} | "
                       f"{value / med['libxcrypt']:.2f} | {value / med['john']:.2f} |")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--costs", default="5,12")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}")
    ap.add_argument("--lanes", default="1,2,3,4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if shutil.which("john") is None:
        raise SystemExit("engine_limits: john missing (scripts/install-deps installs it)")
    print(f"load before: {load()}", file=sys.stderr)
    samples = measure(Path(args.build), [int(c) for c in args.costs.split(",")],
                      [int(t) for t in args.threads.split(",")],
                      [int(k) for k in args.lanes.split(",")], args.rounds, args.seconds)
    print(f"load after: {load()}", file=sys.stderr)
    print("\n".join(markdown(samples)))
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"cost": c, "threads": t, "limit": n, "rates": v} for (c, t, n), v in samples.items()],
            indent=1) + "\n")


if __name__ == "__main__":
    main()
