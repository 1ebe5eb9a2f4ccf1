"""The servers under test: hashd's local stack and the original app it replaces.

HashdStack is the integration tests' own stack (tests/harness/hashd_stack.py: the real
scripts/run-local, nginx and P spawn-fcgi processes on free loopback ports), configured as
production except for the per-client abuse limits, which would otherwise measure themselves
(the benchmark is one client at 127.0.0.1). OriginalStack is the Flask/gunicorn app
(bench/peers/original/), plain or behind nginx with hashd's own TLS snippet.
"""

import os
import shutil
import signal
import string
import subprocess
import sys
import time

from procs import ROOT, BenchError, descendants, stop_popen, wait_http

# The test harness (tests/harness), the very stack and store servers the tests run.
sys.path.insert(0, str(ROOT / "tests"))
from harness.hashd_stack import Stack, StackError, free_port  # noqa: E402

PEER = ROOT / "bench" / "peers" / "original"
PYTHON = "/usr/bin/python3"
PASSWORD = "correct-horse-battery-staple"  # a benchmark constant, not a secret


class Tools:
    """The built programs, copied aside first: a rebuild during the run must not swap them."""

    def __init__(self, build_dir, bin_dir):
        bin_dir.mkdir(parents=True, exist_ok=True)
        paths = {"limit": build_dir / "bench" / "hashd-bench-limit",
                 "loadgen": build_dir / "bench" / "hashd-bench-loadgen",
                 "fcgi": build_dir / "fcgi-app" / "hashd-fcgi"}
        for name, path in paths.items():
            if not path.exists():
                raise BenchError(f"{path} missing: run `make build` first")
            copy = bin_dir / path.name
            shutil.copy2(path, copy)
            setattr(self, name, copy)


def app_default(fcgi, setting):
    """A setting's default as the app itself states it (`hashd-fcgi --settings-markdown`, the
    table docs/settings.md is generated from), so the bench restates none of them."""
    table = subprocess.run([str(fcgi), "--settings-markdown"], check=True, capture_output=True,
                           text=True).stdout
    for line in table.splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")]
        if len(cells) > 2 and cells[1] == setting:
            return cells[2]
    raise BenchError(f"{fcgi} --settings-markdown states no default for {setting}")


class HashdStack(Stack):
    """The local stack with P processes of T hashing threads at a default cost, started.

    nginx runs its production values (ansible/roles/nginx/defaults/main.yml) except the abuse limits; the test
    stack's own overrides (a deeper queue, a longer read timeout) are put back to production
    unless the caller sets them."""

    def __init__(self, tools, workdir, *, processes, threads, cost_default, deadline_ms=None,
                 queued_per_thread=None, extra_env=None):
        workdir.mkdir(parents=True, exist_ok=True)
        app_env = {"HASHD_THREADS": threads, "HASHD_COST_DEFAULT": cost_default,
                   "HASHD_COST_MIN": 4,
                   # One load generator is one client: the per-client budget is lifted.
                   "HASHD_CLIENT_WORK_RATE": 0}
        if deadline_ms is not None:
            app_env["HASHD_QUEUE_DEADLINE_MS"] = deadline_ms
        app_env.update(extra_env or {})
        nginx = {"conn_per_client": 60000,
                 "queued_per_thread": (queued_per_thread if queued_per_thread is not None
                                       else nginx_default("hashd_nginx_queued_per_thread")),
                 "fastcgi_read_timeout": nginx_default("hashd_nginx_fastcgi_read_timeout")}
        super().__init__(processes=processes, app_env=app_env, nginx=nginx, binary=tools.fcgi,
                         root=workdir)
        self.settings = {"P": processes, "T": threads, "deadline_ms": deadline_ms,
                         "queued_per_thread": nginx["queued_per_thread"]}
        self.base = f"https://localhost:{self.https_port}"
        self.cafile = self.cert
        try:
            self.start()
        except StackError as e:
            raise BenchError(f"the hashd stack did not start: {e}") from e

    def pool_pids(self):
        return [p for p in (self.pid(n) for n in range(1, self.processes + 1)) if p is not None]

    def nginx_pids(self):
        try:
            return descendants(self.nginx_pid())
        except (OSError, ValueError):
            return []

    def log_pump_pids(self):
        """run-local itself, which copies the app's log lines to files."""
        return [self.proc.pid]

    def stop(self):
        try:
            super().stop()
        except StackError as e:
            raise BenchError(f"the hashd stack did not stop cleanly: {e}") from e


