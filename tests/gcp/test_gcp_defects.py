"""Issue 20's defects of the GCP deployment, each checked here against the same Compute
stand-in as test_gcp.py (its `world` fixture: tests/gcp/standin.py behind a CONNECT proxy,
every Compute call validated against compute.v1.json), or against the files themselves
where no API call is involved. Each test failed on the code before its fix.

A fault proxy (FaultProxy below) sits in front of the stand-in where retries are the point: it
refuses CONNECTs, or terminates TLS with the run's test certificate and answers 503 or 429,
for the first calls to one Google API host, then relays to the stand-in untouched.
"""

import json
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import urllib.parse

import pytest
import yaml

from test_gcp import (BOOT_SCRIPT, GCP, P, PROJECT, REGION, REPO, link, res, templates,  # noqa: F401
                      world)

APP = REPO / "build" / "fcgi-app" / "hashd-fcgi"
STORE = "redis://10.10.0.3:6379/0"
SETTINGS = json.dumps({"hashd_settings": {"HASHD_STORE": STORE}})

# nginx's site as the image has it, reduced to what hashd-gce-config edits.
SITE_CONF = """# --- Client address ---
set_real_ip_from 130.211.0.0/22;
set_real_ip_from 35.191.0.0/16;
real_ip_header X-Forwarded-For;
real_ip_recursive on;

upstream hashd {
    zone hashd_upstream 64k;
    least_conn;
    server unix:/run/hashd/hashd-1.sock max_conns=9 max_fails=1 fail_timeout=1s;
}

upstream hashd_probes {
    zone hashd_probes 64k;
    least_conn;
    server unix:/run/hashd/hashd-1.sock max_fails=1 fail_timeout=1s;
}
"""


# ------------------------------------------------------------------------------------------
# A fault-injecting CONNECT proxy in front of the stand-in
# ------------------------------------------------------------------------------------------


