"""Runs one allocation of a parsed Nomad job on this machine, the way a Nomad client would.

Nomad is not installable here, so this plays the client's part for one task group, and only
that part; every process it starts is the job's own command, not a stand-in:

- the allocation directory Nomad lays out: ALLOC/alloc/{data,logs,tmp} shared by the tasks,
  ALLOC/TASK/{local,secrets,tmp} per task;
- the task environment Nomad sets (NOMAD_ALLOC_DIR, NOMAD_TASK_DIR, NOMAD_SECRETS_DIR,
  NOMAD_ALLOC_ID/NAME/INDEX, NOMAD_JOB_*, NOMAD_GROUP_NAME, NOMAD_TASK_NAME, NOMAD_DC,
  NOMAD_NAMESPACE, NOMAD_REGION, NOMAD_IP/PORT/ADDR/HOST_PORT_<label> for each port of the
  group's network, NOMAD_CPU_LIMIT / NOMAD_MEMORY_LIMIT), plus the task's env block with
  ${...} interpolated from it;
- every template block rendered by Go's text/template with Nomad's template functions
  (tests/nomad/nomad-template), from the given catalogue and Nomad Variables, to its
  destination under the task directory with its perms;
- each task's config.command and config.args (interpolated) started in the task directory,
  stdout and stderr in alloc/logs/TASK.stdout.0 and .stderr.0 (`nomad alloc logs`), stopped
  with its kill_signal and, after kill_timeout, SIGKILL;
- the group's service registrations as Nomad's catalogue would list them, and its checks
  run as the client runs Nomad-native checks (http: GET, 2xx passes; tcp: connect).

What it does not do (a real cluster proves these): the exec driver's chroot, cgroups and
user (tasks run as the user nobody when this runs as root, as exec does by default, but
without the chroot, so paths are the host's, as with raw_exec), scheduling, restarts,
deployments and reschedules. Ports are dynamic ones picked here on 127.0.0.1.
"""

import ctypes
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

PR_SET_PDEATHSIG = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def interpolate(text, env):
    """Nomad's client-side interpolation of ${NOMAD_*} and the like in task fields."""
    def replace(match):
        name = match.group(1)
        if name.startswith("env."):
            name = name[4:]
        if name not in env:
            raise KeyError(f"${{{match.group(1)}}} is not set in the task's environment")
        return env[name]
    return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", replace, text)


def duration(text):
    from jobspec import duration_seconds
    return duration_seconds(text)


