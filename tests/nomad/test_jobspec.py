"""The job files parse with HashiCorp's HCL parser and pass a check of what Nomad rejects;
the check itself is tested with broken copies of the real job file."""

import json
import re
import subprocess

import pytest
import yaml

from hcl import EDGE_JOB, HASHD_JOB, HERE, REPO, check_parsed, parse_many


def test_the_parser_lockfile_records_no_download_addresses():
    lock = json.loads((HERE / "package-lock.json").read_text())
    packages = lock["packages"]
    assert "node_modules/@cdktf/hcl2json" in packages
    assert all("resolved" not in p for p in packages.values()), \
        "package-lock.json names a registry; tests/nomad/.npmrc should prevent it"


def test_the_job_file_is_generated_from_the_nginx_templates():
    result = subprocess.run([str(REPO / "nomad" / "generate"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# (what is broken, text in hashd.nomad.hcl, its replacement, what Nomad would say)
BROKEN = [
    ("misspelled update key", "max_parallel      = 1", "max_paralel      = 1",
     "Unsupported argument; 'max_paralel'"),
    ("unknown block", "    ephemeral_disk {", "    ephemeral_disks {", "Unsupported block type"),
    ("a check type Nomad does not run", 'name     = "healthz"\n        type     = "http"',
     'name     = "healthz"\n        type     = "script"', "invalid check type ('script')"),
    ("tls_skip_verify on a Nomad check", 'path     = "/readyz"',
     'path     = "/readyz"\n        tls_skip_verify = true',
     "tls_skip_verify may only be set for Consul service checks"),
    ("two providers in one group", 'provider = "nomad"\n      name     = "hashd-metrics"',
     'provider = "consul"\n      name     = "hashd-metrics"', "Multiple service providers"),
    ("check port that is no port", 'port     = "status"\n        path     = "/healthz"',
     'port     = "probe"\n        path     = "/healthz"', "check port label 'probe'"),
    ("absolute check path", 'path     = "/readyz"', 'path     = "http://x/readyz"',
     "http type must have relative http path"),
    ("check interval under 1 s", 'interval = "5s"', 'interval = "500ms"',
     "cannot be lower than 1s"),
    ("not a duration", 'healthy_deadline  = "2m"', 'healthy_deadline  = "2 minutes"',
     "Inappropriate value for attribute 'healthy_deadline'"),
    ("min_healthy_time beyond the deadline", 'min_healthy_time  = "15s"',
     'min_healthy_time  = "3m"', "Minimum healthy time"),
    ("auto_promote without canaries", "canary            = 1", "canary            = 0",
     "Auto Promote requires a Canary"),
    ("unknown restart mode", 'mode     = "fail"', 'mode     = "sometimes"',
     "Unsupported restart mode"),
    ("restarts that cannot fit their interval", 'delay    = "200ms"', 'delay    = "10s"',
     "can't restart the TaskGroup 10 times"),
    ("reschedule delay under 5 s", 'delay          = "30s"', 'delay          = "1s"',
     "Delay cannot be less than 5s"),
    ("unknown delay function", '"exponential"', '"linear"', "Invalid delay function"),
    ("cpu and cores together", "cores      = 1", "cores      = 1\n        cpu        = 500",
     "'cpu' or 'cores'"),
    ("memory_max below memory", "memory_max = 256", "memory_max = 16", "MemoryMaxMB value"),
    ("a count beyond the scaling maximum", "max     = 20", "max     = 1",
     "maximum count must not be less than minimum"),
    ("an Autoscaler strategy that does not exist", 'strategy "target-value"',
     'strategy "target-velocity"', "unknown Autoscaler strategy"),
    ("signal change_mode without a signal",
     'change_signal = "SIGHUP"\n        data          = "{{ with nomadVar \\"nomad/jobs/hashd\\" }}{{ .tls_crt }}',
     'data          = "{{ with nomadVar \\"nomad/jobs/hashd\\" }}{{ .tls_crt }}',
     "Must specify signal value"),
    ("an exec config key exec does not have", '"--instance=1"]', '"--instance=1"]\n        image = "hashd"',
     "Unsupported argument; 'image'"),
    ("a task without a driver", '    task "hashd-2" {\n      driver = "exec"',
     '    task "hashd-2" {', "Missing driver"),
    ("an undeclared variable", "${var.hashd_fcgi}", "${var.hashd_binary}",
     "no variable named 'hashd_binary'"),
    ("an expression the check cannot judge", "${var.hashd_fcgi}", "${upper(var.hashd_fcgi)}",
     "is not one this check evaluates"),
    ("a variable default of the wrong type", "  default     = 2\n", '  default     = "two"\n',
     "number required"),
    ("an invalid service name", 'name     = "hashd-metrics"', 'name     = "hashd_metrics"',
     "RFC 1123"),
    ("the same service twice", 'name     = "hashd-metrics"\n      port     = "status"',
     'name     = "hashd-api"\n      port     = "https"', "Service hashd-api is duplicate"),
    ("a limited reschedule in too short an interval", "unlimited      = true",
     'attempts       = 3\n      interval       = "10s"', "Interval cannot be less than 15s"),
]


SYNTAX_ERROR = ('  group "hashd" {', '  group "hashd" {{')


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    """Every file of this module parsed in one run of the parser: the two job files, a copy
    with a syntax error and one broken copy per BROKEN case (by index)."""
    d = tmp_path_factory.mktemp("broken")
    text = HASHD_JOB.read_text()
    files = {"hashd": HASHD_JOB, "edge": EDGE_JOB}
    for key, (old, new) in [("syntax", SYNTAX_ERROR)] + [(i, (b[1], b[2])) for i, b in enumerate(BROKEN)]:
        assert old in text, f"the mutation's anchor is gone from the job file: {old!r}"
        files[key] = d / f"broken-{key}.nomad.hcl"
        files[key].write_text(text.replace(old, new, 1))
    results = parse_many(list(files.values()))
    return {key: results[path] for key, path in files.items()}


@pytest.mark.parametrize("key", ["hashd", "edge"])
def test_job_file_passes_the_schema_check(parsed, key):
    errors, jobs = check_parsed(*parsed[key])
    assert errors == []
    assert len(jobs) == 1


def test_a_syntax_error_is_reported_with_its_position(parsed):
    json_, error = parsed["syntax"]
    assert json_ is None
    assert re.search(r"broken-syntax\.nomad\.hcl:\d+,\d+", error), error


@pytest.mark.parametrize("index", range(len(BROKEN)), ids=[b[0] for b in BROKEN])
def test_the_schema_check_rejects_what_nomad_rejects(parsed, index):
    what, _, _, expected = BROKEN[index]
    errors, _ = check_parsed(*parsed[index])
    assert any(expected in e for e in errors), f"{what}: expected {expected!r} in {errors}"


def test_an_undeclared_minus_var_is_refused(parsed):
    errors, _ = check_parsed(*parsed["hashd"], {"hashd_binary": "/x"})
    assert any("Undefined variable" in e for e in errors), errors


def test_the_job_has_the_shape_the_readme_promises(parsed):
    errors, jobs = check_parsed(*parsed["hashd"])
    assert errors == []
    group = jobs["hashd"]["group"]["hashd"]
    services = {s["name"]: s for s in group["service"]}
    assert set(services) == {"hashd-api", "hashd-metrics"}
    assert {s["provider"] for s in services.values()} == {"nomad"}
    assert {c["path"] for c in services["hashd-api"]["check"]} == {"/healthz", "/readyz"}
    update = group["update"][0]
    assert update["canary"] >= 1 and update["auto_revert"] and update["health_check"] == "checks"
    assert group["restart"][0] and group["reschedule"][0]
    check = group["scaling"][0]["policy"][0]["check"]["saturation"]
    assert check["source"] == "prometheus" and "target-value" in check["strategy"]
    assert "hashd_workers_busy" in check["query"] and "hashd_workers{" in check["query"]
    tasks = group["task"]
    fcgi = sorted(t for t in tasks if re.fullmatch(r"hashd-\d+", t))
    assert len(fcgi) >= 2 and "nginx" in tasks and "hashd-worker" in tasks
    assert {t["driver"] for t in tasks.values()} == {"exec"}
    for task in tasks.values():
        assert task["resources"], "every task states its resources"
    # nginx's upstream lists exactly the sockets the hashd tasks bind.
    sockets = {t["config"][0]["args"][2] for n, t in tasks.items() if n in fcgi}
    upstream = next(t["data"] for t in tasks["nginx"]["template"]
                    if t["destination"] == "local/nginx/hashd/site.conf")
    listed = set(re.findall(r"server unix:(.+?\.sock) max_conns", upstream))
    assert listed == {s.replace("${NOMAD_ALLOC_DIR}", '{{ env "NOMAD_ALLOC_DIR" }}') for s in sockets}
    instances = sorted(t["config"][0]["args"][-1] for n, t in tasks.items() if n in fcgi)
    assert instances == [f"--instance={i}" for i in range(1, len(fcgi) + 1)]


def test_both_prometheus_configurations_differ_only_in_discovery(parsed):
    native = yaml.safe_load((REPO / "nomad" / "prometheus-nomad-sd.yml").read_text())
    errors, jobs = check_parsed(*parsed["edge"])
    assert errors == []
    template = next(t["data"] for t in jobs["hashd-edge"]["group"]["edge"]["task"]["prometheus"]["template"]
                    if t["destination"] == "local/prometheus.yml")
    fallback = yaml.safe_load(template)
    native_job = native["scrape_configs"][0]
    fallback_job = fallback["scrape_configs"][0]
    assert "nomad_sd_configs" in native_job and "file_sd_configs" in fallback_job
    del native_job["nomad_sd_configs"], fallback_job["file_sd_configs"]
    assert native == fallback
