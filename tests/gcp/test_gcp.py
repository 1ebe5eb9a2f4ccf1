"""The GCP playbooks, run for real (ansible-playbook, google.cloud 1.1.3, hashd_gcp_compute)
against tests/gcp/standin.py, which checks every Compute call against Google's discovery
document and keeps the project's state. What this proves and what it cannot: README.md,
"Deploy to Google Cloud".

The discovery document is never copied into the repository: tests/gcp/discovery.py finds it
($HASHD_GCP_DISCOVERY, else a cache, else one download from Google's discovery service); when
none of these works the suite fails with one line saying how to get it (it never skips).
"""

import base64
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import discovery  # noqa: E402  (tests/gcp/discovery.py)
import keys  # noqa: E402  (tests/gcp/keys.py)

REPO = pathlib.Path(__file__).resolve().parents[2]
GCP = REPO / "ansible" / "gcp"
PROJECT = "hashd-test"
REGION = "europe-west1"
P = f"projects/{PROJECT}"
SELF = "https://www.googleapis.com/compute/v1/"
# Bounded waits: the machine is shared and slow; these are limits, never assertions on speed.
PLAYBOOK_TIMEOUT_S = 600


def find_discovery():
    try:
        return discovery.find()
    except discovery.NotFound as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A running stand-in, keys, and helpers to run playbooks and read the state."""
    discovery = find_discovery()
    d = tmp_path_factory.mktemp("gcp")
    keys.write(d, PROJECT)

    log = open(d / "standin.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests/gcp/standin.py"), "--discovery", str(discovery),
         "--cert", str(d / "api.pem"), "--key", str(d / "api.key"), "--sa-public-key", str(d / "sa.pub"),
         "--port-file", str(d / "port")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (d / "port").exists():
            assert proc.poll() is None, (d / "standin.log").read_text()
            assert time.monotonic() < deadline, "stand-in did not start in 120 s"
            time.sleep(0.2)
        w = World(d, int((d / "port").read_text()))
        # What exists in any real project before the playbooks run: the default network, and
        # the images image.yml baked for the two versions the tests roll between.
        w.seed(resources={
            f"{P}/global/networks/default": {"kind": "compute#network", "name": "default"},
            f"{P}/global/images/hashd-1-0-0": {"kind": "compute#image", "name": "hashd-1-0-0", "family": "hashd"},
            f"{P}/global/images/hashd-1-1-0": {"kind": "compute#image", "name": "hashd-1-1-0", "family": "hashd"},
        })
        yield w
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class World:
    def __init__(self, d, port):
        self.dir, self.port = d, port
        self.proxy = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ, HTTPS_PROXY=self.proxy, https_proxy=self.proxy,
                        REQUESTS_CA_BUNDLE=str(d / "ca.pem"), NO_PROXY="", no_proxy="",
                        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
                        ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                        ANSIBLE_RETRY_FILES_ENABLED="False",
                        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
        for var in ("ANSIBLE_CONFIG", "GCP_AUTH_KIND", "GCP_PROJECT", "GCP_SERVICE_ACCOUNT_FILE",
                    "http_proxy", "HTTP_PROXY"):
            self.env.pop(var, None)

    def seed(self, **body):
        r = requests.post(f"{self.proxy}/_standin/seed", json=body, timeout=30, proxies={"http": None})
        assert r.status_code == 204

    def state(self):
        return requests.get(f"{self.proxy}/_standin/state", timeout=30, proxies={"http": None}).json()

    def playbook(self, name, *extra, check=True):
        before = len(self.state()["violations"])
        args = ["ansible-playbook", "-i", "localhost,", str(GCP / name),
                "-e", f"gcp_project={PROJECT}", "-e", f"gcp_region={REGION}",
                "-e", "gcp_auth_kind=serviceaccount", "-e", f"gcp_service_account_file={self.dir / 'sa.json'}",
                "-e", f"gcp_tls_certificate_file={self.dir / 'lb.pem'}",
                "-e", f"gcp_tls_private_key_file={self.dir / 'lb.key'}",
                "-e", "gcp_rollout_timeout_s=120", "-e", "gcp_poll_interval_s=0.2",
                # A shared store: site.yml refuses one local to each VM (test_gcp_defects.py).
                "-e", '{"hashd_settings": {"HASHD_STORE": "redis://10.10.0.3:6379/0"}}', *extra]
        r = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT_S,
                           cwd=str(REPO))
        try:
            out = json.loads(r.stdout)
        except ValueError:
            pytest.fail(f"{name}: no JSON from ansible-playbook (rc {r.returncode}):\n"
                        f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
        failures = [(t["task"]["name"], h.get("msg"), (h.get("module_stderr") or "")[-1500:])
                    for play in out["plays"] for t in play["tasks"]
                    for h in t["hosts"].values() if h.get("failed")]
        violations = self.state()["violations"][before:]
        if check:
            assert r.returncode == 0 and not failures, f"{name} failed: {failures}\n{r.stderr[-3000:]}"
            assert not violations, f"{name} made calls outside compute.v1.json: {violations}"
        changed = [t["task"]["name"] for play in out["plays"] for t in play["tasks"]
                   for h in t["hosts"].values() if h.get("changed")]
        return out["stats"]["localhost"], changed

    def session(self):
        """An authorized session as a user's own script would have (token from the key)."""
        from google.auth.transport.requests import AuthorizedSession, Request
        from google.oauth2 import service_account

        s = requests.Session()
        s.trust_env = False  # this run's proxy and CA only, whatever the environment says
        s.proxies = {"https": self.proxy}
        s.verify = str(self.dir / "ca.pem")
        creds = service_account.Credentials.from_service_account_file(
            str(self.dir / "sa.json"), scopes=["https://www.googleapis.com/auth/compute"])
        creds.refresh(Request(s))
        a = AuthorizedSession(creds)
        a.trust_env, a.proxies, a.verify = False, s.proxies, s.verify
        return a


