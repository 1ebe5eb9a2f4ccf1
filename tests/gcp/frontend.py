"""The external HTTPS load balancer of the Compute stand-in (standin.py --vms): HAProxy in
the data path, configured from what the playbook created, as Google's front end is.

From the project's state: each global forwarding rule (its address and port range) and
its target proxy; an HTTPS proxy's certificate (the uploaded PEM and key) and SSL policy
(minTlsVersion -> ssl-min-ver); an HTTP proxy whose URL map redirects (defaultUrlRedirect
httpsRedirect -> 301); the HTTPS URL map's default backend service, its health check
(path, port, interval, timeout, thresholds) and its backends' instance groups (the group's
VMs, the named port). What Google documents and this reproduces:
- X-Forwarded-For gets "<client>,<LB address>" appended;
- connections to backends come from the proxy ranges (`source` = the configured probe
  range's first address: Google's 35.191.0.0/16 and 130.211.0.0/22 stand-ins), are reused
  and kept up to 600 s idle (`http-reuse always`, `pool-purge-delay 600s`);
- health probes come from that range too;
- with no healthy backend: 502, never a fail-open to unhealthy VMs.

HAProxy runs in the suite's LB namespace (`ip netns exec`), one process, reloaded (-sf)
when the configuration changes; its PID is kept and it is stopped by PID.
"""

import os
import subprocess

TLS_VERSIONS = {"TLS_1_0": "TLSv1.0", "TLS_1_1": "TLSv1.1", "TLS_1_2": "TLSv1.2"}


def rel(link):
    return link.split("/compute/v1/")[-1] if link else ""