class OriginalStack:
    """gunicorn serving bench/peers/original/app.py, optionally behind nginx with hashd's TLS."""

    def __init__(self, workdir, *, rounds, tls_cert=None, tls_key=None):
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ, ORIGINAL_BCRYPT_ROUNDS=str(rounds))
        self.gunicorn_out = open(workdir / "gunicorn.out", "w")
        self.gunicorn = subprocess.Popen(
            ["/usr/bin/gunicorn", "-c", str(PEER / "gunicorn.conf.py"), "--chdir", str(PEER),
             "--bind", f"127.0.0.1:{self.port}", "app:app"],
            env=env, stdout=self.gunicorn_out, stderr=subprocess.STDOUT, start_new_session=True)
        self.nginx = None
        self.direct = f"http://localhost:{self.port}"
        try:
            wait_http(self.direct + f"/gethash/{PASSWORD}/", timeout=30, proc=self.gunicorn,
                      what="gunicorn")
            # Both workers booted (each serves; the master only supervises).
            deadline = time.monotonic() + 20
            while len(self.worker_pids()) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            if tls_cert is not None:
                self._start_nginx(tls_cert, tls_key)
        except BaseException:
            self.stop()
            raise

    def _start_nginx(self, cert, key):
        prefix = self.dir / "nginx"
        for sub in ("tmp", "render"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        # hashd's own TLS snippet, rendered with the bench certificate: same TLS by construction.
        subprocess.run([PYTHON, str(ROOT / "nginx" / "render"), str(prefix / "render"),
                        "--set", f"hashd_nginx_tls_certificate={cert}",
                        "--set", f"hashd_nginx_tls_certificate_key={key}"],
                       check=True, capture_output=True, text=True)
        self.https_port = free_port()
        conf = string.Template((PEER / "nginx.conf.in").read_text()).substitute(
            user_line="user root;" if os.geteuid() == 0 else "",
            prefix=prefix, upstream_port=self.port, https_port=self.https_port,
            tls_snippet=prefix / "render" / "hashd" / "snippets" / "tls.conf")
        (prefix / "nginx.conf").write_text(conf)
        self.nginx_out = open(self.dir / "nginx.out", "w")
        self.nginx = subprocess.Popen(
            ["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
             "-g", "daemon off;"], stdout=self.nginx_out, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.front = f"https://localhost:{self.https_port}"
        wait_http(self.front + f"/gethash/{PASSWORD}/", cafile=str(cert), timeout=30,
                  proc=self.nginx, what="nginx (original)")

    def worker_pids(self):
        return [p for p in descendants(self.gunicorn.pid) if p != self.gunicorn.pid]

    def all_pids(self):
        return descendants(self.gunicorn.pid)

    def stop(self):
        if self.nginx is not None:
            stop_popen(self.nginx, signal.SIGTERM)  # fast stop: the load is over
            self.nginx_out.close()
        # SIGINT: gunicorn's quick shutdown. SIGTERM would let it work through a backlog of requests
        # whose clients already gave up (up to its 30 s graceful timeout) after an overload level.
        stop_popen(self.gunicorn, signal.SIGINT, timeout=40)
        self.gunicorn_out.close()


# The nginx variables' one source (nginx/render reads it too).
NGINX_DEFAULTS = (ROOT / "ansible" / "roles" / "nginx" / "defaults" / "main.yml",)


def nginx_default(name):
    """A value of an nginx template variable's default (plain `name: value` lines, no YAML
    parser needed): an int when it is one, else the text."""
    for path in NGINX_DEFAULTS:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.startswith(name + ":"):
                value = line.split(":", 1)[1].split("#")[0].strip().strip('"')
                return int(value) if value.isdigit() else value
    raise BenchError(f"{name} not in " + " or ".join(str(p) for p in NGINX_DEFAULTS))