def res(state, path):
    r = state["resources"].get(f"{P}/{path}")
    assert r is not None, f"{path} missing; have {sorted(state['resources'])}"
    return r


def link(path):
    return SELF + f"{P}/{path}"


def templates(state):
    return sorted(p for p in state["resources"] if "/instanceTemplates/" in p)


# ------------------------------------------------------------------------------------------
# The tests, in the order an operator lives them
# ------------------------------------------------------------------------------------------


def test_site_creates_the_whole_graph(world):
    stats, _ = world.playbook("site.yml", "-e", "hashd_version=1.0.0")
    assert stats["changed"] > 0
    s = world.state()
    region = f"regions/{REGION}"
    (tpl_path,) = templates(s)
    tpl = s["resources"][tpl_path]
    props = tpl["properties"]
    assert props["disks"][0]["initializeParams"]["sourceImage"] == link("global/images/hashd-1-0-0")
    assert props["tags"]["items"] == ["hashd"]
    assert props["serviceAccounts"][0]["email"] == f"hashd-vm@{PROJECT}.iam.gserviceaccount.com"
    assert "accessConfigs" not in props["networkInterfaces"][0], "VMs must have no external address"
    md = {i["key"]: i["value"] for i in props["metadata"]["items"]}
    address = res(s, "global/addresses/hashd-ip")["address"]
    assert md["hashd-trusted-proxies"] == f"130.211.0.0/22,35.191.0.0/16,{address}/32"
    assert json.loads(md["hashd-settings"]) == {"HASHD_STORE": "redis://10.10.0.3:6379/0"}

    mig = res(s, f"{region}/instanceGroupManagers/hashd")
    assert mig["versions"] == [{"name": "1.0.0", "instanceTemplate": SELF + tpl_path}]
    assert mig["namedPorts"] == [{"name": "https", "port": 443}]
    assert mig["autoHealingPolicies"][0]["healthCheck"] == link("global/healthChecks/hashd-healthz")
    assert mig["autoHealingPolicies"][0]["initialDelaySec"] == 120
    assert len(mig["distributionPolicy"]["zones"]) == 3
    pol = mig["updatePolicy"]
    assert (pol["type"], pol["maxSurge"], pol["maxUnavailable"]) == ("PROACTIVE", {"fixed": 3}, {"fixed": 0})
    assert mig["status"]["isStable"] and mig["status"]["versionTarget"]["isReached"]

    auto = res(s, f"{region}/autoscalers/hashd")
    assert auto["target"] == link(f"{region}/instanceGroupManagers/hashd")
    ap = auto["autoscalingPolicy"]
    assert (ap["minNumReplicas"], ap["maxNumReplicas"]) == (2, 10)
    assert ap["cpuUtilization"]["utilizationTarget"] == 0.7
    assert ap["scaleInControl"]["maxScaledInReplicas"] == {"fixed": 2}
    assert len(s["instances"][f"{P}/{region}/instanceGroupManagers/hashd"]) == 2

    assert res(s, "global/healthChecks/hashd-readyz")["httpsHealthCheck"]["requestPath"] == "/readyz/serving"
    assert res(s, "global/healthChecks/hashd-healthz")["httpsHealthCheck"]["requestPath"] == "/healthz"
    fw = res(s, "global/firewalls/hashd-allow-lb")
    assert fw["sourceRanges"] == ["130.211.0.0/22", "35.191.0.0/16"]
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["443"]}] and fw["targetTags"] == ["hashd"]
    assert res(s, "global/firewalls/hashd-allow-iap-ssh")["sourceRanges"] == ["35.235.240.0/20"]

    be = res(s, "global/backendServices/hashd-backend")
    assert be["protocol"] == "HTTPS" and be["portName"] == "https"
    assert be["healthChecks"] == [link("global/healthChecks/hashd-readyz")]
    assert be["backends"][0]["group"] == link(f"{region}/instanceGroups/hashd")
    assert be["backends"][0]["balancingMode"] == "RATE"
    # The bench's per-vCPU figure x the default machine type's vCPUs x the headroom.
    defaults = yaml.safe_load((REPO / "ansible/gcp/defaults.yml").read_text())
    assert float(be["backends"][0]["maxRatePerInstance"]) == pytest.approx(
        defaults["gcp_hashes_per_vcpu_s"] * defaults["gcp_machine_vcpus"]
        * defaults["gcp_backend_rate_headroom"], abs=0.1)
    assert be["connectionDraining"]["drainingTimeoutSec"] == 60
    assert be["logConfig"]["enable"] is True
    assert be["securityPolicy"] == link("global/securityPolicies/hashd-armor")

    armor = res(s, "global/securityPolicies/hashd-armor")
    rules = {r["priority"]: r for r in armor["rules"]}
    # A tokened request is counted by its token, any other by its address (one rule applies).
    assert rules[2000]["action"] == rules[2001]["action"] == "rate_based_ban"
    assert rules[2000]["rateLimitOptions"]["enforceOnKey"] == "HTTP_HEADER"
    assert rules[2000]["rateLimitOptions"]["enforceOnKeyName"] == "Authorization"
    assert "startsWith('Bearer hashd_')" in rules[2000]["match"]["expr"]["expression"]
    assert rules[2001]["rateLimitOptions"]["enforceOnKey"] == "IP"
    assert "enforceOnKeyName" not in rules[2001]["rateLimitOptions"]
    for rule in (rules[2000], rules[2001]):
        assert "v1/hash" in rule["match"]["expr"]["expression"]
        assert rule["rateLimitOptions"]["rateLimitThreshold"]["count"] == 600
        assert rule["rateLimitOptions"]["banDurationSec"] == 600
    assert rules[2147483647]["action"] == "allow"

    ssl = res(s, "global/sslPolicies/hashd-modern")
    assert (ssl["profile"], ssl["minTlsVersion"]) == ("MODERN", "TLS_1_2")
    (cert_path,) = [p for p in s["resources"] if "/sslCertificates/" in p]
    assert "privateKey" not in s["resources"][cert_path]
    um = res(s, "global/urlMaps/hashd-https")
    assert um["defaultService"] == link("global/backendServices/hashd-backend")
    hp = res(s, "global/targetHttpsProxies/hashd-https")
    assert hp["urlMap"] == link("global/urlMaps/hashd-https")
    assert hp["sslCertificates"] == [SELF + cert_path] and hp["sslPolicy"] == link("global/sslPolicies/hashd-modern")
    redirect = res(s, "global/urlMaps/hashd-http-redirect")["defaultUrlRedirect"]
    assert redirect["httpsRedirect"] is True and redirect["redirectResponseCode"] == "MOVED_PERMANENTLY_DEFAULT"
    assert res(s, "global/targetHttpProxies/hashd-http")["urlMap"] == link("global/urlMaps/hashd-http-redirect")
    fr443 = res(s, "global/forwardingRules/hashd-https")
    fr80 = res(s, "global/forwardingRules/hashd-http")
    assert (fr443["IPAddress"], fr443["portRange"], fr443["target"]) == (
        address, "443-443", link("global/targetHttpsProxies/hashd-https"))
    assert (fr80["IPAddress"], fr80["portRange"], fr80["target"]) == (
        address, "80-80", link("global/targetHttpProxies/hashd-http"))


