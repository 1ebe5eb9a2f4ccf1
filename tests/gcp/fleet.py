"""The real half of the Compute stand-in (standin.py --vms): instances are Debian 12 VMs
booted with systemd (tests/gce/vmctl, which uses tests/vm/lib.sh), images are layers of
their stopped disks, and every VM reads its own metadata at 169.254.169.254.

The metadata server is a thread of the stand-in whose listening socket was made inside the
suite's metadata namespace (setns(2) on that thread, then back), plugged into the VPC bridge
with 169.254.169.254 and nothing else: every VM reaches it on its own link at Google's
address, as on GCE, where the server is off the VM too (a local address would collide with
the VM's own :80). It tells VMs apart by their source address (each VM sees only its own
instance), cannot be stopped from a VM (not in its PID namespace), and reads the metadata
live from the project's state, as Google's does. It serves Google's documented paths under
/computeMetadata/v1/ and refuses, as Google's does, a request without
`Metadata-Flavor: Google` or with `X-Forwarded-For` (403).
"""

import ctypes
import http.client
import http.server
import ipaddress
import itertools
import json
import math
import os
import queue
import re
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def listen_in_netns(netns, address, port, handler):
    """A threading HTTP server bound to address:port inside netns (a /run/netns name).
    Raises OSError when the namespace or the bind fails."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        with _setns_lock:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
            try:
                return ThreadingServer((address, port), handler)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # This thread would keep serving the stand-in from the VM's network.
                    os._exit(70)
    finally:
        os.close(own)
        os.close(target)


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def vcpus_of(machine_type):
    """vCPUs of a machine type name (e2-highcpu-4 -> 4; shared-core e2-micro/small/medium -> 2)."""
    name = machine_type.rsplit("/", 1)[-1]
    m = re.search(r"-(\d+)$", name)
    if m:
        return int(m.group(1))
    if re.fullmatch(r"(e2|f1|g1)-(micro|small|medium)", name):
        return 2
    raise ValueError(f"unknown machine type {name}")


class Fleet:
    """The VMs and images of one project, made real through vmctl."""

    def __init__(self, project, tokens, vmctl, image_dir, subnet, external, cpu_per_vcpu, netns_prefix,
                 metadata_netns):
        self.project, self.tokens, self.vmctl = project, tokens, vmctl
        self.image_dir = image_dir
        self.subnet = ipaddress.ip_network(subnet)
        self.external = ipaddress.ip_network(external)
        # The first hosts of the subnet are the gateway and the suite's own.
        self.free_ips = [str(h) for h in list(self.subnet.hosts())[9:]]
        self.free_nat = [str(h) for h in list(self.external.hosts())[9:]]
        self.cpu_per_vcpu = cpu_per_vcpu
        self.netns_prefix = netns_prefix
        self.index = itertools.count(1)
        self.vms = {}  # instance rel path -> {name, ip, nat, metadata server}
        self.token_owner = {}  # token -> (instance rel path, scopes)
        self.log = []  # what vmctl did, for the suite's report
        self.metadata = listen_in_netns(metadata_netns, "169.254.169.254", 80, MetadataHandler)
        self.metadata.fleet = self
        threading.Thread(target=self.metadata.serve_forever, daemon=True).start()
        # Autohealing's view of each managed VM: instance path -> its probe record.
        self.health = {}
        # Where probes come from (Google's probe ranges' stand-in): set by the stand-in.
        self.probe_netns, self.probe_source = None, None
        self.to_heal = queue.Queue()
        self.healed = []  # the suite's view: {instance, took_s} or {instance, error}
        self.autoscaler_events = []  # the suite's view: each resize, or a pass's error
        # How long a smaller recommendation waits (Google's: 10 minutes); the stand-in sets it.
        self.stabilization_s = 600.0

    def start_probing(self, netns=None, source=None):
        """Autohealing's prober: a thread that lives in netns (the LB's namespace, where the
        probe range is) and sends from source; and its healer, a thread in the host's
        namespace (vmctl builds VMs on the host's bridge) that recreates what the prober
        found unhealthy."""
        self.probe_netns, self.probe_source = netns, source
        threading.Thread(target=self._heal_loop, daemon=True).start()
        threading.Thread(target=self._probe_loop, daemon=True).start()
        threading.Thread(target=self._autoscale_loop, daemon=True).start()

    def _heal_loop(self):
        """Google's autohealing: a managed VM whose autohealing check has failed
        unhealthyThreshold times in a row, once initialDelaySec has passed since it was
        created, is recreated from its current template under the same name (a new disk: what
        was on the old one is gone). One at a time."""
        while True:
            path = self.to_heal.get()
            t0 = time.monotonic()
            try:
                self.project.recreate_managed(path)
                self.healed.append({"instance": path, "took_s": round(time.monotonic() - t0, 1)})
            except Exception as e:  # noqa: BLE001  (the suite reads the failure)
                self.healed.append({"instance": path, "error": str(e)[-500:]})

    def _vmctl(self, *args):
        r = subprocess.run([self.vmctl, *args], capture_output=True, text=True, timeout=180)
        self.log.append({"args": list(args), "rc": r.returncode, "stderr": r.stderr[-2000:]})
        if r.returncode != 0:
            raise RuntimeError(f"vmctl {' '.join(args)}: {r.stderr.strip()[-500:]}")

    # -- images ----------------------------------------------------------------------------
    def lower_of(self, image_link):
        """The overlay layers of an image link: debian-cloud's family debian-12 is the suites'
        base image; a project image is one baked by snapshot()."""
        path = image_link.split("/compute/v1/")[-1]
        m = re.fullmatch(r"projects/([^/]+)/global/images/(family/)?([^/]+)", path)
        if not m:
            raise ValueError(f"not an image: {image_link}")
        project, family, name = m.groups()
        if project == "debian-cloud":
            if name not in ("debian-12", "debian-12-bookworm-v20250101"):
                raise ValueError(f"the stand-in has only debian-cloud's debian-12 (asked for {name})")
            name = "debian-12"
        elif family:
            by_age = sorted(self.project.resources.items(), key=lambda kv: kv[1].get("creationTimestamp", ""))
            images = [r for p, r in by_age
                      if r.get("kind") == "compute#image" and r.get("family") == name
                      and p.startswith(f"projects/{project}/")]
            if not images:
                raise ValueError(f"no image in family {name}")
            name = images[-1]["name"]
        with open(os.path.join(self.image_dir, name, "lower"), encoding="utf-8") as f:
            return f.read().strip()

    def snapshot(self, instance_path, image_name):
        name = instance_path.rsplit("/", 1)[-1]
        self._vmctl("snapshot", name, os.path.join(self.image_dir, image_name))

    # -- instances -------------------------------------------------------------------------
    def create(self, path, res):
        """Boots the VM of instance resource res (its addresses are filled in here)."""
        name = res["name"]
        disk = res["disks"][0]
        lower = self.lower_of(disk["initializeParams"]["sourceImage"])
        nic = res["networkInterfaces"][0]
        ip = self.free_ips.pop(0)
        nic["networkIP"] = ip
        nat = "-"
        for ac in nic.get("accessConfigs", []):
            nat = self.free_nat.pop(0)
            ac["natIP"] = nat
        quota = int(vcpus_of(res["machineType"]) * self.cpu_per_vcpu * 100000)
        index = next(self.index)
        self._vmctl("create", name, str(index), lower, ip, nat, str(quota))
        self.vms[path] = {"name": name, "ip": ip, "nat": nat, "quota_us": quota}

    def stop(self, path):
        self._vmctl("stop", self.vms[path]["name"])

    def start(self, path):
        self._vmctl("start", self.vms[path]["name"])

    def kill(self, path):
        self._vmctl("kill", self.vms[path]["name"])

    def delete(self, path):
        self.health.pop(path, None)
        vm = self.vms.pop(path, None)
        if vm is None:
            return
        self._vmctl("delete", vm["name"])

    # -- autohealing's health check: probes from the stand-in, as Google's probers do -------
    def watch(self, path, mig_path):
        self.health[path] = {"mig": mig_path, "created": time.monotonic(), "healthy_at": None,
                             "state": "UNKNOWN", "ok": 0, "bad": 0, "last": 0.0, "probes": 0}

    def ever_healthy(self, path):
        h = self.health.get(path)
        return bool(h and h["healthy_at"] is not None)

    def health_state(self, path):
        h = self.health.get(path)
        return h["state"] if h else "UNKNOWN"

    def _probe_targets(self):
        """(instance path, ip, check) for every watched VM whose check is due."""
        now = time.monotonic()
        out = []
        with self.project.lock:
            for path, h in self.health.items():
                mig = self.project.resources.get(h["mig"], {})
                policy = (mig.get("autoHealingPolicies") or [{}])[0]
                hc = self.project.resources.get(policy.get("healthCheck", "").split("/compute/v1/")[-1])
                vm = self.vms.get(path)
                if not hc or not vm:
                    continue
                if now - h["last"] >= float(hc.get("checkIntervalSec", 5)):
                    h["last"] = now
                    out.append((path, vm["ip"], hc))
        return out

    def _probe_loop(self):
        if self.probe_netns:
            # This thread only, for good: its sockets are the probe range's.
            fd = os.open(f"/run/netns/{self.probe_netns}", os.O_RDONLY)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                os._exit(70)
            os.close(fd)
        while True:
            for path, ip, hc in self._probe_targets():
                ok, detail = probe(ip, hc, self.probe_source)
                with self.project.lock:
                    h = self.health.get(path)
                    if h is None:
                        continue
                    h["probes"] += 1
                    h["detail"] = detail
                    h["ok"], h["bad"] = (h["ok"] + 1, 0) if ok else (0, h["bad"] + 1)
                    if h["ok"] >= int(hc.get("healthyThreshold", 2)):
                        if h["healthy_at"] is None:
                            h["healthy_at"] = time.monotonic()
                        h["state"] = "HEALTHY"
                    elif h["bad"] >= int(hc.get("unhealthyThreshold", 2)):
                        h["state"] = "UNHEALTHY" if h["state"] != "UNKNOWN" or h["healthy_at"] else "UNKNOWN"
                        mig = self.project.resources.get(h["mig"], {})
                        policy = (mig.get("autoHealingPolicies") or [{}])[0]
                        delay = float(policy.get("initialDelaySec", 300))
                        age = time.monotonic() - h["created"]
                        # A VM still booting is given its initial delay, healthy or not.
                        if age >= delay and not h.get("healing"):
                            h["healing"] = True
                            self.to_heal.put(path)
            time.sleep(0.5)

    # -- the autoscaler: Google's CPU-utilization policy from the VMs' real CPU use ---------
    AUTOSCALE_EVERY_S = 5.0
    UTILIZATION_WINDOW_S = 15.0

    def cpu_seconds(self, path):
        """CPU time the VM has used (its cgroup v1 cpuacct.usage, every process in it), or None."""
        vm = self.vms.get(path)
        run_id = os.environ.get("GCE_RUN_ID", "")
        try:
            with open(f"/sys/fs/cgroup/cpuacct/hashd-gce-{run_id}/{vm['name']}/cpuacct.usage") as f:
                return int(f.read()) / 1e9
        except (OSError, TypeError, ValueError):
            return None

    def _autoscale_loop(self):
        """Every few seconds, for each autoscaler in mode ON: the utilization of each VM of its
        group past the initialization period (coolDownPeriodSec; VMs still initializing are
        ignored, as Google does) is its CPU time over the last 15 s against its machine type's
        vCPUs; the recommendation is ceil(size x mean utilization / utilizationTarget), taken at
        once when it is larger; a smaller one waits out the stabilization period (the largest
        recommendation of that period wins; Google's is 10 minutes, a stand-in setting here)
        and scaleInControl (at most maxScaledInReplicas below the largest size of the last
        timeWindowSec); min and max bound it."""
        samples = {}  # instance path -> [(t, cpu seconds)]
        history = {}  # autoscaler path -> [(t, recommendation, size)]
        while True:
            time.sleep(self.AUTOSCALE_EVERY_S)
            try:
                self._autoscale_once(samples, history)
            except Exception as e:  # noqa: BLE001  (one bad pass must not stop the autoscaler)
                self.autoscaler_events.append({"error": str(e)[-300:]})

    def _autoscale_once(self, samples, history):
        now = time.monotonic()
        with self.project.lock:
            scalers = [(p, r) for p, r in self.project.resources.items()
                       if r.get("kind") == "compute#autoscaler"]
            for spath, scaler in scalers:
                pol = scaler.get("autoscalingPolicy", {})
                mig_path = scaler.get("target", "").split("/compute/v1/")[-1]
                group = self.project.resources.get(mig_path)
                if group is None or pol.get("mode", "ON") == "OFF" or "cpuUtilization" not in pol:
                    continue
                target = float(pol["cpuUtilization"].get("utilizationTarget", 0.6))
                init_s = float(pol.get("coolDownPeriodSec", 60))
                lo = int(pol.get("minNumReplicas", 1))
                hi = int(pol.get("maxNumReplicas", lo))
                members = [p for p, h in self.health.items() if h["mig"] == mig_path and p in self.vms]
                utils = []
                for p in members:
                    cpu = self.cpu_seconds(p)
                    if cpu is None:
                        continue
                    series = samples.setdefault(p, [])
                    series.append((now, cpu))
                    while len(series) > 2 and now - series[1][0] >= self.UTILIZATION_WINDOW_S:
                        series.pop(0)
                    if now - self.health[p]["created"] < init_s or now - series[0][0] < self.AUTOSCALE_EVERY_S:
                        continue
                    cores = self.vms[p]["quota_us"] / 100000
                    utils.append((series[-1][1] - series[0][1]) / (series[-1][0] - series[0][0]) / cores)
                for p in list(samples):
                    if p not in self.vms:
                        del samples[p]
                size = int(group.get("targetSize", 0))
                if not utils:
                    continue
                mean = sum(utils) / len(utils)
                recommended = int(max(lo, min(hi, math.ceil(len(members) * mean / target))))
                past = history.setdefault(spath, [])
                past.append((now, recommended, size))
                stabilization = self.stabilization_s
                window = float(pol.get("scaleInControl", {}).get("timeWindowSec", stabilization))
                past[:] = [x for x in past if now - x[0] <= max(stabilization, window)]
                decided = max(r for t, r, _ in past if now - t <= stabilization)
                fixed = pol.get("scaleInControl", {}).get("maxScaledInReplicas", {}).get("fixed")
                if fixed is not None:
                    peak = max(z for t, _, z in past if now - t <= window)
                    decided = max(decided, peak - int(fixed))
                decided = max(lo, min(hi, decided))
                scaler["recommendedSize"] = decided
                if decided != size:
                    self.autoscaler_events.append({"t": round(now, 1), "from": size, "to": decided,
                                                   "mean_utilization": round(mean, 3),
                                                   "utilizations": [round(u, 3) for u in utils]})
                    group["targetSize"] = decided
                    self.project.resize_for_autoscaler(mig_path)

    def new_lb_address(self):
        """A global address for a forwarding rule: from the external range's upper half."""
        return self.free_nat.pop()

    def shutdown(self):
        for path in list(self.vms):
            try:
                self.delete(path)
            except RuntimeError as e:
                sys.stderr.write(f"standin: {e}\n")

    def state(self):  # noqa: D401  (the suite's view)
        out = {p: dict(vm) for p, vm in self.vms.items()}
        for p, vm in out.items():
            vm["cpu_s"] = self.cpu_seconds(p)
        for p, vm in out.items():
            vm["healed"] = [h for h in self.healed if h["instance"] == p]
        for p, h in self.health.items():
            if p in out:
                out[p]["health"] = h["state"]
                out[p]["probes"] = h["probes"]
                out[p]["last_probe"] = h.get("detail")
                out[p]["boot_to_healthy_s"] = (round(h["healthy_at"] - h["created"], 1)
                                               if h["healthy_at"] is not None else None)
        return out

    def instance_at(self, address):
        return next((p for p, vm in self.vms.items() if vm["ip"] == address), None)

    # -- what the metadata server reads ----------------------------------------------------
    def attributes(self, path):
        res = self.project.resources.get(path, {})
        return {i["key"]: i.get("value", "") for i in res.get("metadata", {}).get("items", [])}

    def project_attributes(self):
        return dict(self.project.project_attributes)

    def new_token(self, path):
        res = self.project.resources.get(path, {})
        sas = res.get("serviceAccounts", [])
        if not sas:
            return None
        token = f"ya29.standin-vm-{next(self.project.ids)}"
        self.tokens.add(token)
        self.token_owner[token] = (path, list(sas[0].get("scopes", [])))
        return token, sas[0]


class MetadataHandler(http.server.BaseHTTPRequestHandler):
    """Google's metadata server for one VM (computeMetadata/v1)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, body, ctype="application/text"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Metadata-Flavor") != "Google" or self.headers.get("X-Forwarded-For"):
            return self._answer(403, "Missing Metadata-Flavor:Google header.\n", "text/html")
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        recursive = query.get("recursive") == ["true"] or query.get("alt") == ["json"]
        fleet = self.server.fleet
        with fleet.project.lock:
            path = fleet.instance_at(self.client_address[0])
            answer = None if path is None else self._lookup(fleet, path, url.path, recursive)
        if answer is None:
            return self._answer(404, "Not Found\n", "text/html")
        self._answer(200, *answer)

    def _lookup(self, fleet, path, req, recursive):
        if not req.startswith("/computeMetadata/v1/"):
            return None
        key = req[len("/computeMetadata/v1/"):]
        res = fleet.project.resources.get(path)
        if res is None:
            return None
        project = path.split("/")[1]
        attrs = {"instance/attributes/": fleet.attributes(path),
                 "project/attributes/": fleet.project_attributes()}
        for prefix, values in attrs.items():
            if key == prefix:
                if recursive:
                    return json.dumps(values), "application/json"
                return "".join(f"{k}\n" for k in sorted(values)), "application/text"
            if key.startswith(prefix):
                value = values.get(key[len(prefix):])
                return None if value is None else (value, "application/text")
        vm = fleet.vms.get(path, {})
        simple = {
            "project/project-id": project,
            "project/numeric-project-id": "123456789012",
            "instance/name": res["name"],
            "instance/hostname": f"{res['name']}.{rel_zone(res)}.c.{project}.internal",
            "instance/id": res["id"],
            "instance/zone": f"projects/123456789012/zones/{rel_zone(res)}",
            "instance/machine-type": f"projects/123456789012/machineTypes/{res['machineType'].rsplit('/', 1)[-1]}",
            "instance/network-interfaces/0/ip": vm.get("ip"),
            "instance/network-interfaces/0/access-configs/0/external-ip":
                vm.get("nat") if vm.get("nat") not in (None, "-") else None,
        }
        if key in simple:
            return None if simple[key] is None else (simple[key], "application/text")
        if key == "instance/service-accounts/default/token":
            got = fleet.new_token(path)
            if got is None:
                return None
            token, _ = got
            return json.dumps({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}), "application/json"
        sas = res.get("serviceAccounts", [])
        if sas and key == "instance/service-accounts/default/email":
            return sas[0]["email"], "application/text"
        if sas and key == "instance/service-accounts/default/scopes":
            return "".join(f"{s}\n" for s in sas[0].get("scopes", [])), "application/text"
        return None


def probe(ip, hc, source=None):
    """One health-check probe as Google's: GET requestPath over HTTP(S) (certificates not
    verified), healthy on a 200 within timeoutSec."""
    kind = hc.get("type", "HTTPS")
    spec = hc.get("httpsHealthCheck" if kind == "HTTPS" else "httpHealthCheck", {})
    port = int(spec.get("port", 443 if kind == "HTTPS" else 80))
    timeout = float(hc.get("timeoutSec", 5))
    bind = (source, 0) if source else None
    if kind == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(ip, port, timeout=timeout, context=ctx, source_address=bind)
    else:
        conn = http.client.HTTPConnection(ip, port, timeout=timeout, source_address=bind)
    try:
        conn.request("GET", spec.get("requestPath", "/"),
                     headers={"Host": spec.get("host") or ip, "User-Agent": "GoogleHC/1.0"})
        status = conn.getresponse().status
        return status == 200, str(status)
    except (OSError, http.client.HTTPException) as e:
        return False, type(e).__name__ + ": " + str(e)[:100]
    finally:
        conn.close()


def rel_zone(res):
    return res.get("zone", "").rsplit("/", 1)[-1]
