"""The report of one run: bench/results/<stamp>.md (tables and the targets, checked off or not)
and <stamp>.json (every raw figure)."""

import json
import os

from procs import cpu_model, git_commit
from stack import app_default, nginx_default


def fmt(v, spec=".0f", none="–"):
    return none if v is None else format(v, spec)


def pct(v):
    return "–" if v is None else f"{v * 100:.0f} %"


def runs(ratios):
    """Every run's share of the limit, e.g. "96–98–99 %"."""
    if not ratios:
        return "–"
    return "–".join(f"{100 * x:.0f}" for x in sorted(ratios)) + " %"


def overload_table(rows):
    out = ["| app | load | offered req/s | goodput req/s | goodput / limit | runs / limit "
           "| p50 ms | p99 ms | p99 / p99 at 0.5× | shed (503) | 503 p50 / p99 ms "
           "| errors + timeouts | /healthz p99 ms | other load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in rows:
        if r["factor"] == 0.5 and r["ok"]:
            base[r["label"]] = r["p99_ms"]
    for r in rows:
        b = base.get(r["label"])
        rel = r["p99_ms"] / b if b and r["ok"] else None
        shed = (f"{r['shed_p50_ms']:.1f} / {r['shed_p99_ms']:.1f}" if r["shed"] else "–")
        health = r.get("healthz")
        out.append(f"| {r['label']} | {r['factor']}× | {r['offered_rate']:.1f} | "
                   f"{r['goodput']:.1f} | {pct(r['ratio'])} | {runs(r.get('ratio_runs'))} | "
                   f"{fmt(r['p50_ms'] if r['ok'] else None)} | "
                   f"{fmt(r['p99_ms'] if r['ok'] else None)} | {fmt(rel, '.2f')} | "
                   f"{pct(r['shed_share'])} | {shed} | {pct(r['error_share'])} | "
                   f"{fmt(health['p99_ms'], '.1f') if health else '–'} | "
                   f"{r['other_load']:.2f} |")
    return out


def write_report(bench, out_dir, stamp, command):
    args = bench.args
    queued = (args.queued_per_thread if args.queued_per_thread is not None
              else nginx_default("hashd_nginx_queued_per_thread"))
    lines = [f"# hashd benchmark, {stamp}", "",
             f"Command: `{command}`  ",
             f"Commit: `{git_commit()}`; machine: {os.cpu_count()} cores "
             f"({cpu_model()}), shared with other work (see *other load*).  ",
             f"hashd settings: P={args.processes} processes, T={args.threads} hashing threads, "
             f"queue deadline {fmt(args.deadline_ms, 'd', 'default')} ms (admission by "
             f"expected wait, app), max_conns per process = T × "
             f"(1 + {queued}) (nginx's safety bound); "
             f"closed loop over HTTP/1.1 keep-alive with {bench.connections('hashd')} "
             f"connections to hashd, {bench.connections('original')} to the original.",
             ""]
    if bench.smoke:
        lines += ["**Smoke run**: a few seconds per scenario, to prove the harness works. "
                  "The figures are not measurements.", ""]
    if bench.rows:
        lines += ["## Throughput (closed loop)", "",
                  "Goodput = 200 responses per second. Ratios are to the limit at the same cost, "
                  "the mean of a measurement right before and one right after the services at "
                  "that cost. *Other load* is CPU used meanwhile by processes outside this "
                  "benchmark, in cores. *CPU µs/response*: app = hashd pool or gunicorn, front = "
                  "nginx, client = the load generator (on the same 2 cores, an artefact of "
                  "measuring on one machine), pump = run-local copying the app's log lines.", "",
                  f"Each service row was measured {bench.repeats}× in a row on the same server: "
                  "goodput is the median, *runs* every run's share of the limit, and the other "
                  "columns are those of the median run.", "",
                  "| scenario | cost | goodput req/s | / limit | runs / limit | p50 ms | p99 ms "
                  "| errors | 503 | other load | CPU µs/response |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in bench.rows:
            if r["scenario"].startswith("limit"):
                lines.append(f"| **{r['scenario']}** | {r['cost']} | **{r['goodput']:.1f}** "
                             f"({r['before']:.1f} before, {r['after']:.1f} after) | 100 % "
                             f"| | | | | | {r['other_load']:.2f} | |")
            else:
                cpu = " / ".join(f"{k.split()[0]} {v:.0f}" for k, v in
                                 r.get("cpu_us_per_response", {}).items())
                lines.append(f"| {r['scenario']} | {r['cost']} | {r['goodput']:.1f} | "
                             f"{pct(r.get('ratio'))} | {runs(r.get('ratio_runs'))} | "
                             f"{fmt(r['p50_ms'], '.1f')} | "
                             f"{fmt(r['p99_ms'], '.1f')} | {pct(r['error_share'])} | "
                             f"{pct(r['shed_share'])} | {r['other_load']:.2f} | {cpu} |")
    samples = getattr(bench, "engine_limits", None)
    if samples:
        import engine_limits
        lines += ["## The three bcrypt limits", "",
                  "libxcrypt one hash per thread; hashd's interleaved engine K hashes per thread "
                  "(`HASHD_BCRYPT_LANES`); John the Ripper's `john --test --format=bcrypt` "
                  "(`OMP_NUM_THREADS` = threads; its cost-12 figure is its $2a$05 rate / 2^7). "
                  "Measured round-robin (`bench/engine_limits.py`); ratios are of medians. "
                  f"Load after: `{getattr(bench, 'engine_load', '')}`.", ""]
        lines += engine_limits.markdown(samples)
        lines.append("")
        threads = os.cpu_count()
        lanes = f"engine K={app_default(bench.tools.fcgi, 'HASHD_BCRYPT_LANES')}"
        against = []
        for r in bench.rows:
            med = engine_limits.medians(samples, r["cost"], threads)
            if r["scenario"].startswith("limit") or lanes not in med:
                continue
            against.append(f"| {r['scenario']} | {r['cost']} | {r['goodput']:.1f} | "
                           f"{pct(r['goodput'] / med['libxcrypt'])} | "
                           f"{pct(r['goodput'] / med[lanes])} | {pct(r['goodput'] / med['john'])} |")
        if against:
            lines += ["Goodput against each limit (same cost, every core):", "",
                      "| scenario | cost | goodput req/s | / libxcrypt | / engine | / john |",
                      "|---|---|---|---|---|---|"] + against + [""]
    if bench.calibration:
        lines += ["", "## Load generator ceiling", "",
                  "Open loop against a location nginx answers itself (same TLS, nothing behind "
                  "it), at 2× and 4× the cost-4 limit. Everything answered with a low p50 means "
                  "the load generator (one thread, same 2 cores) can offer those rates, so it "
                  "was not what limited the rows above; the p99/max show the start-up burst of "
                  "TLS handshakes while the connection pool grows.", "",
                  "| offered req/s | answered | p50 ms | p99 ms | max ms | connections opened "
                  "| client CPU µs/response | nginx CPU µs/response |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in bench.calibration:
            cpu = r["cpu_us_per_response"]
            lines.append(f"| {r['offered_rate']:.0f} ({r['factor']}× the cost-4 limit) | "
                         f"{pct(r['ok'] / max(1, r['offered']))} | {r['p50_ms']:.1f} | "
                         f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['connections_opened']} | "
                         f"{cpu['client']:.0f} | {cpu['front']:.0f} |")
    if bench.memory:
        lines += ["", "## Memory under load (cost 12, peak of samples every 0.5 s)", "",
                  "RSS counts shared pages (libraries, nginx's shared zones) once per process; "
                  "PSS divides them among the processes sharing them.", "",
                  "| processes | count | RSS MiB | PSS MiB |", "|---|---|---|---|"]
        for m in bench.memory:
            lines.append(f"| {m['what']} | {m['processes']} | {m['rss_kib'] / 1024:.1f} | "
                         f"{m['pss_kib'] / 1024:.1f} |")
    if bench.overload:
        cost = bench.overload[0]["cost"]
        lines += ["", f"## Overload (open loop, cost {cost})", "",
                  f"Requests arrive at a fixed rate (a multiple of the cost-{cost} limit: "
                  f"{bench.overload_limit(cost)['name']} raw rate, "
                  f"{bench.overload_limit(cost)['rate']:.2f} hashes/s; libxcrypt's is "
                  f"{bench.limits[cost]['rate']:.2f}) whatever the responses do; "
                  "`hashd-libxcrypt` is hashd with HASHD_BCRYPT_ENGINE=libxcrypt at the lowest "
                  "level, the single-request latency reference; "
                  "latency counts from when a request was due. hashd: POST /v1/hash; original: "
                  "GET /gethash/ behind nginx TLS. A fresh server per level. Client timeout "
                  f"{bench.dur(10, 30):.0f} s (timeouts count as errors). Goodput counts "
                  "the successes of requests due inside the window (after the warm-up), "
                  "whenever they completed; latencies are those of the same requests (– : "
                  f"none of them succeeded). hashd's levels ran {bench.repeats}× (median; "
                  "*runs*), the original's once. /healthz: 20 probes a second through nginx "
                  "during the highest level.", ""]
        lines += overload_table(bench.overload)
    if bench.bursts:
        lines += ["", "## Bursts", "",
                  "B requests due at once (spread over 10 ms, each on a new TLS connection), "
                  "for B from 1 to 3 × cores × deadline / hash time (*fits*: the largest burst "
                  "the cores can finish within the deadline). hashd: POST /v1/hash; original: "
                  "GET /gethash/ behind nginx TLS. Served = 200 within the client timeout; "
                  "latency from when the request was due, including its TLS handshake.", "",
                  "| app | cost | B | B / fits | served | p50 ms | p99 ms | 503 | 503 p99 ms "
                  "| errors + timeouts | other load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for b in bench.bursts:
            lines.append(f"| {b['app']} | {b['cost']} | {b['burst']} | "
                         f"{b['burst'] / b['fits']:.2f} | {pct(b['served'])} | "
                         f"{fmt(b['p50_ms'] if b['ok'] else None)} | "
                         f"{fmt(b['p99_ms'] if b['ok'] else None)} | {b['shed']} | "
                         f"{fmt(b['shed_p99_ms'] if b['shed'] else None, '.1f')} | "
                         f"{pct(b['error_share'])} | {b['other_load']:.2f} |")
    if bench.messages:
        m = bench.messages
        lines += ["", "## Messages (GET on LMDB)", "",
                  f"`{m['command']}`: wrk over HTTPS keep-alive (2 threads, 32 connections) "
                  "through the same stack, GET /messages/<digest> over 1,000 stored messages, "
                  "each run right after a run against `location = /bench/ceiling { return 200; }` "
                  "added to the same TLS server (nginx alone: the transport's ceiling). The row "
                  "is the pair with the median ratio.", "",
                  "| GET req/s | ceiling req/s | GET / ceiling | runs | GET p99 | errors | "
                  "other load |",
                  "|---|---|---|---|---|---|---|",
                  f"| {m['get_rps']:.0f} | {m['ceiling_rps']:.0f} | {m['ratio']:.0%} | "
                  f"{'–'.join(f'{x:.0%}' for x in m['ratio_runs'])} | {m['p99']} | "
                  f"{m['errors']} | {m['other_load']:.2f} |"]
    lines += ["", "## Targets", ""] + targets(bench)
    plots = sorted(out_dir.glob(f"{stamp}-*.png"))
    lines += ["", "Plots: " + ", ".join(f"[{p.name}]({p.name})" for p in plots)]
    (out_dir / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    (out_dir / f"{stamp}.json").write_text(json.dumps(
        {"rows": bench.rows, "memory": bench.memory, "overload": bench.overload,
         "bursts": bench.bursts, "messages": bench.messages,
         "calibration": bench.calibration, "limits": bench.limits, "args": vars(args)}, indent=1, default=str) + "\n")
    return out_dir / f"{stamp}.md"


def targets(bench):
    """The benchmark's targets, each checked off or not, with the original's figure beside."""
    out = []

    def check(name, ok, detail):
        out.append(f"- [{'x' if ok else ' '}] {name}: {detail}")

    def row(scenario, cost):
        return next((r for r in bench.rows if r["scenario"].startswith(scenario)
                     and r["cost"] == cost), None)

    for cost in sorted({b["cost"] for b in bench.bursts}):
        mine = [b for b in bench.bursts if b["cost"] == cost and b["app"] == "hashd"
                and b["burst"] <= b["fits"]]
        theirs = [b for b in bench.bursts if b["cost"] == cost and b["app"] == "original"
                  and b["burst"] <= b["fits"]]
        if mine:
            worst = min(mine, key=lambda b: b["served"])
            errors = sum(b["offered"] - b["ok"] for b in mine)
            check(f"a burst the CPU finishes within the deadline is served whole, cost {cost} "
                  f"(B ≤ {mine[0]['fits']:.1f})", errors == 0,
                  f"{errors} not served over B = {', '.join(str(b['burst']) for b in mine)} "
                  f"(worst: {worst['served']:.0%} at B = {worst['burst']}); original: "
                  f"{sum(b['offered'] - b['ok'] for b in theirs)} not served")
    hov = [r for r in bench.overload if r["label"] == "hashd"]
    orig = {r["factor"]: r for r in bench.overload if r["label"] == "original"}
    four = next((r for r in hov if r["factor"] == 4), None)
    if four and four["ok"]:
        o = orig.get(4)
        ocmp = (f"; original: {o['ratio']:.0%}, errors+timeouts {o['error_share']:.0%}"
                if o else "")
        new_limit = bench.overload_limit(four["cost"])
        check(f"at 4× {new_limit['name']} limit: goodput ≥ 95 % of it", four["ratio"] >= 0.95,
              f"{four['ratio']:.1%} (runs {runs(four.get('ratio_runs'))}){ocmp}")
        hash_ms = new_limit["batch_ms"]
        bound = bench.args.deadline_ms + hash_ms
        check("at 4×: p99 of accepted requests ≤ deadline + one batch's time",
              four["p99_ms"] <= bound,
              f"{four['p99_ms']:.0f} ms vs {bench.args.deadline_ms} + {hash_ms:.0f} ms"
              + (f"; original p99 {o['p99_ms']:.0f} ms" if o and o["ok"] else
                 "; original: no success" if o else ""))
        if four["shed"]:
            check("at 4×: p99 of a 503 under 50 ms", four["shed_p99_ms"] < 50,
                  f"{four['shed_p99_ms']:.1f} ms (original sheds nothing: it times out)")
        health = four.get("healthz")
        if health:
            check("at 4×: /healthz p99 under 50 ms", health["ok"] > 0 and health["p99_ms"] < 50,
                  f"{health['p99_ms']:.1f} ms over {health['ok']} of {health['offered']} probes "
                  "(the original has no health endpoint)")
    low = min((r for r in hov if r["ok"]), key=lambda r: r["factor"], default=None)
    ref = next((r for r in bench.overload if r["label"] == "hashd-libxcrypt" and r["ok"]), None)
    if low and ref:
        check(f"single-request latency at {low['factor']}× load ≤ 1.05× libxcrypt alone's (p50)",
              low["p50_ms"] <= 1.05 * ref["p50_ms"],
              f"{low['p50_ms']:.0f} ms vs {ref['p50_ms']:.0f} ms ({low['p50_ms'] / ref['p50_ms']:.2f}×;"
              f" p99 {low['p99_ms']:.0f} vs {ref['p99_ms']:.0f} ms)")
    samples = getattr(bench, "engine_limits", None)
    if samples:
        import engine_limits
        lanes = f"engine K={app_default(bench.tools.fcgi, 'HASHD_BCRYPT_LANES')}"
        for cost, threads in sorted({(c, t) for c, t, _ in samples}):
            med = engine_limits.medians(samples, cost, threads)
            if lanes in med and "john" in med:
                check(f"engine's raw rate ≥ 95 % of John the Ripper's, cost {cost}, {threads} "
                      "thread(s)", med[lanes] >= 0.95 * med["john"],
                      f"{med[lanes]:.1f} vs {med['john']:.1f} hashes/s ({med[lanes] / med['john']:.2f}×;"
                      f" libxcrypt {med['libxcrypt']:.1f})")
        for cost, bar, engine_bar in ((12, 2.2, 0.90), (10, 2.0, None)):
            r = row("hashd POST", cost)
            if not r:
                continue
            check(f"closed-loop goodput at cost {cost} ≥ {bar}× libxcrypt's limit",
                  r["ratio"] >= bar, f"{r['ratio']:.2f}× (runs {runs(r.get('ratio_runs'))})")
            med = engine_limits.medians(samples, cost, os.cpu_count())
            if engine_bar and lanes in med:
                check(f"closed-loop goodput at cost {cost} ≥ {engine_bar:.0%} of the engine's limit",
                      r["goodput"] >= engine_bar * med[lanes],
                      f"{r['goodput'] / med[lanes]:.1%} ({r['goodput']:.1f} vs {med[lanes]:.1f}/s)")
    for cost, bar in ((12, 0.97), (4, 0.85)):
        r = row("hashd POST", cost)
        o = row("original GET /gethash/ (behind", cost)
        if r:
            check(f"closed-loop goodput at cost {cost} ≥ {bar:.0%} of the limit (median of "
                  f"{len(r.get('ratio_runs', [1]))})", r["ratio"] >= bar,
                  f"{r['ratio']:.1%} (runs {runs(r.get('ratio_runs'))})"
                  + (f"; original behind nginx {o['ratio']:.1%}" if o else ""))
    hm = next((m for m in bench.memory if m["what"].startswith("hashd pool")), None)
    om = next((m for m in bench.memory if m["what"].startswith("original: gunicorn")), None)
    if hm and om:
        check("hashd pool memory well under gunicorn's (PSS, under load)",
              hm["pss_kib"] * 2 <= om["pss_kib"],
              f"{hm['pss_kib'] / 1024:.1f} MiB vs {om['pss_kib'] / 1024:.1f} MiB")
    m = bench.messages
    if m:
        check("`GET /messages/<digest>` on LMDB ≥ 50 % of nginx's `return 200` on the same TLS "
              f"listener (median of {len(m['ratio_runs'])})", m["ratio"] >= 0.50 and not m["errors"],
              f"{m['ratio']:.0%} (runs {'–'.join(f'{x:.0%}' for x in m['ratio_runs'])}; "
              f"{m['get_rps']:.0f} vs {m['ceiling_rps']:.0f} req/s, errors {m['errors']}); "
              "the original has no messages endpoint")
    else:
        out.append("- not measured by this run: `GET /messages/<digest>` on LMDB against "
                   "nginx's `return 200` ceiling (`--skip messages`)")
    return out
