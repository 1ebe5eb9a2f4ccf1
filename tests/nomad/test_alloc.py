"""The tasks of nomad/hashd.nomad.hcl run as written, and the edge job's HAProxy and Prometheus
run from the catalogue they would read (tests/nomad/allocation.py says what is Nomad's part
here and what only a real cluster proves)."""

import contextlib
import json
import re
import subprocess
import tempfile
import urllib.parse
import urllib.request

import bcrypt
import pytest
import requests

from allocation import Allocation, free_port
from hcl import EDGE_JOB, HASHD_JOB, check_parsed, parse_many

# The address the client sends from when it goes through HAProxy: not HAProxy's (127.0.0.1),
# so nginx's log shows whether X-Forwarded-For was believed from the trusted proxy.
CLIENT_ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def jobs():
    parsed = parse_many([HASHD_JOB, EDGE_JOB])
    return parsed


def evaluated(parsed, overrides):
    errors, jobs = check_parsed(*parsed, overrides)
    assert errors == [], errors
    (name, job), = jobs.items()
    return name, job


@contextlib.contextmanager
def running(parsed, overrides, group, renderer, variables, catalogue=None):
    """One allocation of the job's `group`, started in a fresh directory and serving (every
    check of the group passing); stopped and removed afterwards. Yields (alloc, statuses):
    `statuses` is filled with the tasks' exit statuses once they are stopped."""
    name, job = evaluated(parsed, overrides)
    alloc = Allocation(tempfile.mkdtemp(prefix=f"{name}-nomad-alloc-"), name, job, group,
                       renderer, variables, catalogue=catalogue)
    statuses = {}
    try:
        alloc.start()
        alloc.wait_until(lambda: all(ok for *_, ok, _ in alloc.run_checks()),
                         f"every check of group {group} to pass")
        yield alloc, statuses
    finally:
        statuses.update(alloc.stop())
        alloc.cleanup()


def worker_binary(hashd_binary):
    """hashd-worker, built beside hashd-fcgi."""
    return hashd_binary.parent / "hashd-worker"


def hashd_variables(certificate):
    crt, key = certificate
    return {"nomad/jobs/hashd": {"tls_crt": crt.read_text(), "tls_key": key.read_text()}}


@pytest.fixture(scope="module")
def hashd_alloc(jobs, renderer, certificate, hashd_binary):
    # -var values as a user would give them: the binary under test, the edge's address.
    overrides = {"hashd_fcgi": str(hashd_binary), "hashd_worker": str(worker_binary(hashd_binary)),
                 "trusted_proxies": "127.0.0.1/32"}
    with running(jobs[HASHD_JOB], overrides, "hashd", renderer,
                 hashd_variables(certificate)) as (alloc, _):
        yield alloc


def https(alloc):
    return f"https://localhost:{alloc.ports['https']}"


def test_nginx_accepts_the_rendered_configuration(hashd_alloc):
    task_dir = hashd_alloc.task_dir("nginx") / "local" / "nginx"
    result = subprocess.run(["nginx", "-t", "-p", f"{task_dir}/", "-c", "nginx.conf", "-e", "stderr"],
                            capture_output=True, text=True, timeout=60,
                            env=hashd_alloc.task_env("nginx"))
    assert result.returncode == 0, result.stderr


def test_every_check_of_the_group_passes(hashd_alloc):
    results = hashd_alloc.run_checks()
    checked = {(service, name) for service, name, _, _ in results}
    assert checked == {("hashd-api", "healthz"), ("hashd-api", "readyz"),
                       ("hashd-metrics", "healthz")}
    assert all(ok for *_, ok, _ in results), results


