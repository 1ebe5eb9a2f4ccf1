"""GET /metrics of the pool, as an operator's Prometheus sees it.

A real Prometheus server (Debian's `prometheus`) is started by the test on a free loopback
port with its own configuration and storage directory, scrapes the local stack's /metrics
through nginx over HTTPS (as a monitoring server does; nginx serves /metrics to loopback),
loads the repository's alerting rules, and is stopped by PID. The tests then ask it with
PromQL over its HTTP API, so the numbers checked are the numbers dashboards and alerts get.
"""

import concurrent.futures
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
import yaml

from harness.hashd_stack import REPO, fcgi_bin, free_port, wait_for

SERVER_CONFIG = REPO / "ansible" / "monitoring" / "prometheus" / "prometheus-local.yml"
RULES = SERVER_CONFIG.parent / "rules" / "hashd.yml"

FAMILIES = [
    "hashd_requests_total", "hashd_request_duration_seconds", "hashd_hash_duration_seconds",
    "hashd_queue_wait_seconds", "hashd_inflight_requests", "hashd_workers_busy",
    "hashd_workers", "hashd_shed_requests_total", "hashd_store_operations_total",
    "hashd_store_duration_seconds", "hashd_legacy_get_requests_total",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
    "process_start_time_seconds", "hashd_build_info",
]

# Cost 4 keeps hashing at ~1 ms; the app's accepted range must include it.
FAST_HASHING = {"HASHD_COST_DEFAULT": "4", "HASHD_COST_MIN": "4"}


class Prometheus:
    """A Prometheus server scraping one stack every second."""

    def __init__(self, stack, nginx_exporter=None, rule_files=(RULES,)):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hashd-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The operators' scrape job (prometheus-local.yml), pointed at this stack: its scheme,
        # path and relabelling are what is tested, with the stack's address and certificate.
        jobs = {j["job_name"]: j for j in yaml.safe_load(SERVER_CONFIG.read_text())["scrape_configs"]}
        job = jobs["hashd"]
        job["static_configs"] = [{"targets": [f"localhost:{stack.https_port}"]}]
        job["tls_config"]["ca_file"] = str(stack.cert)
        scrape = [job]
        if nginx_exporter:
            jobs["nginx"]["static_configs"] = [{"targets": [f"localhost:{nginx_exporter}"]}]
            scrape.append(jobs["nginx"])
        config = self.dir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape,
        }))
        self.log = open(self.dir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready, 60, "prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}: "
                                 + (self.dir / "prometheus.log").read_text())
        try:
            return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, promql):
        """An instant query: [(labels, value)]."""
        r = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return [(s["metric"], float(s["value"][1])) for s in body["data"]["result"]]

    def value(self, promql):
        result = self.query(promql)
        assert len(result) == 1, f"{promql}: {result}"
        return result[0][1]

    def scraped_after(self, moment):
        """Waits until every target has been scraped successfully after `moment`
        (time.time())."""
        def fresh():
            # timestamp() of the selector itself: of `up == 1` it would be the query's time.
            scraped = self.query("timestamp(up)")
            return (scraped and all(t > moment for _, t in scraped)
                    and all(v == 1 for _, v in self.query("up")))
        wait_for(fresh, 30, "a Prometheus scrape of every target")

    def requests_by_series(self):
        """{(route, method, status): count} of hashd_requests_total, scrapes left out."""
        return {(m["route"], m["method"], m["status"]): v
                for m, v in self.query(latest('hashd_requests_total{route!="/metrics"}'))}


def latest(selector):
    """The newest sample of each series in the last minute. An instant query of the bare
    selector returns nothing for a series whose last scrape failed (Prometheus marks it
    stale), which a loaded machine can cause; the samples the test waited for remain."""
    return f"last_over_time({selector}[1m])"


