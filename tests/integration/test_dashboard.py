"""The Grafana dashboard (ansible/roles/observability/files/grafana/hashd.json) against a real
Prometheus scraping a loaded local stack.

Grafana is not installable here, so the queries are what is tested: every target of every
panel is run (with $instance as "all" and $__rate_interval as 1m) against Debian's Prometheus,
which scrapes the stack as the operators' job does and loads the repository's rule files. Each
must return series, each series must carry the labels its legend names (`{{route}}` promises a
route label), and the per-route, per-cost, per-SLO panels must show what the load exercised.
Every metric a query names must be one the app exports (a TYPE line of its /metrics) or a
recording rule; the test prints the name each gets in Cloud Monitoring via the Ops Agent
(prometheus.googleapis.com/<name>/<kind>).
"""

import json
import re
import time

import pytest
import yaml

from harness.hashd_stack import REPO, wait_for
from test_metrics import Prometheus

DASHBOARD = REPO / "ansible/roles/observability/files/grafana/hashd.json"
MONITORING = REPO / "ansible/monitoring/prometheus"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
ROUTES = {"/v1/hash", "/v1/verify", "/gethash", "/messages", "/messages/:digest"}
# The dashboard's queries are the subject, not the app's memory: left out of the sanitized
# run of tests/integration (a minute there), run in the plain one.
pytestmark = pytest.mark.slow


def targets():
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def concrete(expr):
    return expr.replace('instance=~"$instance"', 'instance=~".*"').replace("$__rate_interval", "1m")


def load(stack):
    """A bounded mix of every kind of request the dashboard shows."""
    for i in range(12):
        for cost in (4, 10):
            r = stack.post("/v1/hash", json={"password": f"dash {i}", "cost": cost})
            assert r.status_code == 200, r.text
        assert stack.post("/v1/verify", json={"password": f"dash {i}",
                                              "hash": r.json()["bcrypt"]}).status_code == 200
        assert stack.get(f"/gethash/dash{i}/").status_code == 200
        digest = stack.post("/messages", json={"message": f"dash {i}"}).json()["digest"]
        assert stack.get(f"/messages/{digest}").status_code == 200
        assert stack.get("/messages/" + "0" * 64).status_code == 404
        assert stack.post("/v1/hash", json={"password": ""}).status_code == 400
        assert stack.post("/multivac/data", data={"data": f"dash {i}"}).status_code == 200


def test_every_panel_returns_the_series_it_promises(make_stack):
    stack = make_stack(workers=1, app_env={"HASHD_COST_MIN": "4"})
    # test_metrics.py's server, with every rule file (the SLO panels read recorded series).
    prom = Prometheus(stack, rule_files=RULE_FILES)
    try:
        wait_for(lambda: prom.query('up{job="hashd"} == 1'), 60, "a first scrape")
        load(stack)
        done = time.time()
        # Scraped after the load, and the rules evaluated on it.
        prom.scraped_after(done)
        wait_for(lambda: prom.query('slo:sli_error:ratio_rate5m{slo="hash-latency"}'), 60,
                 "the SLO rules to be evaluated")

        report, problems = [], []
        for title, target in targets():
            expr = concrete(target["expr"])
            series = [labels for labels, _ in prom.query(expr)]
            promised = re.findall(r"\{\{\s*(\w+)\s*\}\}", target["legendFormat"])
            shown = sorted({target["legendFormat"].replace("{{", "{").replace("}}", "}")
                           .format(**{k: m.get(k, "?") for k in promised}) for m in series})
            report.append(f"{title} [{target['refId']}]: {len(series)} series: {', '.join(shown)}")
            if not series:
                problems.append(f"{title}: {expr} returned nothing")
            for m in series:
                missing = [k for k in promised if k not in m]
                if missing:
                    problems.append(f"{title}: a series lacks {missing}: {m}")

            def got(label, series=series):
                return {m.get(label) for m in series}

            if "route" in promised and not ROUTES <= got("route"):
                problems.append(f"{title}: routes {sorted(got('route'))} lack some of {sorted(ROUTES)}")
            if "cost" in promised and not {"4", "10"} <= got("cost"):
                problems.append(f"{title}: costs {sorted(got('cost'))}, expected 4 and 10")
            if "slo" in promised and got("slo") != {"hash-availability", "messages-availability",
                                                    "hash-latency"}:
                problems.append(f"{title}: SLOs {sorted(got('slo'))}")
            if "backend" in promised and "lmdb" not in got("backend"):
                problems.append(f"{title}: backends {sorted(got('backend'))}")
        print("\n" + "\n".join(report))
        assert not problems, "\n".join(problems)

        # Every metric named is exported (or recorded), and its Cloud Monitoring name.
        code, exposition = stack.status("/metrics")
        assert code == 200
        kinds = dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M))
        recorded = {r["record"] for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"]
                    for r in g["rules"] if "record" in r}
        metric_name = r"\b([a-z_]+:[a-z0-9_:]+|(?:hashd|process)_[a-z0-9_]+)\b"
        used = {n for _, t in targets() for n in re.findall(metric_name, t["expr"])}
        gcp = []
        for name in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name in recorded:
                gcp.append(f"{name}: recording rule (not in Cloud Monitoring: use its expression)")
                continue
            assert base in kinds, f"{name} is neither exported nor recorded"
            gcp.append(f"{name}: prometheus.googleapis.com/{base}/{kinds[base]}")
        print("\n".join(gcp))
    finally:
        prom.stop()