class Allocation:
    def __init__(self, root, job_name, job, group_name, renderer, variables_store,
                 catalogue=None, static_ports=None):
        self.root = pathlib.Path(root)
        self.job_name = job_name
        self.job = job
        self.group_name = group_name
        self.group = job["group"][group_name]
        self.renderer = renderer
        self.variables_store = variables_store
        self.catalogue = catalogue or {}
        self.alloc_id = str(uuid.uuid4())
        self.node_id = str(uuid.uuid4())
        self.processes = {}
        self.ports = {}
        for network in self.group.get("network", []):
            for label, port in network.get("port", {}).items():
                self.ports[label] = port.get("static") or free_port()
        self.as_nobody = os.geteuid() == 0
        self.nobody = pwd.getpwnam("nobody") if self.as_nobody else None

    # --- Layout and environment -------------------------------------------------------------

    @property
    def alloc_dir(self):
        return self.root / "alloc"

    def task_dir(self, task):
        return self.root / task

    def _own(self, path, mode):
        path.chmod(mode)
        if self.as_nobody:
            os.chown(path, self.nobody.pw_uid, self.nobody.pw_gid)

    def lay_out(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.alloc_dir.mkdir(exist_ok=True)
        self.alloc_dir.chmod(0o755)
        for sub in ("data", "logs", "tmp"):
            (self.alloc_dir / sub).mkdir(exist_ok=True)
            self._own(self.alloc_dir / sub, 0o777 if sub == "tmp" else 0o755)
        for task in self.group["task"]:
            self.task_dir(task).mkdir(exist_ok=True)
            self.task_dir(task).chmod(0o755)
            for sub, mode in (("local", 0o755), ("secrets", 0o700), ("tmp", 0o777)):
                (self.task_dir(task) / sub).mkdir(exist_ok=True)
                self._own(self.task_dir(task) / sub, mode)

    def task_env(self, task_name):
        task = self.group["task"][task_name]
        resources = (task.get("resources") or [{}])[0]
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NOMAD_ALLOC_DIR": str(self.alloc_dir),
            "NOMAD_TASK_DIR": str(self.task_dir(task_name) / "local"),
            "NOMAD_SECRETS_DIR": str(self.task_dir(task_name) / "secrets"),
            "NOMAD_ALLOC_ID": self.alloc_id,
            "NOMAD_SHORT_ALLOC_ID": self.alloc_id[:8],
            "NOMAD_ALLOC_NAME": f"{self.job_name}.{self.group_name}[0]",
            "NOMAD_ALLOC_INDEX": "0",
            "NOMAD_JOB_ID": self.job_name,
            "NOMAD_JOB_NAME": self.job_name,
            "NOMAD_GROUP_NAME": self.group_name,
            "NOMAD_TASK_NAME": task_name,
            "NOMAD_DC": "dc1",
            "NOMAD_REGION": "global",
            "NOMAD_NAMESPACE": "default",
            "NOMAD_CPU_LIMIT": str(resources.get("cpu", resources.get("cores", 1) * 2000)),
            "NOMAD_MEMORY_LIMIT": str(resources.get("memory", 300)),
        }
        if "memory_max" in resources:
            env["NOMAD_MEMORY_MAX_LIMIT"] = str(resources["memory_max"])
        for label, port in self.ports.items():
            env[f"NOMAD_IP_{label}"] = "127.0.0.1"
            env[f"NOMAD_PORT_{label}"] = str(port)
            env[f"NOMAD_ADDR_{label}"] = f"127.0.0.1:{port}"
            env[f"NOMAD_HOST_IP_{label}"] = "127.0.0.1"
            env[f"NOMAD_HOST_PORT_{label}"] = str(port)
            env[f"NOMAD_HOST_ADDR_{label}"] = f"127.0.0.1:{port}"
        for block in task.get("env", []):
            for name, value in block.items():
                env[name] = interpolate(str(value), env)
        return env

    # --- Templates ---------------------------------------------------------------------------

    def render_templates(self, task_name, env):
        task = self.group["task"][task_name]
        templates = task.get("template", [])
        if not templates:
            return
        request = {
            "templates": [{"data": t.get("data", ""), "left_delimiter": t.get("left_delimiter", ""),
                           "right_delimiter": t.get("right_delimiter", "")} for t in templates],
            "env": env,
            "services": self.catalogue,
            "variables": self.variables_store,
        }
        result = subprocess.run([str(self.renderer)], input=json.dumps(request), text=True,
                                capture_output=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{task_name}: templates do not render: {result.stderr}")
        for template, text in zip(templates, json.loads(result.stdout)):
            target = self.task_dir(task_name) / interpolate(template["destination"], env)
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.as_nobody:
                for parent in reversed(target.relative_to(self.task_dir(task_name)).parents):
                    path = self.task_dir(task_name) / parent
                    if path != self.task_dir(task_name):
                        os.chown(path, self.nobody.pw_uid, self.nobody.pw_gid)
            target.write_text(text)
            self._own(target, int(template.get("perms", "0644"), 8))

    # --- Processes ---------------------------------------------------------------------------

    def command(self, task_name, env):
        config = self.group["task"][task_name]["config"][0]
        return [interpolate(config["command"], env)] + \
               [interpolate(a, env) for a in config.get("args", [])]

    def start(self, task_names=None):
        self.lay_out()
        for task_name in task_names or self.group["task"]:
            env = self.task_env(task_name)
            self.render_templates(task_name, env)
            logs = self.alloc_dir / "logs"
            stdout = open(logs / f"{task_name}.stdout.0", "ab")
            stderr = open(logs / f"{task_name}.stderr.0", "ab")
            kwargs = {}
            if self.as_nobody:
                kwargs = {"user": self.nobody.pw_uid, "group": self.nobody.pw_gid,
                          "extra_groups": []}
            self.processes[task_name] = subprocess.Popen(
                self.command(task_name, env), env=env, cwd=self.task_dir(task_name),
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                start_new_session=True, preexec_fn=_die_with_parent, **kwargs)
            stdout.close()
            stderr.close()

    def exited(self):
        """{task: exit status} of the tasks that are no longer running."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def stop(self):
        """Each task's kill_signal, then SIGKILL after its kill_timeout. Returns the exit
        statuses."""
        for name, process in self.processes.items():
            task = self.group["task"][name]
            if process.poll() is None:
                process.send_signal(getattr(signal, task.get("kill_signal", "SIGINT")))
        statuses = {}
        for name, process in self.processes.items():
            task = self.group["task"][name]
            try:
                statuses[name] = process.wait(duration(task.get("kill_timeout", "5s")))
            except subprocess.TimeoutExpired:
                process.kill()
                statuses[name] = process.wait(10)
        return statuses

    def log(self, task_name, stream="stderr"):
        path = self.alloc_dir / "logs" / f"{task_name}.{stream}.0"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # --- Catalogue and checks ----------------------------------------------------------------

    def registrations(self):
        """The group's services as `nomadService` lists them: {name: [registration]}."""
        out = {}
        for service in self.group.get("service", []):
            name = service["name"]
            port_label = service["port"]
            out.setdefault(name, []).append({
                "ID": f"_nomad-task-{self.alloc_id}-group-{self.group_name}-{name}-{port_label}",
                "Name": name, "Namespace": "default", "Datacenter": "dc1",
                "NodeID": self.node_id, "JobID": self.job_name, "AllocID": self.alloc_id,
                "Address": "127.0.0.1", "Port": self.ports[port_label],
                "Tags": service.get("tags", []),
            })
        return out

    def run_checks(self):
        """Every check of the group's services once, as Nomad's client runs native checks.
        Returns [(service, check name, passed, detail)]."""
        results = []
        for service in self.group.get("service", []):
            for check in service.get("check", []):
                port = self.ports[check.get("port", service["port"])]
                timeout = duration(check["timeout"])
                name = check.get("name", check["type"])
                if check["type"] == "tcp":
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
                        results.append((service["name"], name, True, "connected"))
                    except OSError as error:
                        results.append((service["name"], name, False, str(error)))
                    continue
                protocol = check.get("protocol", "http")
                url = f"{protocol}://127.0.0.1:{port}{check['path']}"
                try:
                    with urllib.request.urlopen(urllib.request.Request(
                            url, method=check.get("method", "GET")), timeout=timeout) as response:
                        results.append((service["name"], name, 200 <= response.status < 300,
                                        f"{url} {response.status}"))
                except urllib.error.HTTPError as error:
                    results.append((service["name"], name, False, f"{url} {error.code}"))
                except OSError as error:
                    results.append((service["name"], name, False, f"{url} {error}"))
        return results

    def wait_until(self, predicate, what, timeout=90.0):
        """Polls `predicate` (bounded in time); fails early if a task exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.exited()
            if dead:
                details = "\n".join(f"--- {t} stderr:\n{self.log(t)[-2000:]}" for t in dead)
                raise AssertionError(f"tasks exited while waiting for {what}: {dead}\n{details}")
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
