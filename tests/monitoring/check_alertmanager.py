#!/usr/bin/env python3
"""The observability role's Alertmanager configuration, checked with Alertmanager's own tools.

1. templates/alertmanager.yml.j2 is rendered with the role's defaults (and once more with
   webhook receivers set) and `amtool check-config` accepts both.
2. For every alert of the rule files given on the command line, `amtool config routes test`
   with the labels the alert will carry (its static labels, alertname, the external label
   `deployment`, an instance) resolves to the receiver its severity names: page or ticket.
3. Inhibition, against a real prometheus-alertmanager on a loopback port: HashdInstanceDown
   holds back the other alerts of its instance and nothing else (not another VM's, not the
   fleet-wide SLO alerts); a fast burn holds back the slow-burn ticket of the same SLO.
Exit status 1 on the first failure. The Alertmanager started here is stopped by its PID.
"""

import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import jinja2
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible/roles/observability"


def render(**overrides):
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    values = {k: v for k, v in defaults.items() if k.startswith("observability_alertmanager_")}
    values.update(overrides, ansible_managed="rendered by tests/monitoring/check_alertmanager.py")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=False)
    template = env.from_string((ROLE / "templates/alertmanager.yml.j2").read_text())
    return template.render(**values)


def run(*args):
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"check_alertmanager: {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def alerts_of(rule_files):
    for rule_file in rule_files:
        for group in yaml.safe_load(open(rule_file))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield rule


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, path, body=None):
    request = urllib.request.Request(base + path, method="POST" if body is not None else "GET",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def check_inhibition(config_path, workdir):
    port = free_port()
    process = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={config_path}",
         f"--storage.path={workdir}/data", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(f"{workdir}/alertmanager.log", "w"))
    base = f"http://127.0.0.1:{port}/api/v2"
    try:
        for _ in range(100):  # up to 10 s for it to listen
            try:
                api(base, "/status")
                break
            except OSError:
                if process.poll() is not None:
                    sys.exit("check_alertmanager: alertmanager exited:\n" +
                             open(f"{workdir}/alertmanager.log").read())
                time.sleep(0.1)
        common = {"deployment": "hashd-local", "service": "hashd"}
        sent = {
            "down-vm1": {"alertname": "HashdInstanceDown", "severity": "page", "job": "hashd",
                         "instance": "vm1"},
            "store-vm1": {"alertname": "HashdStoreErrors", "severity": "page", "instance": "vm1",
                          "backend": "redis"},
            "saturated-vm1": {"alertname": "HashdSaturated", "severity": "ticket",
                              "instance": "vm1"},
            "store-vm2": {"alertname": "HashdStoreErrors", "severity": "page", "instance": "vm2",
                          "backend": "redis"},
            "slo-fast": {"alertname": "HashdErrorBudgetBurnFast", "severity": "page",
                         "slo": "messages-availability"},
            "slo-slow": {"alertname": "HashdErrorBudgetBurnSlow", "severity": "ticket",
                         "slo": "messages-availability"},
            "slo-slow-other": {"alertname": "HashdErrorBudgetBurnSlow", "severity": "ticket",
                               "slo": "hash-latency"},
        }
        expected = {"down-vm1": False, "store-vm1": True, "saturated-vm1": True,
                    "store-vm2": False, "slo-fast": False, "slo-slow": True,
                    "slo-slow-other": False}
        api(base, "/alerts", [{"labels": {**common, **labels}} for labels in sent.values()])
        for _ in range(100):  # inhibition is computed when the alerts are read; allow 10 s
            got = {}
            for alert in api(base, "/alerts"):
                for name, labels in sent.items():
                    if all(alert["labels"].get(k) == v for k, v in labels.items()):
                        got[name] = bool(alert["status"]["inhibitedBy"])
            if got == expected:
                break
            time.sleep(0.1)
        if got != expected:
            sys.exit(f"check_alertmanager: inhibited alerts {got}, expected {expected}")
        print(f"SUCCESS: inhibition: {sorted(k for k, v in got.items() if v)} held back, "
              f"{sorted(k for k, v in got.items() if not v)} not")
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(rule_files):
    with tempfile.TemporaryDirectory(prefix="hashd-am-") as workdir:
        config = pathlib.Path(workdir) / "alertmanager.yml"
        config.write_text(render(
            observability_alertmanager_page_webhooks=["http://127.0.0.1:9/page"],
            observability_alertmanager_ticket_webhooks=["http://127.0.0.1:9/ticket"]))
        run("amtool", "check-config", str(config))
        config.write_text(render())
        run("amtool", "check-config", str(config))

        tested = 0
        for rule in alerts_of(rule_files):
            labels = {"deployment": "hashd-local", "service": "hashd", "instance": "10.213.1.2",
                      "alertname": rule["alert"], **rule.get("labels", {})}
            severity = labels.get("severity")
            if severity not in ("page", "ticket"):
                sys.exit(f"check_alertmanager: {rule['alert']}: severity {severity!r} is "
                         "neither page nor ticket")
            run("amtool", "config", "routes", "test", f"--config.file={config}",
                f"--verify.receivers={severity}", *[f"{k}={v}" for k, v in labels.items()])
            tested += 1
        # An alert without a severity is not lost: it becomes a ticket.
        run("amtool", "config", "routes", "test", f"--config.file={config}",
            "--verify.receivers=ticket", "alertname=Unknown", "deployment=hashd-local")
        print(f"SUCCESS: amtool routes {tested} alerts to the receiver their severity names")
        check_inhibition(config, workdir)


if __name__ == "__main__":
    main(sys.argv[1:])