def test_hashes_made_through_the_jobs_nginx_verify(hashd_alloc, certificate):
    crt, _ = certificate
    for i in range(4):  # more requests than processes: least_conn spreads them
        password = f"nomad-test-{i}"
        r = requests.post(f"{https(hashd_alloc)}/v1/hash", json={"password": password, "cost": 10},
                          verify=str(crt), timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert bcrypt.checkpw(password.encode(), body["bcrypt"].encode())
        assert bytes.fromhex(body["hash"]).decode() == body["bcrypt"]
        v = requests.post(f"{https(hashd_alloc)}/v1/verify",
                          json={"password": password, "hash": body["bcrypt"]}, verify=str(crt),
                          timeout=30)
        assert v.json()["match"] is True


def test_messages_are_stored_in_the_allocation(hashd_alloc, certificate):
    crt, _ = certificate
    r = requests.post(f"{https(hashd_alloc)}/messages", json={"message": "nomad"}, verify=str(crt),
                      timeout=30)
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    g = requests.get(f"{https(hashd_alloc)}/messages/{digest}", verify=str(crt), timeout=30)
    assert g.json() == {"message": "nomad"}
    assert (hashd_alloc.alloc_dir / "data" / "messages").is_dir()


def test_the_units_worker_consumes_the_multivac_queue(hashd_alloc, certificate):
    crt, _ = certificate
    r = requests.post(f"{https(hashd_alloc)}/multivac/data", data={"data": "nomad-datum"},
                      verify=str(crt), timeout=30)
    assert r.status_code == 200, r.text

    def processed():
        return requests.get(f"{https(hashd_alloc)}/multivac", verify=str(crt),
                            timeout=30).text == "nomad-datum"

    hashd_alloc.wait_until(processed, "the hashd-worker task to process the datum", timeout=60)


def test_check_paths_answer_200_over_https_too(hashd_alloc, certificate):
    crt, _ = certificate
    for path in ("/healthz", "/readyz"):
        assert requests.get(f"{https(hashd_alloc)}{path}", verify=str(crt), timeout=30).status_code == 200


def test_plain_http_redirects_to_the_load_balancers_https(hashd_alloc):
    r = requests.get(f"http://127.0.0.1:{hashd_alloc.ports['http']}/v1/hash", allow_redirects=False,
                     timeout=30)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://127.0.0.1/v1/hash"


def test_metrics_describe_the_whole_pool(hashd_alloc):
    processes = sum(1 for t in hashd_alloc.group["task"] if re.fullmatch(r"hashd-\d+", t))
    text = urllib.request.urlopen(f"http://127.0.0.1:{hashd_alloc.ports['status']}/metrics",
                                  timeout=30).read().decode()
    assert re.search(rf"^hashd_workers {processes}(\.0)?$", text, re.M), text[:2000]
    assert "hashd_requests_total{" in text


def access_log(alloc):
    path = alloc.alloc_dir / "logs" / "nginx-access.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_each_task_logs_where_nomad_keeps_logs(hashd_alloc, certificate):
    crt, _ = certificate
    requests.get(f"{https(hashd_alloc)}/gethash/sekrit-nomad/", verify=str(crt), timeout=30)
    hashd_alloc.wait_until(lambda: "/gethash/[redacted]/" in access_log(hashd_alloc),
                           "nginx's JSON access line in alloc/logs/nginx-access.log", timeout=30)
    logs = access_log(hashd_alloc) + "".join(
        hashd_alloc.log(t, s) for t in hashd_alloc.group["task"] for s in ("stdout", "stderr"))
    assert "sekrit-nomad" not in logs
    assert '"REQUEST_ID"' in hashd_alloc.log("hashd-1") + hashd_alloc.log("hashd-2")


# --- The edge job, fed from the running allocation's registrations ---------------------------

@pytest.fixture(scope="module")
def edge_alloc(jobs, renderer, certificate, hashd_alloc):
    crt, key = certificate
    overrides = {"https_port": free_port(), "http_port": free_port(),
                 "prometheus_port": free_port()}
    variables = {"nomad/jobs/hashd-edge": {"tls_pem": crt.read_text() + key.read_text(),
                                           "backend_ca": crt.read_text()}}
    with running(jobs[EDGE_JOB], overrides, "edge", renderer, variables,
                 catalogue=hashd_alloc.registrations()) as (alloc, _):
        yield alloc


def test_promtool_accepts_the_rendered_prometheus_configuration(edge_alloc):
    local = edge_alloc.task_dir("prometheus") / "local"
    result = subprocess.run(["promtool", "check", "config", str(local / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    targets = json.loads((local / "hashd-targets.json").read_text())
    assert [t["labels"]["__meta_nomad_service"] for t in targets] == ["hashd-metrics"]


def test_haproxy_accepts_the_rendered_configuration(edge_alloc):
    cfg = edge_alloc.task_dir("haproxy") / "local" / "haproxy.cfg"
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True,
                            timeout=60, env=edge_alloc.task_env("haproxy"))
    assert result.returncode == 0, result.stdout + result.stderr


def prometheus_query(edge_alloc, query):
    url = (f"http://127.0.0.1:{edge_alloc.ports['prometheus']}/api/v1/query?"
           + urllib.parse.urlencode({"query": query}))
    body = json.loads(urllib.request.urlopen(url, timeout=30).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_the_pool_through_the_catalogue(edge_alloc, hashd_alloc):
    edge_alloc.wait_until(lambda: prometheus_query(edge_alloc, 'up{job="hashd"} == 1'),
                          "Prometheus's first successful scrape of the allocation", timeout=120)
    workers = prometheus_query(edge_alloc, "hashd_workers")
    assert len(workers) == 1
    labels = workers[0]["metric"]
    assert labels["nomad_job"] == "hashd" and labels["nomad_alloc_id"] == hashd_alloc.alloc_id
    assert float(workers[0]["value"][1]) == 2


def test_the_autoscalers_query_evaluates_to_a_saturation(edge_alloc, hashd_alloc):
    edge_alloc.wait_until(lambda: prometheus_query(edge_alloc, 'up{job="hashd"} == 1'),
                          "a scrape", timeout=120)
    group = hashd_alloc.group
    query = group["scaling"][0]["policy"][0]["check"]["saturation"]["query"]
    result = prometheus_query(edge_alloc, query)
    assert len(result) == 1, f"{query} gave {result}"
    assert 0.0 <= float(result[0]["value"][1]) <= 1.0


def test_haproxy_balances_onto_the_allocation_with_the_clients_address(edge_alloc, hashd_alloc,
                                                                       certificate):
    crt, _ = certificate
    port = edge_alloc.ports["https"]
    # HAProxy marks the server up after `rise` successful /readyz checks.

    def answered():
        try:
            return _post_from(CLIENT_ADDRESS, port, crt).status_code == 200
        except requests.RequestException:
            return False

    edge_alloc.wait_until(answered, "a hash through HAProxy", timeout=60)
    r = _post_from(CLIENT_ADDRESS, port, crt, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200
    assert bcrypt.checkpw(b"through-the-edge", r.json()["bcrypt"].encode())
    request_id = r.headers["X-Request-Id"]

    def logged():
        return any(json.loads(line).get("request_id") == request_id
                   for line in access_log(hashd_alloc).splitlines() if line.startswith("{"))

    hashd_alloc.wait_until(logged, "nginx's access line of the request", timeout=30)
    line = next(json.loads(entry) for entry in access_log(hashd_alloc).splitlines()
                if entry.startswith("{") and json.loads(entry).get("request_id") == request_id)
    # The client's own address, not HAProxy's, and not the forged header.
    assert line["client"] == CLIENT_ADDRESS, line
    assert line["peer"] == "127.0.0.1"


def _post_from(source, port, crt, headers=None):
    """POST /v1/hash to HAProxy from a chosen loopback source address."""
    from requests.adapters import HTTPAdapter

    class SourceAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (source, 0)
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("https://", SourceAdapter())
    return session.post(f"https://localhost:{port}/v1/hash", json={"password": "through-the-edge",
                                                                   "cost": 10},
                        verify=str(crt), timeout=30, headers=headers or {})


def test_stopping_the_tasks_is_clean(jobs, renderer, certificate, hashd_binary):
    """A fresh allocation stopped as Nomad stops one: every task exits 0 on its kill_signal."""
    overrides = {"hashd_fcgi": str(hashd_binary), "hashd_worker": str(worker_binary(hashd_binary))}
    with running(jobs[HASHD_JOB], overrides, "hashd", renderer,
                 hashd_variables(certificate)) as (alloc, statuses):
        tasks = list(alloc.group["task"])
    assert statuses == {t: 0 for t in tasks}, statuses