def test_second_run_changes_nothing(world):
    calls_before = len(world.state()["calls"])
    stats, changed = world.playbook("site.yml", "-e", "hashd_version=1.0.0")
    assert stats["changed"] == 0, f"changed on a second run: {changed}"
    writes = [c for c in world.state()["calls"][calls_before:] if not c.startswith("GET ")]
    assert writes == [], f"a second run must only read: {writes}"


def test_canary_keeps_the_old_template_in_use(world):
    world.playbook("site.yml", "-e", "hashd_version=1.0.0", "-e", "hashd_canary_version=1.1.0",
                   "-e", "hashd_canary_percent=50")
    s = world.state()
    mig = res(s, f"regions/{REGION}/instanceGroupManagers/hashd")
    old, new = (v["instanceTemplate"] for v in mig["versions"])
    assert mig["versions"][1]["targetSize"] == {"percent": 50}
    on = [i["template"] for i in s["instances"][f"{P}/regions/{REGION}/instanceGroupManagers/hashd"]]
    assert sorted(on) == sorted([old.removeprefix(SELF), new.removeprefix(SELF)])
    r = world.session().delete(old.replace(SELF, "https://compute.googleapis.com/compute/v1/"), timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"


def test_version_bump_rolls_the_group_proactively(world):
    before = set(templates(world.state()))
    calls_before = len(world.state()["calls"])
    world.playbook("site.yml", "-e", "hashd_version=1.1.0")
    s = world.state()
    mig = res(s, f"regions/{REGION}/instanceGroupManagers/hashd")
    (version,) = mig["versions"]
    assert version["name"] == "1.1.0" and version["instanceTemplate"].endswith(
        tuple(p for p in before if "hashd-1-1-0" in p))
    assert mig["updatePolicy"]["type"] == "PROACTIVE"
    patches = [c for c in s["calls"][calls_before:] if c.startswith("PATCH ") and "instanceGroupManagers/hashd" in c]
    assert patches, "the group must be patched, not recreated"
    on = {i["template"] for i in s["instances"][f"{P}/regions/{REGION}/instanceGroupManagers/hashd"]}
    assert on == {version["instanceTemplate"].removeprefix(SELF)}, "the rollout must reach every VM"
    assert mig["status"]["isStable"] and mig["status"]["versionTarget"]["isReached"]


def test_scale_moves_the_autoscaler_bounds_and_resize_is_refused(world):
    world.playbook("scale.yml", "-e", "hashd_version=1.1.0", "-e", "gcp_mig_min=3", "-e", "gcp_mig_max=12")
    s = world.state()
    ap = res(s, f"regions/{REGION}/autoscalers/hashd")["autoscalingPolicy"]
    assert (ap["minNumReplicas"], ap["maxNumReplicas"]) == (3, 12)
    assert len(s["instances"][f"{P}/regions/{REGION}/instanceGroupManagers/hashd"]) == 3
    r = world.session().post(
        f"https://compute.googleapis.com/compute/v1/{P}/regions/{REGION}/instanceGroupManagers/hashd/resize",
        params={"size": 7}, timeout=30)
    assert r.status_code == 400 and "autoscaler" in r.text


def test_schema_violations_are_refused(world):
    """The validator itself: an unknown field, a wrong type and a bad enum are all 400."""
    a = world.session()
    url = f"https://compute.googleapis.com/compute/v1/{P}/global/healthChecks"
    for body in ({"name": "x", "colour": "red"}, {"name": "x", "checkIntervalSec": "often"},
                 {"name": "x", "type": "CARRIER_PIGEON"}):
        r = a.post(url, json=body, timeout=30)
        assert r.status_code == 400, (body, r.text)
    r = a.put(f"https://compute.googleapis.com/compute/v1/{P}/regions/{REGION}/instanceGroupManagers/hashd",
              json={}, timeout=30)
    assert r.status_code == 404, "the PUT path google.cloud 1.1.3 uses for MIG updates is not in Compute v1"
    assert len(world.state()["violations"]) >= 4


def test_teardown_leaves_nothing(world):
    world.playbook("teardown.yml", "-e", "hashd_version=1.1.0")
    left = sorted(p for p in world.state()["resources"]
                  if "/networks/default" not in p and "/images/" not in p)
    assert left == []
    stats, _ = world.playbook("teardown.yml", "-e", "hashd_version=1.1.0")
    assert stats["changed"] == 0


# ------------------------------------------------------------------------------------------
# On the VM: hashd-gce-config reads the metadata and Secret Manager (not in compute.v1.json;
# the stand-in serves them from Google's documented paths and refuses any other)
# ------------------------------------------------------------------------------------------

BOOT_SCRIPT = GCP / "roles" / "gce_image" / "files" / "hashd-gce-config"
SITE_CONF = """# --- Client address ---
set_real_ip_from 130.211.0.0/22;
set_real_ip_from 35.191.0.0/16;
real_ip_header X-Forwarded-For;
real_ip_recursive on;

upstream hashd {
    server unix:/run/hashd/hashd-1.sock max_fails=1 fail_timeout=1s;
}
"""


def run_boot_script(world, root, attributes):
    world.seed(metadata={"attributes": attributes, "project": PROJECT})
    env = dict(world.env, GCE_METADATA_HOST=f"127.0.0.1:{world.port}", SSL_CERT_FILE=str(world.dir / "ca.pem"))
    return subprocess.run([sys.executable, str(BOOT_SCRIPT), "--root", str(root), "--timeout", "10",
                           "--app", str(REPO / "build/fcgi-app/hashd-fcgi"), "--processes", "1"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_boot_script_applies_metadata_and_secret(world, tmp_path):
    password = "pa:ss/w@rd-" + base64.b16encode(os.urandom(6)).decode()
    world.seed(secrets={f"{P}/secrets/hashd-redis": password})
    (tmp_path / "etc/nginx/hashd").mkdir(parents=True)
    (tmp_path / "etc/nginx/hashd/site.conf").write_text(SITE_CONF)
    r = run_boot_script(world, tmp_path, {
        "hashd-trusted-proxies": "130.211.0.0/22,35.191.0.0/16,203.0.113.10/32",
        "hashd-settings": json.dumps({"HASHD_STORE": "redis://10.10.0.3:6379/0", "HASHD_COST_DEFAULT": "11"}),
        "hashd-store-password-secret": f"{P}/secrets/hashd-redis",
        "hashd-store-allow": "10.10.0.3/32",
    })
    assert r.returncode == 0, r.stderr
    assert password not in r.stdout + r.stderr and "pa:ss" not in r.stdout + r.stderr
    env_file = tmp_path / "run/hashd-gce/hashd.env"
    quoted = urllib.parse.quote(password, safe="")
    assert env_file.read_text() == f"HASHD_COST_DEFAULT=11\nHASHD_STORE=redis://:{quoted}@10.10.0.3:6379/0\n"
    # Root only (issue 21, finding 5): systemd reads it as root; nginx's user, group hashd
    # and the workers themselves never open it.
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert env_file.stat().st_gid == os.getgid()
    # Both units that reach the store get the settings: the FastCGI workers and the MultiVAC
    # worker.
    for unit in ("hashd@.service", "hashd-worker.service"):
        dropin = (tmp_path / f"run/systemd/system/{unit}.d/50-gce.conf").read_text()
        assert "EnvironmentFile=-/run/hashd-gce/hashd.env" in dropin and "IPAddressAllow=10.10.0.3/32" in dropin
    site = (tmp_path / "etc/nginx/hashd/site.conf").read_text()
    assert site == SITE_CONF.replace("set_real_ip_from 35.191.0.0/16;\n",
                                     "set_real_ip_from 35.191.0.0/16;\nset_real_ip_from 203.0.113.10/32;\n")
    # A second boot with the same metadata writes the same files.
    assert run_boot_script(world, tmp_path, {
        "hashd-trusted-proxies": "130.211.0.0/22,35.191.0.0/16,203.0.113.10/32"}).returncode == 0
    assert (tmp_path / "etc/nginx/hashd/site.conf").read_text() == site


def test_boot_script_fails_loudly_on_a_missing_secret(world, tmp_path):
    r = run_boot_script(world, tmp_path, {"hashd-settings": json.dumps({"HASHD_STORE": "redis://10.10.0.3:6379/0"}),
                                          "hashd-store-password-secret": f"{P}/secrets/absent"})
    assert r.returncode == 1 and "Secret Manager refused" in r.stderr
    assert not (tmp_path / "run/hashd-gce/hashd.env").exists()


# ------------------------------------------------------------------------------------------
# A fresh clone has no ../shared: tests/gcp/discovery.py downloads the document once from
# Google's discovery service (here the stand-in, reached as a user's HTTPS_PROXY would be),
# then uses the cache; offline with an empty cache it fails with one line.
# ------------------------------------------------------------------------------------------


def run_discovery(env):
    return subprocess.run([sys.executable, str(REPO / "tests/gcp/discovery.py")], env=env,
                          capture_output=True, text=True, timeout=120)


def test_discovery_downloaded_once_then_cached_then_a_one_line_failure(world, tmp_path):
    served = find_discovery()
    base = {k: v for k, v in world.env.items() if k != "HASHD_GCP_DISCOVERY"}
    base.update(HASHD_GCP_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path / "home"))
    calls_before = len(world.state()["calls"])
    r = run_discovery(base)
    assert r.returncode == 0, r.stderr
    cached = pathlib.Path(r.stdout.strip())
    assert cached == tmp_path / "cache" / "compute.v1.json"
    assert json.loads(cached.read_text()) == json.loads(served.read_text())
    downloads = [c for c in world.state()["calls"][calls_before:] if "discovery" in c]
    assert downloads == ["GET discovery compute v1"]
    # Offline now (the proxy is a closed port): the cache answers, nothing is fetched.
    offline = dict(base, HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    r = run_discovery(offline)
    assert r.returncode == 0 and pathlib.Path(r.stdout.strip()) == cached, r.stderr
    assert [c for c in world.state()["calls"][calls_before:] if "discovery" in c] == downloads
    # Offline with an empty cache: exit 1 and one line naming the variable and the URL.
    r = run_discovery(dict(offline, HASHD_GCP_CACHE=str(tmp_path / "empty")))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "HASHD_GCP_DISCOVERY" in lines[0] and discovery.DISCOVERY_URL in lines[0]
    assert not (tmp_path / "empty" / "compute.v1.json").exists()
