"""The scenarios of one benchmark run (bench/README.md has the method and the reasoning).

    throughput  closed loop per cost: the limit right before and after, hashd POST /v1/hash and
                GET /gethash/, the original plain and behind nginx; each row run `repeats`
                times and reported as the median with its spread.
    bursts      B requests at once for B from 1 to 3 x cores x deadline / hash time, at cost 10
                and 12: the share served and the p99, hashd and the original.
    overload    open loop at 0.5x .. 4x the cost-12 limit, a fresh server per level (hashd
                repeated `repeats` times): goodput, p99 of successes, latency of the 503s, and
                /healthz latency under the highest load.
    calibrate   the load generator's own ceiling against a location nginx answers itself.
    messages    GET /messages/<digest> on LMDB beside nginx's `return 200` on the same TLS
                listener (bench/messages/run, wrk), each GET run right after its ceiling run,
                `repeats` pairs, the median ratio.
"""

import json
import math
import pathlib
import shutil
import statistics
import subprocess
import tempfile

from load import loadgen_cmd, run_limit, run_load
from procs import BenchError, OtherLoad, descendants, log, memory_kib, stop_popen
from stack import PASSWORD, HashdStack, OriginalStack, Tools, app_default


def median_run(runs):
    """The run with the median goodput, carrying every run's goodput (`runs`) and the spread
    ((max - min) / median). A figure within the spread of a target is not a result either
    way."""
    ordered = sorted(runs, key=lambda r: r["goodput"])
    mid = dict(ordered[len(ordered) // 2])
    mid["runs"] = [r["goodput"] for r in runs]
    mid["goodput"] = statistics.median(mid["runs"])
    mid["spread"] = ((ordered[-1]["goodput"] - ordered[0]["goodput"]) / mid["goodput"]
                     if mid["goodput"] else 0.0)
    return mid


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="hashd-bench-"))
        # As root, nginx's workers run as www-data and must traverse to the sockets.
        self.tmp.chmod(0o755)
        self.tools = Tools(pathlib.Path(args.build_dir).resolve(), self.tmp / "bin")
        self.rows = []       # throughput rows
        self.memory = []     # memory rows
        self.overload = []   # overload rows
        self.limits = {}     # cost -> limit report
        self.calibration = None  # the load generator's ceiling
        self.bursts = []     # burst rows
        self.messages = None  # GET /messages vs nginx's ceiling (bench/messages/run's figures)
        self.smoke = args.smoke
        # Each throughput figure is measured this many times in the run (median and spread).
        self.repeats = 1 if args.smoke else args.repeats

    def dur(self, full, smoke=2.0):
        return smoke if self.smoke else full

    def hashd(self, name, cost_default, **kw):
        p = kw.pop("processes", self.args.processes)
        t = kw.pop("threads", self.args.threads)
        kw.setdefault("deadline_ms", self.args.deadline_ms)
        kw.setdefault("queued_per_thread", self.args.queued_per_thread)
        return HashdStack(self.tools, self.tmp / name, processes=p, threads=t,
                          cost_default=cost_default, **kw)

    def connections(self, who):
        """Closed-loop connections: what keeps every worker busy with requests waiting.

        hashd: 2 x K per hashing thread (P x T x 2K; K = HASHD_BCRYPT_LANES, 4 by default),
        one batch of K hashing and K queued: the queue never runs dry while a batch's responses
        travel back and the next requests come in, so every batch the engine runs is full. With
        only K per thread, the first request back after a batch finds the thread idle and runs
        alone (a lone job is not held back to wait for company), and the closed loop measures
        that, not the engine. K queued behind a batch wait one batch: 4 x 0.25 s / 2.6 at cost
        12, under the 1 s deadline, so none is refused. With the libxcrypt engine (K = 1) this
        is the old 4 per thread (one hashing, three queued).
        original: twice its 4 threads (gunicorn queues the rest itself).
        """
        if self.args.connections:
            return self.args.connections
        if who == "original":
            return 8
        lanes = int(app_default(self.tools.fcgi, "HASHD_BCRYPT_LANES"))
        return self.args.processes * self.args.threads * max(4, 2 * lanes)

    def repeat(self, run):
        """run() `repeats` times; the median run (see median_run)."""
        return median_run([run() for _ in range(self.repeats)])

    def measure_limit(self, cost, seconds):
        other = OtherLoad()
        lim = run_limit(self.tools, cost, seconds)
        lim["other_load"] = other.cores()
        return lim

    def throughput(self, costs):
        for cost in costs:
            # Three runs of each (see repeat): shorter than a single run used to be.
            duration = {4: 6, 10: 8, 12: 12}.get(cost, 12) if not self.smoke else (
                4 if cost == 12 else 2)
            warmup = 0.5 if self.smoke else 2
            limit_s = {4: 5, 10: 6, 12: 10}.get(cost, 10) if not self.smoke else 1
            log(f"cost {cost}: limit ({limit_s}s)")
            before = self.measure_limit(cost, limit_s)
            self.limits[cost] = before
            first_row = len(self.rows)
            common = dict(duration=duration, warmup=warmup, timeout=30)

            log(f"cost {cost}: hashd")
            stack = self.hashd(f"hashd-c{cost}", cost_default=cost)
            try:
                pool = stack.pool_pids
                groups = {"app": pool, "front": stack.nginx_pids,
                          "log pump": stack.log_pump_pids}
                conns = self.connections("hashd")
                r = self.repeat(lambda: run_load(
                    loadgen_cmd(self.tools, stack.base + "/v1/hash", method="POST",
                                body=json.dumps({"password": PASSWORD, "cost": cost}),
                                cafile=stack.cafile, connections=conns, **common),
                    sample_pids=pool if cost == 12 else None, cpu_groups=groups))
                self.add_row("hashd POST /v1/hash (nginx TLS)", cost, r)
                if cost == 12:
                    self.memory.append({"what": f"hashd pool ({stack.processes} x hashd-fcgi)",
                                        "processes": len(pool()), "rss_kib": r["rss_kib"],
                                        "pss_kib": r["pss_kib"]})
                    rss, pss = memory_kib(stack.nginx_pids())
                    self.memory.append({"what": "nginx in front of hashd (master + workers)",
                                        "processes": len(stack.nginx_pids()), "rss_kib": rss,
                                        "pss_kib": pss})
                r = self.repeat(lambda: run_load(
                    loadgen_cmd(self.tools, stack.base + f"/gethash/{PASSWORD}/",
                                cafile=stack.cafile, connections=conns, **common),
                    cpu_groups=groups))
                self.add_row("hashd GET /gethash/ (nginx TLS)", cost, r)
            finally:
                stack.stop()

            log(f"cost {cost}: original")
            orig = OriginalStack(self.tmp / f"original-c{cost}", rounds=cost,
                                 tls_cert=stack.cafile, tls_key=stack.cafile.with_suffix(".key"))
            try:
                conns = self.connections("original")
                groups = {"app": orig.all_pids}
                r = self.repeat(lambda: run_load(
                    loadgen_cmd(self.tools, orig.direct + f"/gethash/{PASSWORD}/",
                                connections=conns, **common),
                    sample_pids=orig.all_pids if cost == 12 else None, cpu_groups=groups))
                self.add_row("original GET /gethash/ (gunicorn, plain HTTP)", cost, r)
                if cost == 12:
                    self.memory.append({"what": "original: gunicorn master + 2 workers",
                                        "processes": len(orig.all_pids()),
                                        "rss_kib": r["rss_kib"], "pss_kib": r["pss_kib"]})
                    rss, pss = memory_kib(orig.worker_pids())
                    self.memory.append({"what": "original: the 2 gunicorn workers only (now)",
                                        "processes": len(orig.worker_pids()), "rss_kib": rss,
                                        "pss_kib": pss})
                groups["front"] = lambda: descendants(orig.nginx.pid)
                r = self.repeat(lambda: run_load(
                    loadgen_cmd(self.tools, orig.front + f"/gethash/{PASSWORD}/",
                                cafile=stack.cafile, connections=conns, **common),
                    cpu_groups=groups))
                self.add_row("original GET /gethash/ (behind nginx TLS)", cost, r)
                if cost == min(costs) and self.calibration is None:
                    self.calibrate(orig, stack.cafile)
            finally:
                orig.stop()

            log(f"cost {cost}: limit again ({limit_s}s)")
            after = self.measure_limit(cost, limit_s)
            rate = (before["rate"] + after["rate"]) / 2
            self.limits[cost] = {"rate": rate, "before": before["rate"], "after": after["rate"],
                                 "threads": before["threads"]}
            self.rows.insert(first_row, {
                "scenario": "limit (libxcrypt, 1 thread/core)", "cost": cost, "goodput": rate,
                "before": before["rate"], "after": after["rate"],
                "other_load": (before["other_load"] + after["other_load"]) / 2})
            for r in self.rows[first_row + 1:]:
                r["ratio"] = r["goodput"] / rate
                r["ratio_runs"] = [g / rate for g in r.get("runs", [r["goodput"]])]
                log(f"  {r['scenario']} cost {cost}: {r['ratio']:.0%} of the limit "
                    f"({rate:.1f}/s: {before['rate']:.1f} before, {after['rate']:.1f} after)")

    def calibrate(self, orig, cafile):
        """The load generator's own ceiling: open loop against a location nginx answers itself
        (same TLS, no application behind it), at twice the cost-4 limit and above."""
        limit4 = self.limits.get(4, {}).get("rate") or 2000
        self.calibration = []
        for factor in ((2, 4) if not self.smoke else (2,)):
            rate = round(limit4 * factor)
            log(f"load generator ceiling: {rate} req/s against nginx alone")
            r = run_load(loadgen_cmd(self.tools, orig.front + "/bench-static", rate=rate,
                                     duration=self.dur(5, 1), warmup=self.dur(1, 0.2),
                                     timeout=10, cafile=cafile, expect="static"),
                         cpu_groups={"front": lambda: descendants(orig.nginx.pid)})
            r["factor"] = factor
            self.calibration.append(r)
            log(f"  offered {r['offered_rate']:.0f}/s, ok {r['ok']} of {r['offered']}, "
                f"p99 {r['p99_ms']:.1f} ms, {r['connections_opened']} connections opened, "
                f"client CPU {r['client_cpu_s']:.2f} s")

    def add_row(self, scenario, cost, r):
        r.update({"scenario": scenario, "cost": cost})
        self.rows.append(r)
        cpu = r.get("cpu_us_per_response", {})
        log(f"  {scenario} cost {cost}: {r['goodput']:.1f}/s, p99 {r['p99_ms']:.0f} ms, "
            f"errors {r['error_share']:.1%}, 503 {r['shed_share']:.1%}, other load "
            f"{r['other_load']:.2f} cores; CPU us/response "
            + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))
        if r["ok"] == 0:
            raise BenchError(f"{scenario} at cost {cost}: no successful response "
                             f"(statuses {r['statuses']})")

    def overload_runs(self, cost, factors, who=("hashd", "original"), stack_kw=None, label=None,
                      arrivals="uniform", repeats=None, probe_at=None):
        """Open loop at factor x the cost-`cost` limit; a fresh server for every level and run.

        hashd's levels run `repeats` times (default: self.repeats) and report the median;
        the original's once (it answers nothing at 4x either way, and each of its levels costs
        a client timeout). At factor `probe_at` (default: the highest), a second load
        generator asks hashd's /healthz 20 times a second throughout: a load balancer's view of
        a saturated VM."""
        if cost not in self.limits:
            self.limits[cost] = self.measure_limit(cost, self.dur(10, 1))
        limit = self.overload_limit(cost)["rate"]
        duration = self.dur(self.args.overload_seconds, 3)
        warmup = self.dur(5, 0.5)
        # The smoke run only proves the harness: a generous timeout, so that a busy machine
        # cannot turn slow answers into a failure.
        timeout = self.dur(10, 30)
        probe_at = max(factors) if probe_at is None else probe_at
        rows = []
        cafile = None
        for app in who:
            for f in factors:
                runs = []
                for n in range((repeats or self.repeats) if app == "hashd" else 1):
                    r, cafile = self.overload_level(app, cost, f, limit, duration, warmup,
                                                    timeout, arrivals, stack_kw, label, cafile,
                                                    probe=app == "hashd" and f == probe_at,
                                                    run=n)
                    runs.append(r)
                r = median_run(runs)
                r["ratio"] = r["goodput"] / limit
                r["ratio_runs"] = [g / limit for g in r["runs"]]
                if not r["statuses"] and f == min(factors):
                    raise BenchError(f"overload {app} {f}x: no response at all "
                                     f"(statuses {r['statuses']})")
                rows.append(r)
        return rows

    def overload_limit(self, cost):
        """What the overload levels are multiples of: the CPU's limit for the engine hashd runs,
        the interleaved engine's raw rate at K = HASHD_BCRYPT_LANES on every core
        (bench/engine_limits.py, when it ran at this cost), else libxcrypt's. A batch is what
        one hashing thread runs at a time: K hashes on the engine, one on libxcrypt."""
        lanes = int(app_default(self.tools.fcgi, "HASHD_BCRYPT_LANES"))
        threads = self.limits[cost]["threads"]
        samples = getattr(self, "engine_limits", None)
        if samples:
            import engine_limits
            med = engine_limits.medians(samples, cost, threads)
            name = f"engine K={lanes}"
            if name in med:
                return {"rate": med[name], "name": f"the interleaved engine's ({name})",
                        "batch_ms": 1000 * threads * lanes / med[name]}
        lim = self.limits[cost]
        return {"rate": lim["rate"], "name": "libxcrypt's", "batch_ms": 1000 * threads / lim["rate"]}

    def overload_level(self, app, cost, f, limit, duration, warmup, timeout, arrivals, stack_kw,
                       label, cafile, probe, run):
        rate = max(0.5, f * limit)
        name = f"ov-{label or app}-{f}-{arrivals}-{run}"
        log(f"overload {label or app} cost {cost}: {f}x = {rate:.1f} req/s {arrivals} "
            f"for {duration}s (run {run + 1})")
        if app == "hashd":
            stack = self.hashd(name, cost_default=cost, **(stack_kw or {}))
            cafile = stack.cafile
            url, method = stack.base + "/v1/hash", "POST"
            body = json.dumps({"password": PASSWORD})
        else:
            if cafile is None:  # the certificate run-local made for hashd
                cafile = next(self.tmp.glob("*/tls/localhost.crt"))
            stack = OriginalStack(self.tmp / name, rounds=cost, tls_cert=cafile,
                                  tls_key=cafile.with_suffix(".key"))
            url, method, body = stack.front + f"/gethash/{PASSWORD}/", "GET", None
        prober = None
        try:
            if probe:
                prober = subprocess.Popen(
                    loadgen_cmd(self.tools, stack.base + "/healthz", rate=20, duration=duration,
                                warmup=warmup, timeout=timeout, cafile=cafile, expect="ok"),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            r = run_load(loadgen_cmd(self.tools, url, rate=rate, duration=duration,
                                     warmup=warmup, timeout=timeout,
                                     drain=self.dur(timeout, 5), method=method, body=body,
                                     cafile=cafile, arrivals=arrivals,
                                     log_file=self.tmp / f"{name}.log"),
                         budget=duration + 3 * timeout + 60)
            if prober is not None:
                out, err = prober.communicate(timeout=3 * timeout + 60)
                if prober.returncode != 0:
                    raise BenchError(f"the /healthz prober failed: {err.strip()}")
                r["healthz"] = json.loads(out)
        finally:
            if prober is not None:
                stop_popen(prober)
            stack.stop()
        r.update({"app": app, "label": label or app, "factor": f, "cost": cost,
                  "limit": limit, "ratio": r["goodput"] / limit,
                  "settings": getattr(stack, "settings", None)})
        log(f"  goodput {r['goodput']:.1f}/s = {r['ratio']:.0%} of limit, "
            f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
            f"503 {r['shed_share']:.1%} (p99 {r['shed_p99_ms']:.1f} ms), "
            f"errors {r['error_share']:.1%}, other load {r['other_load']:.2f}"
            + (f"; /healthz p99 {r['healthz']['p99_ms']:.1f} ms" if "healthz" in r else ""))
        return r, cafile

    def burst_sizes(self, cost):
        """B from 1 to 3 x cores x deadline / hash time (the burst that just fits, times 3)."""
        lim = self.limits[cost]
        hash_s = lim["threads"] / lim["rate"]  # one hash on one core
        cores = lim["threads"]
        fits = cores * self.args.deadline_ms / 1000 / hash_s
        points = (1, 0.5, 1, 1.5, 2, 3) if not self.smoke else (1, 2)
        sizes = sorted({max(1, math.floor(fits * p)) for p in points} | {1})
        return fits, sizes

    def burst_runs(self, costs):
        """B requests due at once (within 10 ms), on fresh connections, for each B of
        burst_sizes: how many are served, how fast, and how fast the rest are refused."""
        timeout = 10 if not self.smoke else 30
        for cost in costs:
            if cost not in self.limits:
                self.limits[cost] = self.measure_limit(cost, self.dur(6, 1))
            fits, sizes = self.burst_sizes(cost)
            log(f"bursts at cost {cost}: {fits:.1f} fit the deadline; B = {sizes}")
            for app in ("hashd", "original"):
                if app == "hashd":
                    stack = self.hashd(f"burst-hashd-{cost}", cost_default=cost)
                    cafile = stack.cafile
                    url, method = stack.base + "/v1/hash", "POST"
                    body = json.dumps({"password": PASSWORD})
                else:
                    stack = OriginalStack(self.tmp / f"burst-original-{cost}", rounds=cost,
                                          tls_cert=cafile, tls_key=cafile.with_suffix(".key"))
                    url, method, body = stack.front + f"/gethash/{PASSWORD}/", "GET", None
                try:
                    for b in sizes:
                        # B arrivals spread over 10 ms: "at once" for a client, and a rate the
                        # load generator can keep.
                        r = run_load(loadgen_cmd(self.tools, url, rate=b / 0.01, duration=0.01,
                                                 warmup=0, timeout=timeout, drain=timeout,
                                                 method=method, body=body, cafile=cafile),
                                     budget=3 * timeout + 60)
                        r.update({"app": app, "cost": cost, "burst": b, "fits": fits,
                                  "served": r["ok"] / max(1, r["offered"])})
                        self.bursts.append(r)
                        log(f"  {app} B={b}: served {r['served']:.0%}, p99 {r['p99_ms']:.0f} ms, "
                            f"503 {r['shed']} (p99 {r['shed_p99_ms']:.1f} ms), "
                            f"errors {r['error_share']:.0%}")
                finally:
                    stack.stop()

    def messages_get(self):
        """GET /messages/<digest> on LMDB against nginx's `return 200`, through
        bench/messages/run (the stack of the tests, with the default P and threads)."""
        out = self.tmp / "messages.json"
        duration = 1 if self.smoke else 10
        cmd = [str(pathlib.Path(__file__).resolve().parent / "messages" / "run"),
               "--backends", "lmdb", "--skip-post", "--repeats", str(self.repeats),
               "--duration", str(duration), "--processes", str(self.args.processes),
               "--json", str(out), "--out", str(self.tmp / "messages")]
        log(f"messages: GET /messages on LMDB vs nginx's ceiling, {self.repeats} x "
            f"{duration} s each")
        load = OtherLoad()
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600 + 2 * duration * self.repeats)
        if done.returncode != 0 or not out.exists():
            raise BenchError(f"bench/messages/run failed ({done.returncode}):\n{done.stdout}")
        data = json.loads(out.read_text())
        r = data["results"]["lmdb"]
        self.messages = {"command": data["command"], "get_rps": r["GET"]["rps"],
                         "ceiling_rps": r["ceiling GET"]["rps"], "ratio_runs": r["GET runs"],
                         "ratio": statistics.median(r["GET runs"]), "p99": r["GET"]["p99"],
                         "errors": r["GET"]["non2xx"] + r["GET"]["socket_errors"],
                         "other_load": load.cores()}
        log(f"  GET {self.messages['get_rps']:.0f} req/s vs ceiling "
            f"{self.messages['ceiling_rps']:.0f}: {self.messages['ratio']:.0%}")

    def close(self):
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