@pytest.fixture
def prometheus_for():
    started = []

    def start(stack, **kwargs):
        p = Prometheus(stack, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def settle(prom):
    """Returns once Prometheus holds a scrape taken after every request so far was counted
    (the app counts a request just after writing its response: allow it that moment)."""
    time.sleep(0.2)
    prom.scraped_after(time.time())


def send_burst(stack):
    """7 hashes (concurrently, so both processes serve some), 3 bad requests, 2 unknown
    paths. Returns the request ids of the hashes."""
    def hash_one(_):
        r = stack.post("/v1/hash", json={"password": "pw-" + uuid.uuid4().hex[:8], "cost": 4})
        assert r.status_code == 200, r.text
        return r.headers["X-Request-Id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=7) as pool:
        ids = list(pool.map(hash_one, range(7)))
    for body in ("not json", "{}", '{"password": 5}'):
        r = stack.post("/v1/hash", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
    for path in ("/no-such-thing", "/v2/hash"):
        assert stack.get(path).status_code == 404
    return ids


def diff(after, before):
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    return {k: v for k, v in changed.items() if v != 0}


@pytest.mark.slow
def test_prometheus_counts_a_known_burst_per_route_and_status_over_the_pool(
        make_stack, prometheus_for):
    stack = make_stack(processes=2, app_env=FAST_HASHING)
    prom = prometheus_for(stack)
    settle(prom)
    before = prom.requests_by_series()
    hashes_before = sum(v for _, v in prom.query(latest('hashd_hash_duration_seconds_count{cost="4"}')))
    waits_before = prom.value(latest("hashd_queue_wait_seconds_count"))

    ids = send_burst(stack)
    settle(prom)

    assert diff(prom.requests_by_series(), before) == {
        ("/v1/hash", "POST", "200"): 7,
        ("/v1/hash", "POST", "400"): 3,
        ("unmatched", "GET", "404"): 2,
    }
    # The same through aggregation, as a dashboard asks it.
    per_status = {m["status"]: v for m, v in prom.query(
        "sum by (status) (" + latest('hashd_requests_total{route="/v1/hash"}') + ")")}
    assert per_status["200"] - before.get(("/v1/hash", "POST", "200"), 0) == 7
    assert prom.value(latest('hashd_hash_duration_seconds_count{cost="4"}')) - hashes_before == 7
    # Every admitted hash measured its wait in the hashing queue (the other requests are
    # answered by the accepting threads and never queue).
    assert prom.value(latest("hashd_queue_wait_seconds_count")) - waits_before == 7
    assert prom.value(latest("hashd_queue_wait_seconds_count") + " > 0") > 0
    assert prom.value(latest("hashd_workers")) == 2  # 2 processes x HASHD_THREADS=1
    assert prom.value(latest("hashd_processes")) == 2

    # The counts are the pool's: both processes served part of the burst, yet every
    # scrape (answered by one of them) had all of it.
    served_by = [sum(1 for i in ids if i in (stack.log_dir / f"hashd-{n}.log").read_text())
                 for n in (1, 2)]
    assert sum(served_by) == 7 and all(served_by), served_by

    # The repository's rules load and evaluate against the real metrics.
    groups = requests.get(prom.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {g["name"] for g in groups} == {"hashd.recording", "hashd.alerts"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    # The job's relabelling names the VM by host, as the rules' joins expect.
    assert prom.query('up{job="hashd"}')[0][0]["instance"] == "localhost"


@pytest.mark.slow
def test_counters_survive_a_killed_process(make_stack, prometheus_for):
    stack = make_stack(processes=2, app_env=FAST_HASHING)
    prom = prometheus_for(stack)
    send_burst(stack)
    settle(prom)
    before = prom.requests_by_series()
    starts = prom.value(latest("hashd_process_starts_total"))
    cpu = prom.value(latest("process_cpu_seconds_total"))

    for instance in (1, 2):
        old = stack.signal(instance, signal.SIGKILL)
        stack.wait_restarted(instance, old)
        wait_for(lambda: stack.get("/healthz").status_code == 200, 30, "the pool to serve")
        settle(prom)
        after = prom.requests_by_series()
        decreased = {k: (before[k], after.get(k)) for k in before if after.get(k, 0) < before[k]}
        assert not decreased, f"counters went backwards after kill -9 of hashd-{instance}"
        before = after

    # Prometheus itself never saw a counter reset, and the restarts are visible.
    assert prom.value("sum(resets(hashd_requests_total[5m]))") == 0
    assert prom.value(latest("hashd_process_starts_total")) == starts + 2
    assert prom.value(latest("process_cpu_seconds_total")) >= cpu
    assert prom.value(latest("hashd_processes")) == 2
    # The killed processes' workers are not counted twice.
    assert prom.value(latest("hashd_workers")) == 2

    # And the pool keeps counting into the same series.
    send_burst(stack)
    settle(prom)
    assert diff(prom.requests_by_series(), before) == {
        ("/v1/hash", "POST", "200"): 7,
        ("/v1/hash", "POST", "400"): 3,
        ("unmatched", "GET", "404"): 2,
    }
    # ... which the recording rules turn into a rate for this VM (a series' first sample is
    # no increase to Prometheus: this second burst is).
    wait_for(lambda: prom.query('instance:hashd_requests:rate5m{instance="localhost"} > 0'), 30,
             "the recording rules to see the second burst")


def test_metrics_exposition_is_valid_and_complete(stack):
    """What a scraper gets from loopback over HTTPS: valid text format (promtool's own
    check), every documented family, no client-chosen label values."""
    stack.post("/v1/hash", json={"password": "pw-" + uuid.uuid4().hex[:8]})
    stack.get("/messages/" + "0" * 64)
    r = stack.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run(["promtool", "check", "metrics"], input=r.text, text=True,
                           capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    types = {line.split()[2] for line in r.text.splitlines() if line.startswith("# TYPE ")}
    assert set(FAMILIES) <= types, set(FAMILIES) - types
    assert "0" * 64 not in r.text  # a digest is never a label
    assert 'route="/messages/:digest"' in r.text
    # The status listener (what the on-VM agents scrape) serves the same families.
    code, body = stack.status("/metrics")
    assert code == 200
    assert set(FAMILIES) <= {entry.split()[2] for entry in body.splitlines() if entry.startswith("# TYPE ")}


def test_build_info_names_the_version_the_binary_prints_and_the_changelog_s(stack):
    """One version everywhere: hashd_build_info's label is what `hashd-fcgi --version` prints
    and CHANGELOG.md's newest entry (the .deb's side is in tests/security)."""
    printed = subprocess.run([str(fcgi_bin()), "--version"], capture_output=True, text=True,
                             check=True).stdout.split()
    changelog = re.search(r"^## \[([0-9.]+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    code, body = stack.status("/metrics")
    assert code == 200
    info = re.search(r'^hashd_build_info\{version="([^"]+)",commit="([^"]+)"\} 1$', body, re.M)
    assert info, body[:2000]
    assert info.group(1) == printed[1] == changelog.group(1)
    assert f"({info.group(2)})" == printed[2]


@pytest.fixture
def nginx_exporter():
    """prometheus-nginx-exporter (Debian's) reading a stack's stub_status; its port."""
    started = []

    def start(stack):
        port = free_port()
        proc = subprocess.Popen(
            ["prometheus-nginx-exporter",
             f"-nginx.scrape-uri=unix:{stack.run_dir / 'status.sock'}:/nginx_status",
             f"-web.listen-address=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)

        def answers():
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).ok
            except requests.RequestException:
                return False
        wait_for(answers, 30, "prometheus-nginx-exporter")
        return port

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_rate_limited_requests_show_as_requests_nginx_answered_itself(make_stack, prometheus_for,
                                                                      nginx_exporter):
    """The 429 signal of the alert rules (HashdRequestsRefusedByNginx): requests counted by
    nginx (stub_status, through the exporter) but never answered by the app."""
    stack = make_stack(processes=1, app_env=FAST_HASHING,
                       nginx={"hash_rate": "1r/m", "hash_burst": 1})
    prom = prometheus_for(stack, nginx_exporter=nginx_exporter(stack))
    wait_for(lambda: prom.query('up{job="nginx",instance="localhost"} == 1'), 30,
             "Prometheus to scrape the nginx exporter")
    settle(prom)
    nginx_before = prom.value(latest('nginx_http_requests_total'))
    app_before = prom.value("sum(" + latest("hashd_requests_total") + ")")

    statuses = [stack.post("/v1/hash", json={"password": "pw-limited", "cost": 4}).status_code
                for _ in range(20)]
    limited = statuses.count(429)
    assert limited >= 15 and statuses.count(200) == 20 - limited, statuses
    settle(prom)

    answered_by_nginx = ((prom.value(latest('nginx_http_requests_total')) - nginx_before)
                         - (prom.value("sum(" + latest("hashd_requests_total") + ")") - app_before))
    # At least every 429; a few more are the exporter's own stub_status reads, which nginx
    # answers itself too (one a second here).
    assert answered_by_nginx >= limited
    wait_for(lambda: prom.query(
        'instance:nginx_requests_not_forwarded:rate5m{instance="localhost"} > 0'), 30,
        "the recording rule to see the refused requests")