class FrontEnd:
    def __init__(self, project, fleet, netns, source, folder):
        self.project, self.fleet, self.netns, self.source = project, fleet, netns, source
        self.folder = folder
        self.config = None
        self.pid = None
        self.reloads = 0

    def render(self):
        """The HAProxy configuration of the project's LB resources; None when there is none."""
        r = self.project.resources
        rules = [(p, x) for p, x in sorted(r.items()) if x.get("kind") == "compute#forwardingRule"
                 and "/global/" in p and x.get("target")]
        if not rules:
            return None
        out = ["global", "    pidfile " + self._path("haproxy.pid"),
               "    stats socket " + self._path("admin.sock") + " mode 600 level admin",
               "", "defaults", "    mode http", "    timeout connect 5s",
               "    timeout client 600s", "    timeout server 600s", "    timeout http-request 10s",
               "    timeout http-keep-alive 610s", "    timeout check 5s",
               '    http-error status 502 content-type application/json string '
               '"{\\"error\\":\\"lb_no_healthy_backend\\",\\"err_msg\\":\\"no healthy backend\\",'
               '\\"request_id\\":\\"\\"}"']
        backends = {}
        for path, rule in rules:
            address, (low, _) = rule["IPAddress"], rule.get("portRange", "80-80").split("-")
            target = r.get(rel(rule["target"]), {})
            name = path.rsplit("/", 1)[-1]
            out += ["", f"frontend {name}"]
            if target.get("kind") == "compute#targetHttpsProxy":
                cert = r.get(rel(target["sslCertificates"][0]), {})
                pem = self._path(f"{name}.pem")
                write(pem, cert.get("certificate", "") + "\n" + cert.get("_privateKey", ""), 0o600)
                policy = r.get(rel(target.get("sslPolicy", "")), {})
                minimum = TLS_VERSIONS.get(policy.get("minTlsVersion", "TLS_1_0"), "TLSv1.0")
                out.append(f"    bind {address}:{low} ssl crt {pem} ssl-min-ver {minimum} alpn http/1.1")
                out += ['    http-request set-header X-Forwarded-For "%[req.fhdr(X-Forwarded-For)],%[src],'
                        + address + '" if { req.fhdr(X-Forwarded-For) -m found }',
                        '    http-request set-header X-Forwarded-For "%[src],' + address
                        + '" unless { req.fhdr(X-Forwarded-For) -m found }',
                        "    http-request set-header X-Forwarded-Proto https"]
                url_map = r.get(rel(target.get("urlMap", "")), {})
                service_path = rel(url_map.get("defaultService", ""))
                backend = service_path.rsplit("/", 1)[-1] or "none"
                backends[backend] = service_path
                out += ["    http-request return status 502 content-type application/json string "
                        '"{\\"error\\":\\"lb_no_healthy_backend\\",\\"err_msg\\":\\"no healthy backend\\",'
                        '\\"request_id\\":\\"\\"}"' + f" if {{ nbsrv({backend}) eq 0 }}",
                        f"    default_backend {backend}"]
            else:
                url_map = r.get(rel(target.get("urlMap", "")), {})
                redirect = url_map.get("defaultUrlRedirect", {})
                out.append(f"    bind {address}:{low}")
                if redirect.get("httpsRedirect"):
                    out.append("    http-request redirect scheme https code 301")
                else:
                    out.append("    http-request return status 404")
        for backend, service_path in backends.items():
            out += ["", f"backend {backend}"] + self._backend(service_path)
        return "\n".join(out) + "\n"

    def _backend(self, service_path):
        r = self.project.resources
        service = r.get(service_path, {})
        hc = r.get(rel((service.get("healthChecks") or [""])[0]), {})
        spec = hc.get("httpsHealthCheck") or hc.get("httpHealthCheck") or {}
        ssl = "ssl verify none " if service.get("protocol", "HTTP") == "HTTPS" else ""
        lines = ["    balance leastconn", "    http-reuse always", f"    source {self.source}",
                 "    option httpchk",
                 f"    http-check send meth GET uri {spec.get('requestPath', '/')} ver HTTP/1.1 hdr Host localhost",
                 "    http-check expect status 200",
                 f"    timeout check {int(hc.get('timeoutSec', 5))}s",
                 f"    default-server {ssl}check inter {int(hc.get('checkIntervalSec', 5))}s "
                 f"fall {int(hc.get('unhealthyThreshold', 2))} rise {int(hc.get('healthyThreshold', 2))} "
                 "pool-purge-delay 600s"]
        draining = service.get("connectionDraining", {}).get("drainingTimeoutSec")
        if draining:
            lines.append(f"    # connectionDraining.drainingTimeoutSec {draining}")
        for backend in service.get("backends", []):
            group = r.get(rel(backend.get("group", "")), {})
            mig = group.get("_owner", "")
            port = next((int(p["port"]) for p in group.get("namedPorts", [])
                         if p["name"] == service.get("portName", "http")), 80)
            for inst_path, vm in sorted(self.fleet.vms.items()):
                if r.get(inst_path, {}).get("_owner") == mig and r[inst_path].get("status") == "RUNNING":
                    lines.append(f"    server {vm['name']} {vm['ip']}:{port}")
        return lines

    def _path(self, name):
        return os.path.join(self.folder, name)

    def sync(self):
        """Renders the configuration; (re)starts HAProxy in the LB namespace when it changed.
        Raises RuntimeError when HAProxy refuses the configuration."""
        config = self.render()
        if config == self.config:
            return
        if config is None:
            self.stop()
            self.config = None
            return
        for path, rule in self.project.resources.items():
            if rule.get("kind") == "compute#forwardingRule" and "/global/" in path:
                # The rule's address is the LB namespace's own (its loopback).
                subprocess.run(["ip", "-n", self.netns, "addr", "replace", f"{rule['IPAddress']}/32", "dev", "lo"],
                               capture_output=True)
        cfg = self._path("haproxy.cfg")
        write(cfg, config, 0o600)
        check = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refused the front end's configuration: {check.stderr[-800:]}")
        args = ["ip", "netns", "exec", self.netns, "haproxy", "-D", "-f", cfg]
        if self.pid:
            args += ["-sf", str(self.pid)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"HAProxy did not start: {r.stderr[-800:]}")
        with open(self._path("haproxy.pid"), encoding="utf-8") as f:
            self.pid = int(f.read().split()[0])
        self.config = config
        self.reloads += 1

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            self.pid = None


def write(path, text, mode):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path + ".tmp", mode)
    os.replace(path + ".tmp", path)
