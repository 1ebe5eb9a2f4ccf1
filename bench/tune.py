"""The overload-protection sweep behind hashd's defaults: `bench/run --tune`.

For each configuration (P processes, T threads, nginx max_conns = T x (1 + q) per process, queue
deadline D ms) it measures the cost-12 limit, then drives POST /v1/hash open loop at 0.5x and 4x
that limit (evenly spaced arrivals) and at 1x with Poisson arrivals (bursts), with a fresh stack
each time, and tabulates what the targets ask: goodput at 4x as a
share of the limit, p99 of successes at 4x against p99 at 0.5x, and the share shed. The reasoning
built on the results is in bench/README.md; the raw table goes to bench/results/tune/<date>.md.

Configurations come from --tune-configs "P,T,q,D;P,T,q,D;..." (default: the sweep below).
"""

import json

from procs import log

# P, T, q (queued requests per thread that nginx lets wait in a socket), D (deadline, ms).
DEFAULT_SWEEP = [
    (2, 2, 2, 1000),  # the first defaults (app: T=2, D=1000; nginx: q=2)
    (2, 2, 0, 1000),
    (2, 1, 0, 1000),
    (2, 1, 1, 1000),
    (2, 1, 2, 1000),
    (1, 2, 1, 1000),
    (2, 1, 1, 250),
    (2, 1, 2, 250),
    (2, 1, 1, 500),
    (1, 2, 1, 250),
    (4, 1, 0, 1000),
]


def parse_configs(text):
    if not text:
        return DEFAULT_SWEEP
    return [tuple(int(x) for x in item.split(",")) for item in text.split(";") if item.strip()]


def run(bench, out_dir, stamp):
    configs = parse_configs(bench.args.tune_configs)
    factors = [0.5, 4.0]
    results = []
    for p, t, q, d in configs:
        label = f"P{p}-T{t}-q{q}-D{d}"
        bench.limits.pop(12, None)  # a fresh limit next to each configuration
        rows = bench.overload_runs(12, factors, who=("hashd",), label=label, repeats=1,
                                   stack_kw={"processes": p, "threads": t, "queued_per_thread": q,
                                             "deadline_ms": d})
        half, four = rows[0], rows[1]
        # Capacity under random arrivals: how much a small queue cap sheds from bursts alone.
        poisson = bench.overload_runs(12, [1.0], who=("hashd",), label=label, repeats=1,
                                      stack_kw={"processes": p, "threads": t,
                                                "queued_per_thread": q, "deadline_ms": d},
                                      arrivals="poisson")[0]
        results.append({"P": p, "T": t, "q": q, "max_conns": t * (1 + q), "D": d,
                        "limit": half["limit"], "half": half, "four": four, "poisson": poisson})
        log(f"{label}: goodput@4x {four['ratio']:.0%}, p99 {half['p99_ms']:.0f} -> "
            f"{four['p99_ms']:.0f} ms, shed {four['shed_share']:.0%}")

    lines = [f"# hashd overload tuning, {stamp}", "",
             "POST /v1/hash at cost 12, open loop, a fresh stack per level; the limit is measured "
             "right before each configuration. max_conns is per process (nginx), D is "
             "HASHD_QUEUE_DEADLINE_MS.", "",
             "| P | T | max_conns | D ms | limit/s | goodput 4× / limit | p99 0.5× ms | p99 4× ms "
             "| p99 ratio | p50 4× ms | shed 4× | errors 4× | Poisson 1×: goodput / shed / p99 ms "
             "| other load 4× |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        half, four = r["half"], r["four"]
        ratio = four["p99_ms"] / half["p99_ms"] if half["ok"] and four["ok"] else float("nan")
        lines.append(f"| {r['P']} | {r['T']} | {r['max_conns']} | {r['D']} | {r['limit']:.2f} | "
                     f"{four['ratio']:.0%} | {half['p99_ms']:.0f} | {four['p99_ms']:.0f} | "
                     f"{ratio:.2f} | {four['p50_ms']:.0f} | {four['shed_share']:.0%} | "
                     f"{four['error_share']:.0%} | {r['poisson']['ratio']:.0%} / "
                     f"{r['poisson']['shed_share']:.0%} / {r['poisson']['p99_ms']:.0f} | "
                     f"{four['other_load']:.2f} |")
    path = out_dir / f"{stamp}.md"
    path.write_text("\n".join(lines) + "\n")
    (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return path