class FaultProxy:
    """For CONNECTs to `host`, the first entries of `faults` are played in order: "refuse"
    (the CONNECT is answered 503: a connection error for the client), or an HTTP status
    (TLS is terminated with the test certificate and the request answered with it). Every
    other CONNECT is relayed to the stand-in's proxy byte for byte."""

    def __init__(self, world, host, faults):
        self.world, self.host, self.faults = world, host, list(faults)
        self.played = []
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(world.dir / "api.pem", world.dir / "api.key")
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy.serve(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def read_head(sock):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def serve(self, client):
        head = self.read_head(client)
        line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        target = line.split(" ")[1] if " " in line else ""
        fault = None
        if target == f"{self.host}:443" and self.faults:
            fault = self.faults.pop(0)
            self.played.append(fault)
        if fault == "refuse":
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            return
        if fault is not None:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            tls = self.tls.wrap_socket(client, server_side=True)
            self.read_head(tls)
            body = json.dumps({"error": {"code": fault, "message": "injected", "status": "UNAVAILABLE"}}).encode()
            tls.sendall(f"HTTP/1.1 {fault} Injected\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            tls.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.world.port), timeout=60)
        upstream.sendall(head)

        def pipe(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        t.start()
        pipe(client, upstream)
        t.join(60)
        upstream.close()


@pytest.fixture
def fault_proxy(world):
    made = []

    def make(host, faults):
        made.append(FaultProxy(world, host, faults))
        return made[-1]

    yield make
    for p in made:
        p.close()


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def boot(world, root, attributes, *extra, proxy=None, processes=2):
    world.seed(metadata={"attributes": attributes, "project": PROJECT})
    env = dict(world.env, GCE_METADATA_HOST=f"127.0.0.1:{world.port}", SSL_CERT_FILE=str(world.dir / "ca.pem"))
    if proxy:
        env.update(HTTPS_PROXY=proxy.url, https_proxy=proxy.url)
    site = root / "etc/nginx/hashd/site.conf"
    if not site.exists():
        site.parent.mkdir(parents=True, exist_ok=True)
        site.write_text(SITE_CONF)
    return subprocess.run([sys.executable, str(BOOT_SCRIPT), "--root", str(root), "--timeout", "30",
                           "--app", str(APP), "--processes", str(processes), *extra],
                          env=env, capture_output=True, text=True, timeout=180)


def playbook_json(world, path, *extra, proxy=None):
    """ansible-playbook with the stand-in's environment; returns (rc, parsed JSON output)."""
    args = ["ansible-playbook", "-i", "localhost,", str(path),
            "-e", f"gcp_project={PROJECT}", "-e", f"gcp_region={REGION}",
            "-e", "gcp_auth_kind=serviceaccount", "-e", f"gcp_service_account_file={world.dir / 'sa.json'}",
            "-e", "gcp_poll_interval_s=0.2", *extra]
    env = dict(world.env)
    if proxy:
        env.update(HTTPS_PROXY=proxy.url, https_proxy=proxy.url)
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO))
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook (rc {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def task_results(out, name):
    return [h for play in out["plays"] for t in play["tasks"] if t["task"]["name"] == name
            for h in t["hosts"].values()]


def failed_messages(out):
    return [str(h.get("msg")) for play in out["plays"] for t in play["tasks"]
            for h in t["hosts"].values() if h.get("failed")]


def writes_since(world, n):
    return [c for c in world.state()["calls"][n:] if not c.startswith("GET ")]


def seed_image(world, prefix, version="1-0-0"):
    """The image image.yml would have baked for another deployment prefix."""
    world.seed(resources={f"{P}/global/images/{prefix}-{version}":
                          {"kind": "compute#image", "name": f"{prefix}-{version}", "family": prefix}})


def lb_args(world):
    return ["-e", f"gcp_tls_certificate_file={world.dir / 'lb.pem'}",
            "-e", f"gcp_tls_private_key_file={world.dir / 'lb.key'}",
            "-e", "gcp_rollout_timeout_s=120"]


# ------------------------------------------------------------------------------------------
# The boot script (hashd-gce-config)
# ------------------------------------------------------------------------------------------


def test_the_worker_gets_the_store_too(world, tmp_path):
    r = boot(world, tmp_path, {"hashd-settings": json.dumps({"HASHD_STORE": STORE}),
                               "hashd-store-allow": "10.10.0.3/32"})
    assert r.returncode == 0, r.stderr
    for unit in ("hashd@.service", "hashd-worker.service"):
        dropin = tmp_path / f"run/systemd/system/{unit}.d/50-gce.conf"
        assert dropin.exists(), f"{unit} gets no drop-in: it would keep the image's store"
        text = dropin.read_text()
        assert "EnvironmentFile=-/run/hashd-gce/hashd.env" in text and "IPAddressAllow=10.10.0.3/32" in text
    assert (tmp_path / "run/hashd-gce/hashd.env").read_text() == f"HASHD_STORE={STORE}\n"
    # And the image orders the worker after the boot script, like the processes.
    tasks = yaml.safe_load((GCP / "roles/gce_image/tasks/boot_wiring.yml").read_text())
    loops = [t.get("loop") for t in tasks if "after-gce-config.conf" in json.dumps(t)]
    assert loops and all("hashd-worker.service" in loop for loop in loops)


def test_settings_are_one_channel_checked_by_the_apps_loader(world, tmp_path):
    assert APP.exists(), "run `make build` first"
    good = {"HASHD_STORE": STORE, "HASHD_COST_DEFAULT": 11, "HASHD_LEGACY_GET": False}
    r = boot(world, tmp_path, {"hashd-settings": json.dumps(good)})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run/hashd-gce/hashd.env").read_text() == \
        f"HASHD_COST_DEFAULT=11\nHASHD_LEGACY_GET=0\nHASHD_STORE={STORE}\n"
    # Any setting, not a whitelist: a typo and a bad value are refused by hashd-fcgi itself.
    for bad, why in (({"HASHD_COST_DEFUALT": "11"}, "HASHD_COST_DEFUALT is not a hashd setting"),
                     ({"HASHD_COST_DEFAULT": "99"}, "HASHD_COST_DEFAULT"),
                     ({"HASHD_STORE": "mysql://x"}, "HASHD_STORE")):
        root = tmp_path / f"bad{len(why)}"
        r = boot(world, root, {"hashd-settings": json.dumps(bad)})
        assert r.returncode == 1 and "--check-config" in r.stderr and why in r.stderr, (bad, r.stderr)
        assert not (root / "run/hashd-gce/hashd.env").exists(), "a refused file must not be left for the units"


def test_the_process_count_follows_the_vms_vcpus(world, tmp_path):
    r = boot(world, tmp_path, {}, processes=3)
    assert r.returncode == 0, r.stderr
    site = (tmp_path / "etc/nginx/hashd/site.conf").read_text()
    for upstream in ("hashd", "hashd_probes"):
        block = re.search(rf"^upstream {upstream} {{\n(.*?)^}}", site, flags=re.M | re.S).group(1)
        assert re.findall(r"hashd-(\d+)\.sock", block) == ["1", "2", "3"], block
    assert "max_conns=9" in site, "each server line keeps its parameters"
    wants = (tmp_path / "run/systemd/system/hashd.target.d/50-gce-processes.conf").read_text()
    assert "Wants=hashd@1.service hashd@2.service hashd@3.service" in wants
    # A second boot on a smaller machine type shrinks it again.
    assert boot(world, tmp_path, {}, processes=1).returncode == 0
    assert re.findall(r"hashd-(\d+)\.sock", (tmp_path / "etc/nginx/hashd/site.conf").read_text()) == ["1", "1"]
    # Without --processes the script counts this machine's CPUs.
    text = BOOT_SCRIPT.read_text()
    assert "sched_getaffinity" in text


def test_secret_manager_is_retried_with_back_off(world, tmp_path, fault_proxy):
    password = "retried+secret/="
    world.seed(secrets={f"{P}/secrets/hashd-retry": password})
    proxy = fault_proxy("secretmanager.googleapis.com", ["refuse", 503, 429])
    r = boot(world, tmp_path, {"hashd-settings": json.dumps({"HASHD_STORE": STORE}),
                               "hashd-store-password-secret": f"{P}/secrets/hashd-retry"}, proxy=proxy)
    assert proxy.played == ["refuse", 503, 429]
    assert r.returncode == 0, r.stderr
    env = (tmp_path / "run/hashd-gce/hashd.env").read_text()
    assert env == f"HASHD_STORE=redis://:{urllib.parse.quote(password, safe='')}@10.10.0.3:6379/0\n"
    assert password not in r.stdout + r.stderr
    assert r.stderr.count("retrying in") == 3
    # A refusal that waiting cannot fix (403, 404) still fails at once, naming the secret.
    r = boot(world, tmp_path / "absent", {"hashd-settings": json.dumps({"HASHD_STORE": STORE}),
                                          "hashd-store-password-secret": f"{P}/secrets/absent"})
    assert r.returncode == 1 and "HTTP 404" in r.stderr and "retrying" not in r.stderr


# ------------------------------------------------------------------------------------------
# What the image and the inventory give nginx
# ------------------------------------------------------------------------------------------


def builder_play_vars():
    """The role variables of image.yml's builder play, with the GCP defaults they refer to."""
    plays = yaml.safe_load((GCP / "image.yml").read_text())
    (builder,) = [p for p in plays if p["hosts"] == "hashd"]
    values = {}
    for f in builder.get("vars_files", []):
        values.update(yaml.safe_load((GCP / f).read_text()) or {})
    values.update(builder.get("vars", {}) or {})
    # The older image.yml put them on the host it added.
    for task in plays[0]["tasks"]:
        values.update({k: v for k, v in (task.get("ansible.builtin.add_host") or {}).items()
                       if k.startswith("hashd_nginx_")})
    return values


def test_backend_keepalive_outlasts_googles_600_s(tmp_path):
    values = builder_play_vars()
    sets = [f"hashd_nginx_{k}={values[f'hashd_nginx_{k}']}" for k in ("keepalive_timeout", "keepalive_requests")
            if f"hashd_nginx_{k}" in values]
    out = tmp_path / "nginx"
    subprocess.run([sys.executable, str(REPO / "nginx/render"), str(out),
                    *[a for s in sets for a in ("--set", s)]], check=True, capture_output=True, timeout=60)
    site = (out / "hashd/site.conf").read_text()
    timeout = re.search(r"^keepalive_timeout (\d+)s;", site, flags=re.M)
    assert timeout and int(timeout.group(1)) > 600, "the image's nginx closes idle connections before Google's LB does"
    requests_ = re.search(r"^keepalive_requests (\d+);", site, flags=re.M)
    assert requests_ and int(requests_.group(1)) >= 10000
    # The inventory for VMs behind the LB outside a MIG says the same.
    inventory = yaml.safe_load((REPO / "ansible/inventories/gcp/hosts.yml").read_text())
    hv = inventory["all"]["children"]["hashd"]["vars"]
    assert int(str(hv["hashd_nginx_keepalive_timeout"]).rstrip("s")) > 600


def test_inventory_trusts_the_load_balancers_own_address():
    r = subprocess.run(["ansible", "hashd-1", "-i", str(REPO / "ansible/inventories/gcp/hosts.yml"),
                        "-m", "ansible.builtin.debug", "-a", "var=hashd_nginx_trusted_proxies",
                        "-e", "gcp_lb_address=198.51.100.7"],
                       capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    trusted = json.loads(r.stdout.split("=>", 1)[1])["hashd_nginx_trusted_proxies"]
    assert trusted == ["130.211.0.0/22", "35.191.0.0/16", "198.51.100.7/32"]


def test_ops_agent_ships_the_worker_and_the_boot_script():
    config = yaml.safe_load((REPO / "ansible/monitoring/ops-agent/config.yaml").read_text())
    processors = config["logging"]["processors"]
    shipped = set()
    for name, pipeline in config["logging"]["service"]["pipelines"].items():
        for p in pipeline.get("processors", []):
            for rule in processors[p].get("match_any", []):
                m = re.fullmatch(r'NOT jsonPayload\._SYSTEMD_UNIT =~ "(.*)"', rule)
                if m:
                    pattern = m.group(1).replace("\\\\", "\\")
                    shipped |= {u for u in ("hashd@1.service", "hashd-worker.service",
                                            "hashd-gce-config.service", "sshd.service") if re.search(pattern, u)}
    assert shipped == {"hashd@1.service", "hashd-worker.service", "hashd-gce-config.service"}


def test_the_builder_key_is_ignored_by_git():
    for name in (".builder_ssh_key", ".builder_ssh_key.pub"):
        r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", f"ansible/gcp/{name}"])
        assert r.returncode == 0, f"ansible/gcp/{name} is not ignored by git"


# ------------------------------------------------------------------------------------------
# site.yml and teardown.yml against the stand-in
# ------------------------------------------------------------------------------------------


def test_site_refuses_a_store_local_to_each_vm(world):
    calls = len(world.state()["calls"])
    rc, out = playbook_json(world, GCP / "site.yml", "-e", "hashd_version=1.0.0", *lb_args(world),
                            "-e", json.dumps({"hashd_settings": {}}))
    assert rc != 0 and any("loses its acknowledged messages" in m for m in failed_messages(out)), failed_messages(out)
    assert writes_since(world, calls) == [], "nothing may be created before the refusal"
    # The explicit opt-in passes the check (what follows it is the run the other tests make).
    plays = yaml.safe_load((GCP / "site.yml").read_text())
    (check,) = [t for t in plays[0]["tasks"] if t["name"].startswith("Check that no acknowledged message")]
    assert "hashd_gce_allow_local_store" in check["ansible.builtin.assert"]["that"]


def test_one_settings_channel_and_a_store_blind_lb_check(world):
    rc, out = playbook_json(world, GCP / "site.yml", "-e", "hashd_version=1.0.0", *lb_args(world),
                            "-e", json.dumps({"hashd_settings": {"HASHD_STORE": STORE, "HASHD_COST_DEFAULT": 11}}))
    assert rc == 0, failed_messages(out)
    s = world.state()
    (tpl,) = [s["resources"][p] for p in templates(s) if "/instanceTemplates/hashd-1-0-0-" in p]
    md = {i["key"]: i["value"] for i in tpl["properties"]["metadata"]["items"]}
    assert json.loads(md["hashd-settings"]) == {"HASHD_STORE": STORE, "HASHD_COST_DEFAULT": 11}
    assert not any(k.startswith(("hashd-cost-", "hashd-store\0")) for k in md) and "hashd-store" not in md
    # The LB's check reflects draining, not the shared store; autohealing's stays /healthz.
    assert res(s, "global/healthChecks/hashd-readyz")["httpsHealthCheck"]["requestPath"] == "/readyz/serving"
    assert res(s, "global/healthChecks/hashd-healthz")["httpsHealthCheck"]["requestPath"] == "/healthz"
    # The template's name covers its whole body: the digest is that of what the play sent.
    (result,) = task_results(out, "Ensure the instance template exists for version 1.0.0")
    args = result["invocation"]["module_args"]
    digest = __import__("hashlib").sha1(json.dumps(args["body"], sort_keys=True).encode()).hexdigest()[:8]
    assert args["name"].endswith("-" + digest), (args["name"], digest)
    assert tpl["properties"]["labels"]["hashd-deployment"] == "hashd"


def test_managed_certificate_change_keeps_the_served_one_until_active(world):
    """What site.yml asks the HTTPS proxy to serve. (Today's stand-in answers
    setSslCertificates 501, and google.cloud 1.1.3's proxy module ignores that answer, so the
    proxy's state cannot show it: the request the module was given is checked.)"""
    seed_image(world, "hashd-staging")
    base = ["-e", "hashd_version=1.0.0", *lb_args(world), "-e", SETTINGS, "-e", "gcp_prefix=hashd-staging"]
    proxy_task = "Ensure the HTTPS proxy terminates TLS with the certificate and the SSL policy"

    def asked(domain):
        rc, out = playbook_json(world, GCP / "site.yml", *base, "-e", json.dumps({"gcp_tls_domains": [domain]}))
        assert rc == 0, failed_messages(out)
        (result,) = task_results(out, proxy_task)
        return [c["selfLink"].rsplit("/", 1)[-1] for c in result["invocation"]["module_args"]["ssl_certificates"]]

    (first,) = asked("a.example.com")
    served = asked("b.example.com")
    assert len(served) == 2 and served[0] == first, f"the new certificate is PROVISIONING: keep {first}; got {served}"
    new = served[1]
    # Google turns it ACTIVE; the next run detaches the old one.
    path = f"{P}/global/sslCertificates/{new}"
    cert = world.state()["resources"][path]
    cert["managed"]["status"] = "ACTIVE"
    world.seed(resources={path: {k: v for k, v in cert.items() if k not in ("id", "selfLink", "creationTimestamp")}})
    assert asked("b.example.com") == [new]


def test_teardown_of_one_deployment_leaves_the_other(world):
    """Two deployments in one project, "hashd" and "hashd-staging" (left by the two tests
    above; run alone, this test makes them), one prefix the start of the other's."""
    s = world.state()
    for prefix in ("hashd", "hashd-staging"):
        if f"{P}/regions/{REGION}/instanceGroupManagers/{prefix}" not in s["resources"]:
            seed_image(world, prefix)
            rc, out = playbook_json(world, GCP / "site.yml", "-e", "hashd_version=1.0.0", *lb_args(world),
                                    "-e", SETTINGS, "-e", f"gcp_prefix={prefix}")
            assert rc == 0, failed_messages(out)
    other_before = sorted(p for p in world.state()["resources"] if "/hashd-staging" in p and "/images/" not in p)
    rc, out = playbook_json(world, GCP / "teardown.yml", "-e", "hashd_version=1.0.0", "-e", "gcp_prefix=hashd")
    assert rc == 0, failed_messages(out)
    left = sorted(p for p in world.state()["resources"]
                  if "/networks/default" not in p and "/images/" not in p)
    assert left == other_before, f"teardown of hashd touched hashd-staging: {sorted(set(other_before) - set(left))}"
    rc, out = playbook_json(world, GCP / "teardown.yml", "-e", "hashd_version=1.0.0", "-e", "gcp_prefix=hashd-staging")
    assert rc == 0, failed_messages(out)
    assert [p for p in world.state()["resources"] if "/networks/default" not in p and "/images/" not in p] == []


# ------------------------------------------------------------------------------------------
# hashd_gcp_compute and image.yml
# ------------------------------------------------------------------------------------------


def one_task_playbook(tmp_path, tasks, plays_vars=None):
    book = [{"name": "one task", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars_files": [str(GCP / "defaults.yml"), str(GCP / "vars/derived.yml")],
             "vars": plays_vars or {},
             "module_defaults": {
                 "group/google.cloud.gcp": {"project": "{{ gcp_project }}", "auth_kind": "{{ gcp_auth_kind }}",
                                            "service_account_file": "{{ gcp_service_account_file }}"},
                 "hashd_gcp_compute": {"project": "{{ gcp_project }}", "auth_kind": "{{ gcp_auth_kind }}",
                                       "service_account_file": "{{ gcp_service_account_file }}",
                                       "poll_interval": 0.2}},
             "tasks": tasks}]
    path = GCP / f".test-{tmp_path.name}.yml"  # beside the playbooks: library/ is found there
    path.write_text(yaml.safe_dump(book))
    return path


def test_compute_calls_are_retried_on_429_5xx_and_connection_errors(world, tmp_path, fault_proxy):
    proxy = fault_proxy("compute.googleapis.com", ["refuse", 503, 429, 500])
    book = one_task_playbook(tmp_path, [{"name": "read a policy", "hashd_gcp_compute": {
        "resource": "securityPolicies", "name": "hashd-retry-probe", "state": "absent"}}])
    try:
        rc, out = playbook_json(world, book, proxy=proxy)
    finally:
        book.unlink()
    assert proxy.played == ["refuse", 503, 429, 500]
    assert rc == 0, failed_messages(out)
    (result,) = task_results(out, "read a policy")
    assert result["retried"] == ["GET connection error", "GET 503", "GET 429", "GET 500"]


def image_task(name):
    for play in yaml.safe_load((GCP / "image.yml").read_text()):
        stack = list(play.get("tasks", []))
        while stack:
            t = stack.pop(0)
            stack[:0] = t.get("block", []) + t.get("rescue", []) + t.get("always", [])
            if t.get("name") == name:
                return t
    raise AssertionError(f"no task {name!r} in image.yml")


def test_stopping_the_builder_makes_one_call(world, tmp_path):
    zone = f"{REGION}-b"
    r = world.session().post(f"https://compute.googleapis.com/compute/v1/{P}/zones/{zone}/instances", json={
        "name": "hashd-builder-9-9-9", "machineType": f"zones/{zone}/machineTypes/e2-standard-2",
        "labels": {"app": "hashd"},
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
            "sourceImage": ("https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/"
                            "family/debian-12")}}],
        "networkInterfaces": [{"network": link("global/networks/default")}]}, timeout=30)
    assert r.status_code == 200, r.text
    task = image_task("Ensure the builder is stopped, so its disk is consistent")
    book = one_task_playbook(tmp_path, [task], {"hashd_version": "9.9.9"})
    calls = len(world.state()["calls"])
    try:
        rc, out = playbook_json(world, book)
    finally:
        book.unlink()
    assert rc == 0, failed_messages(out)
    writes = writes_since(world, calls)
    assert [w.rsplit("/", 1)[-1] for w in writes] == ["stop"], f"stray calls: {writes}"
    assert res(world.state(), f"zones/{zone}/instances/hashd-builder-9-9-9")["status"] == "TERMINATED"
    world.session().delete(f"https://compute.googleapis.com/compute/v1/{P}/zones/{zone}/instances/hashd-builder-9-9-9",
                           timeout=30)


@pytest.fixture
def debs(tmp_path):
    d = tmp_path / "build"
    d.mkdir()
    for v in ("1.0.0", "1.1.0"):
        (d / f"hashd_{v}_amd64.deb").write_bytes(b"not a real package: never installed by this test")
    return d


def builder_left(world):
    return sorted(p for p in world.state()["resources"] if "builder" in p)


def test_image_bakes_only_the_deb_it_is_named_after(world, debs):
    calls = len(world.state()["calls"])
    rc, out = playbook_json(world, GCP / "image.yml", "-e", "hashd_version=1.2.0", "-e", f"gcp_deb_dir={debs}",
                            "-e", "gcp_builder_ssh_sources=['192.0.2.1/32']")
    assert rc != 0 and any("hashd_1.2.0" in m for m in failed_messages(out)), failed_messages(out)
    assert writes_since(world, calls) == [] and builder_left(world) == []


def test_a_failed_bake_removes_the_builder_and_its_firewall_rule(world, debs, tmp_path):
    # SSH goes through the IAP ProxyCommand; here one that fails at once (no traffic at all):
    # the bake fails like one whose builder never answers.
    rc, out = playbook_json(world, GCP / "image.yml", "-e", "hashd_version=1.0.0", "-e", f"gcp_deb_dir={debs}",
                            "-e", "gcp_builder_ssh_proxy_command=false", "-e", "gcp_builder_ssh_timeout_s=3",
                            "-e", f"gcp_builder_ssh_key={tmp_path / 'key'}")
    assert rc != 0
    (added,) = [h for h in task_results(out, "Add the builder to this run's inventory")]
    host_vars = added["add_host"]["host_vars"]
    assert host_vars["gcp_deb_path"].endswith("/hashd_1.0.0_amd64.deb"), "not the .deb that sorts last"
    assert "ProxyCommand" in host_vars["ansible_ssh_common_args"], "the builder is reached through IAP"
    s = world.state()
    assert any(c.startswith("POST ") and c.endswith("/instances") for c in s["calls"]), "the builder was created"
    assert builder_left(world) == [], f"left behind after a failed bake: {builder_left(world)}"
    assert "global/firewalls/hashd-builder-ssh" not in json.dumps(sorted(s["resources"]))
    # No external address on the builder (IAP): nothing in the insert asked for one.
    (insert,) = task_results(out, "Ensure the builder runs Debian 12")
    assert not insert["invocation"]["module_args"]["network_interfaces"][0].get("access_configs")
    assert any("not baking the image" in m for m in failed_messages(out)), failed_messages(out)


def test_a_handler_failing_in_the_bake_is_rescued_so_the_builder_is_still_removed(tmp_path):
    """A handler runs after the play's tasks unless flushed: one that failed (nginx's reload,
    a restart) on the builder, the play's only host, ended the run before the last play
    deleted the builder and its firewall rule. The roles' handlers are flushed inside the
    bake's block, where a failure is rescued; and that is how this Ansible behaves (run)."""
    plays = yaml.safe_load((GCP / "image.yml").read_text())
    (builder,) = [p for p in plays if p["hosts"] == "hashd"]
    (bake,) = [t for t in builder["tasks"] if "block" in t]
    assert "rescue" in bake
    actions = [next(iter(k for k in t if k.startswith("ansible.builtin."))) + ":" +
               str(t.get("ansible.builtin.meta", "")) for t in bake["block"]]
    assert "ansible.builtin.meta:flush_handlers" in actions, actions

    def run(flush):
        play = [{"hosts": "localhost", "gather_facts": False,
                 "handlers": [{"name": "bad", "ansible.builtin.command": "/bin/false"}],
                 "tasks": [{"block": [{"ansible.builtin.command": "/bin/true", "notify": "bad"}]
                            + ([{"ansible.builtin.meta": "flush_handlers"}] if flush else []),
                            "rescue": [{"ansible.builtin.set_fact": {"rescued": True}}]}]},
                {"hosts": "localhost", "gather_facts": False,
                 "tasks": [{"ansible.builtin.debug": {"msg": "cleanup ran"}}]}]
        path = tmp_path / f"flush-{flush}.yml"
        path.write_text(yaml.safe_dump(play))
        r = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(path)],
                           capture_output=True, text=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "HOME": str(tmp_path)})
        return "cleanup ran" in r.stdout
    assert run(flush=True) and not run(flush=False)
