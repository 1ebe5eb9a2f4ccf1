"""The local hashd stack as a test sees it.

A Stack is scripts/run-local (the very script behind `make run`) started on free loopback
ports in a private directory: real nginx, real spawn-fcgi, the real hashd-fcgi binary.
The test talks to it over HTTPS, reads its logs, and signals its processes by PID. On stop
it checks that nothing died that the test did not kill itself and that every process
stopped cleanly (exit 0 after SIGTERM, which is also where an ASan build reports leaks).

conftest.py turns this into the `stack` and `make_stack` fixtures; tests rarely need more
than the methods below.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
RUN_LOCAL = REPO / "scripts" / "run-local"
DEFAULT_FCGI_BIN = REPO / "build" / "fcgi-app" / "hashd-fcgi"

# Bounds of every wait (they bound the test's run time; nothing asserts on them).
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 90.0


class StackError(AssertionError):
    """The stack misbehaved outside what the test asserts (did not start, crashed, ...)."""


def fcgi_bin():
    """The app under test: HASHD_FCGI_BIN (the ASan run sets it) or the plain build."""
    return pathlib.Path(os.environ.get("HASHD_FCGI_BIN") or DEFAULT_FCGI_BIN)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a true value, which is returned. Raises
    StackError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# nginx settings of a test stack unless the test sets its own (see Stack).
TEST_NGINX = {
    "hash_rate": "100000r/s", "hash_burst": 100000,
    "general_rate": "100000r/s", "general_burst": 100000,
    "hash_rate_per_address": "100000r/s", "hash_burst_per_address": 100000,
    "general_rate_per_address": "100000r/s", "general_burst_per_address": 100000,
    "conn_per_client": 100000,
    "probe_rate": "100000r/s", "probe_burst": 100000,
    "fastcgi_read_timeout": "300s",
}


class Stack:
    """One local stack. Typical use is through the fixtures:

        def test_x(make_stack):
            stack = make_stack(processes=1, app_env={"HASHD_LEGACY_GET": "0"},
                               nginx={"hash_rate": "1r/m"})
            r = stack.get("/gethash/pw/")

    app_env: HASHD_* settings for the app (HASHD_THREADS also sizes nginx's max_conns).
    nginx: overrides of the nginx role's defaults (ansible/roles/nginx/defaults/main.yml),
    without the "hashd_nginx_" prefix. A test stack starts from TEST_NGINX below, which
    moves two kinds of limits out of the way: the per-client limits (every test client is
    127.0.0.1, and a suite of quick requests would trip them by accident) and nginx's timeout
    for the app's answer (a wall-clock limit; on a loaded machine a cost-12 hash can take
    seconds). A test of a limit sets it itself.
    ready_path: what must answer 200 before the stack counts as started (/healthz for a
    stack whose store is meant to be down).
    workers: hashd-worker processes run-local starts and supervises (MultiVAC queue
    consumers; 0 by default, so that only the tests about the queue run one).
    """

    def __init__(self, processes=2, app_env=None, nginx=None, ready_path="/readyz",
                 binary=None, root=None, workers=0):
        self.processes = processes
        self.workers = workers
        self.binary = pathlib.Path(binary) if binary else fcgi_bin()
        self.ready_path = ready_path
        self.root = pathlib.Path(root) if root else pathlib.Path(tempfile.mkdtemp(prefix="hashd-stack-"))
        # nginx's workers run as www-data when the tests run as root: they must be able to
        # enter this directory to reach the sockets (mkdtemp makes it 0700).
        self.root.chmod(0o755)
        self.https_port = free_port()
        self.http_port = free_port()
        self.cert = self.root / "tls" / "localhost.crt"
        self.log_dir = self.root / "log"
        self.run_dir = self.root / "run"
        self.expected_exits = set()
        self.proc = None
        self.returncode = None
        self._session = None

        # The developer's own HASHD_* settings must not leak into a test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HASHD_")}
        env.update({
            "HASHD_LOCAL_DIR": str(self.root),
            "HASHD_PROCESSES": str(processes),
            "HASHD_HTTPS_PORT": str(self.https_port),
            "HASHD_HTTP_PORT": str(self.http_port),
            "HASHD_FCGI_BIN": str(self.root / "hashd-fcgi"),
            "HASHD_WORKER_BIN": str(self.root / "hashd-worker"),
            "HASHD_WORKERS": str(workers),
            "HASHD_LOG": "stderr",
            # Like nginx's limits (TEST_NGINX), the app's per-client work budget is lifted:
            # every test client is 127.0.0.1. Tests of the budget set their own.
            "HASHD_CLIENT_WORK_RATE": "0",
        })
        env.update({k: str(v) for k, v in (app_env or {}).items()})
        for name, value in {**TEST_NGINX, **(nginx or {})}.items():
            env["HASHD_NGINX_" + name.upper()] = value if isinstance(value, str) else json.dumps(value)
        self.env = env

    # --- Life cycle ------------------------------------------------------------------------

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise StackError(f"{self.binary} does not exist: run `make build` (`make build-asan`)")
        # A private copy: a rebuild during the run must not swap the binary under a
        # process that run-local restarts.
        shutil.copy2(self.binary, self.root / "hashd-fcgi")
        if self.workers:
            shutil.copy2(self.worker_binary, self.root / "hashd-worker")
        self.output = open(self.root / "run-local.out", "wb")
        self.proc = subprocess.Popen([str(RUN_LOCAL), "--quiet"], cwd=REPO, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.output,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(self._answers_ready, START_TIMEOUT_S, f"GET {self.ready_path} to answer 200")
            for n in range(1, self.processes + 1):
                wait_for(lambda n=n: self.serving_pid(n), START_TIMEOUT_S, f"hashd-{n} to start")
        except BaseException:
            self.stop(check=False)
            raise
        return self

    @property
    def worker_binary(self):
        """hashd-worker of the same build as the app under test."""
        return self.binary.parent / "hashd-worker"

    def _answers_ready(self):
        if self.proc.poll() is not None:
            raise StackError(f"scripts/run-local exited with {self.proc.returncode}:\n{self.describe()}")
        if not self.cert.exists():
            return False
        try:
            return self.get(self.ready_path, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, check=True):
        """Stops the stack like Ctrl-C does (SIGTERM to run-local, which stops nginx
        gracefully, then each process). With check, raises StackError if run-local did
        not exit 0 or a process died during the test without the test killing it."""
        if self.proc is None or self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
            self.returncode = self.proc.wait()
        self.output.close()
        if self._session is not None:
            self._session.close()
        if check:
            problems = []
            if self.returncode != 0:
                problems.append(f"scripts/run-local exited with {self.returncode}")
            for event in self.unexpected_exits():
                problems.append(f"{event['process']} (pid {event['pid']}) exited with "
                                f"{event['returncode']} while serving")
            if problems:
                raise StackError("; ".join(problems) + "\n" + self.describe())
        return self.returncode

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def describe(self):
        """The tail of every log, for failure messages."""
        parts = [f"stack directory: {self.root}"]
        for path in [self.root / "run-local.out", *sorted(self.log_dir.glob("*.log"))]:
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {path.name} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(parts)

    # --- Talking to it ----------------------------------------------------------------------

    def url(self, path):
        return f"https://localhost:{self.https_port}{path}"

    def http_url(self, path):
        return f"http://localhost:{self.http_port}{path}"

    @property
    def session(self):
        """A requests session that trusts the stack's certificate."""
        if self._session is None:
            self._session = requests.Session()
            # No proxies and no REQUESTS_CA_BUNDLE from the environment: the latter would
            # override session.verify (requests issue #3829) and the stack's certificate.
            self._session.trust_env = False
            self._session.verify = str(self.cert)
        return self._session

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.get(self.url(path), **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.post(self.url(path), **kwargs)

    def status(self, path):
        """GET on the loopback status listener (run/status.sock): /metrics, /nginx_status."""
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--unix-socket", str(self.run_dir / "status.sock"),
             "-o", "-", "-w", "\n%{http_code}", f"http://localhost{path}"],
            stdout=subprocess.PIPE, check=True, text=True)
        body, _, code = result.stdout.rpartition("\n")
        return int(code), body

    def requests_in_flight(self):
        """Client requests nginx is working on right now (stub_status "Writing"), this
        status request included."""
        _, body = self.status("/nginx_status")
        for line in body.splitlines():
            if line.startswith("Reading:"):
                return int(line.split()[3])
        raise StackError(f"unexpected stub_status output: {body!r}")

    # --- Logs -------------------------------------------------------------------------------

    def access_log(self):
        """nginx's JSON access log, one dict per request, oldest first."""
        path = self.log_dir / "nginx-access.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def access_entry(self, request_id, timeout=10):
        """The access-log entry of one request (nginx writes it as the request ends,
        which may be a moment after the client has the response)."""
        def find():
            return next((e for e in self.access_log() if e["request_id"] == request_id), None)
        return wait_for(find, timeout, f"the access-log entry of request {request_id}")

    def log_files(self):
        """Every file the stack wrote logs to: nginx's access and error logs, each
        process's stderr, nginx's own stderr."""
        return sorted(self.log_dir.glob("*.log"))

    def assert_not_logged(self, *secrets):
        """Fails if any secret (str or bytes) appears in any log file, raw or URL-encoded."""
        needles = set()
        for secret in secrets:
            raw = secret.encode() if isinstance(secret, str) else secret
            needles.add(raw)
            needles.add(requests.utils.quote(raw, safe="").encode())
        for path in self.log_files():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"{needle!r} was logged in {path}"

    def app_log_mentions(self, text):
        """True if any process's log contains text (e.g. a request id)."""
        return any(text in p.read_text(errors="replace") for p in self.log_dir.glob("hashd-*.log"))

    # --- Processes --------------------------------------------------------------------------

    def pid(self, instance):
        """PID of hashd-<instance> (spawn-fcgi -n execs the app, so it is the app's), or
        None while it is not running."""
        try:
            pid = int((self.run_dir / f"hashd-{instance}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def serving_pid(self, instance):
        """PID of hashd-<instance> once it is past its start-up: it has taken over SIGTERM
        (caught or blocked for sigwait), so a stop now is a graceful one. Before that a
        SIGTERM would kill it outright and the stop would look unclean."""
        pid = self.pid(instance)
        if pid is None:
            return None
        try:
            status = pathlib.Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):  # gone, or dying as it was read (ESRCH)
            return None
        masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        bit = 1 << (signal.SIGTERM - 1)
        if int(masks.get("SigCgt", "0"), 16) & bit or int(masks.get("SigBlk", "0"), 16) & bit:
            return pid
        return None

    def nginx_pid(self):
        return int((self.run_dir / "nginx.pid").read_text())

    def signal(self, instance, signum):
        """Sends signum to hashd-<instance>. A signal that ends the process marks that
        exit as expected, so stop() does not report it."""
        pid = self.pid(instance)
        if pid is None:
            raise StackError(f"hashd-{instance} is not running")
        if signum not in (signal.SIGSTOP, signal.SIGCONT, signal.SIGUSR1, signal.SIGUSR2):
            self.expected_exits.add(pid)
        os.kill(pid, signum)
        return pid

    def wait_restarted(self, instance, old_pid, timeout=30):
        """Waits until run-local has restarted hashd-<instance> and the new process is
        past its start-up (see serving_pid); returns the new PID."""
        return wait_for(lambda: (p := self.serving_pid(instance)) and p != old_pid and p,
                        timeout, f"hashd-{instance} to be restarted")

    def events(self):
        """run-local's record of process exits (run/events.jsonl)."""
        path = self.run_dir / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def unexpected_exits(self):
        return [e for e in self.events()
                if e["during"] == "run" and e["pid"] not in self.expected_exits]
