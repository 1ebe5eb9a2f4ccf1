"""A schema check of Nomad job files, over the JSON that HashiCorp's HCL parser makes of them.

Nomad cannot be installed here (not packaged for Debian), so `nomad job validate` cannot run.
What it would do is done in two steps:

1. Syntax: tests/nomad/hcl2json.js parses the file with hcl/v2 itself (npm @cdktf/hcl2json).
2. This module: what Nomad's job parser (jobspec2, decoding into the api structs) and the
   server's validation (nomad/structs: Job.Validate and the Validate of each block) reject.
   Each rule names the struct or message it comes from, so it can be checked against Nomad's
   source. Covered:
   - every block and attribute name of the blocks a job may hold (job, group, task, network,
     port, service, check, check_restart, update, restart, reschedule, migrate, scaling and the
     Autoscaler's policy/check/strategy, template, resources, env, meta, constraint, affinity,
     spread, ephemeral_disk, logs, lifecycle, variable) and of the exec/raw_exec driver
     configs: an unknown name is "Unsupported argument" / "Unsupported block type";
   - types (string, number, bool, list, duration strings as Go's time.ParseDuration reads
     them) and enumerations (job type, restart mode, reschedule delay_function, update
     health_check, template change_mode, service provider, check type, constraint operator);
   - cross-field rules: one service provider per group; Nomad-native checks are http or tcp
     and take none of the Consul-only fields (tls_skip_verify, success_before_passing, ...);
     http checks need a relative path; check interval and timeout at least 1 s; service and
     check ports must be labels of the group's network; service names per RFC 1123; restart
     attempts x delay within the interval, interval at least 5 s; reschedule delay at least
     5 s and max_delay at least delay; update min_healthy_time < healthy_deadline <
     progress_deadline, auto_promote only with canaries; cpu xor cores, memory_max >= memory,
     memory at least 10 MB; template data xor source, a destination, change_signal for
     signal; scaling min <= count <= max; unique group and task names; a driver per task;
   - expressions: `${var.NAME}` must name a declared variable (its default or a -var value
     is substituted, type-checked), `$${` is a literal `${`, and runtime interpolations
     (`${NOMAD_*}`, `${attr.*}`, `${node.*}`, `${meta.*}`) are kept for the client. Any other
     expression is refused: this check does not evaluate HCL functions, so it does not let
     through what it cannot judge.
   Not covered: drivers other than exec and raw_exec, Consul Connect, volumes, Vault, CSI,
   and whatever depends on the cluster (datacenters, node classes, quotas, ACLs).

`check(parsed, overrides)` returns (errors, job): the messages, and the job with variables
substituted, as a Nomad agent would hold it (used by the task runner in test_alloc.py).
"""

import re

# --- Values ---------------------------------------------------------------------------------

_PART = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)"
_DURATION = re.compile(rf"^(0|({_PART})+)$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text):
    """Go's time.ParseDuration, in seconds; None when Go would refuse the text."""
    if not isinstance(text, str) or not _DURATION.match(text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in re.findall(_PART, text))


_RUNTIME = re.compile(r"^(NOMAD_[A-Za-z0-9_]+|attr\.[A-Za-z0-9_.\-]+|node\.[A-Za-z0-9_.\-]+|"
                      r"meta\.[A-Za-z0-9_.\-]+|env\.[A-Za-z0-9_]+)$")
_VAR = re.compile(r"^var\.([A-Za-z_][A-Za-z0-9_-]*)$")
_INTERP = re.compile(r"(\$\$\{)|\$\{([^}]*)\}")


class Evaluator:
    """Substitutes `${var.X}` and keeps runtime interpolations, like Nomad's job parser."""

    def __init__(self, variables, errors):
        self.variables = variables
        self.errors = errors

    def value(self, value, where):
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
        return value

    def string(self, text, where):
        whole = re.fullmatch(r"\$\{([^}]*)\}", text)
        if whole and _VAR.match(whole.group(1).strip()):
            return self.lookup(whole.group(1).strip(), where)

        def replace(match):
            if match.group(1):
                return "\0LITERAL\0"
            expr = match.group(2).strip()
            if _VAR.match(expr):
                value = self.lookup(expr, where)
                if isinstance(value, (list, dict)):
                    self.errors.append(f"{where}: {expr} is not a string and cannot be interpolated")
                    return ""
                return str(value).lower() if isinstance(value, bool) else str(value)
            if _RUNTIME.match(expr):
                return "${" + expr + "}"
            self.errors.append(f"{where}: expression ${{{expr}}} is not one this check evaluates "
                               "(only var.NAME and runtime NOMAD_*/attr/node/meta references)")
            return ""

        return _INTERP.sub(replace, text).replace("\0LITERAL\0", "${")

    def lookup(self, expr, where):
        name = _VAR.match(expr).group(1)
        if name not in self.variables:
            self.errors.append(f"{where}: Unknown variable; there is no variable named {name!r}")
            return ""
        return self.variables[name]


def is_block_list(value):
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


# --- Schema ---------------------------------------------------------------------------------
# Each block: attrs {name: type}, blocks {name: (schema, labelled)}. Types: str, int, num,
# bool, dur (duration string), list (of str), map (str -> str), any.

def block(attrs=None, blocks=None):
    return {"attrs": attrs or {}, "blocks": blocks or {}}


MAP_BLOCK = "map-block"  # a block whose attributes are free names (env, meta)

CONSTRAINT = block({"attribute": "str", "operator": "str", "value": "str"})
AFFINITY = block({"attribute": "str", "operator": "str", "value": "str", "weight": "int"})
SPREAD = block({"attribute": "str", "weight": "int"},
               {"target": (block({"value": "str", "percent": "int"}), True)})
CHECK_RESTART = block({"limit": "int", "grace": "dur", "ignore_warnings": "bool"})
CHECK = block({
    "name": "str", "type": "str", "command": "str", "args": "list", "path": "str",
    "protocol": "str", "port": "str", "expose": "bool", "address_mode": "str", "interval": "dur",
    "timeout": "dur", "initial_status": "str", "notes": "str", "tls_server_name": "str",
    "tls_skip_verify": "bool", "method": "str", "body": "str", "grpc_service": "str",
    "grpc_use_tls": "bool", "task": "str", "success_before_passing": "int",
    "failures_before_critical": "int", "failures_before_warning": "int", "on_update": "str",
}, {"check_restart": (CHECK_RESTART, False), "header": (MAP_BLOCK, False)})
SERVICE = block({
    "name": "str", "provider": "str", "tags": "list", "canary_tags": "list",
    "enable_tag_override": "bool", "port": "str", "address": "str", "address_mode": "str",
    "task": "str", "on_update": "str",
}, {"check": (CHECK, False), "check_restart": (CHECK_RESTART, False), "meta": (MAP_BLOCK, False),
    "canary_meta": (MAP_BLOCK, False), "tagged_addresses": (MAP_BLOCK, False)})
PORT = block({"static": "int", "to": "int", "host_network": "str"})
NETWORK = block({"mode": "str", "hostname": "str", "mbits": "int"},
                {"port": (PORT, True),
                 "dns": (block({"servers": "list", "searches": "list", "options": "list"}), False)})
UPDATE = block({
    "max_parallel": "int", "health_check": "str", "min_healthy_time": "dur",
    "healthy_deadline": "dur", "progress_deadline": "dur", "auto_revert": "bool",
    "auto_promote": "bool", "canary": "int", "stagger": "dur",
})
RESTART = block({"attempts": "int", "interval": "dur", "delay": "dur", "mode": "str",
                 "render_templates": "bool"})
RESCHEDULE = block({"attempts": "int", "interval": "dur", "delay": "dur",
                    "delay_function": "str", "max_delay": "dur", "unlimited": "bool"})
MIGRATE = block({"max_parallel": "int", "health_check": "str", "min_healthy_time": "dur",
                 "healthy_deadline": "dur"})
EPHEMERAL_DISK = block({"size": "int", "sticky": "bool", "migrate": "bool"})
# The Nomad Autoscaler's policy (it reads the block Nomad stores opaquely).
STRATEGY = block({"target": "num", "threshold": "num", "count": "int", "lower_bound": "num",
                  "upper_bound": "num", "delta": "int", "percentage": "num", "value": "int"})
AUTOSCALER_CHECK = block({"source": "str", "query": "str", "query_window": "dur",
                          "on_error": "str", "group": "str"},
                         {"strategy": (STRATEGY, True)})
POLICY = block({"evaluation_interval": "dur", "cooldown": "dur", "on_check_error": "str"},
               {"check": (AUTOSCALER_CHECK, True), "target": (block({"Job": "str", "Group": "str"}), True)})
SCALING = block({"min": "int", "max": "int", "enabled": "bool"}, {"policy": (POLICY, False)})
TEMPLATE = block({
    "data": "str", "source": "str", "destination": "str", "change_mode": "str",
    "change_signal": "str", "perms": "str", "uid": "int", "gid": "int", "env": "bool",
    "splay": "dur", "left_delimiter": "str", "right_delimiter": "str",
    "error_on_missing_key": "bool", "vault_grace": "dur",
}, {"wait": (block({"min": "dur", "max": "dur"}), False),
    "change_script": (block({"command": "str", "args": "list", "timeout": "dur",
                             "fail_on_error": "bool"}), False)})
RESOURCES = block({"cpu": "int", "cores": "int", "memory": "int", "memory_max": "int",
                   "disk": "int", "iops": "int", "secrets": "int"})
LOGS = block({"max_files": "int", "max_file_size": "int", "disabled": "bool"})
LIFECYCLE = block({"hook": "str", "sidecar": "bool"})
ARTIFACT = block({"source": "str", "destination": "str", "mode": "str"},
                 {"options": (MAP_BLOCK, False), "headers": (MAP_BLOCK, False)})
# Driver configs (the plugins' hclspec).
DRIVER_CONFIG = {
    "exec": {"command": "str", "args": "list", "pid_mode": "str", "ipc_mode": "str",
             "cap_add": "list", "cap_drop": "list", "work_dir": "str"},
    "raw_exec": {"command": "str", "args": "list", "cgroup_v1_override": "map",
                 "cgroup_v2_override": "str", "oom_score_adj": "int", "work_dir": "str",
                 "denied_envvars": "list"},
}
TASK = block({
    "driver": "str", "user": "str", "kill_timeout": "dur", "kill_signal": "str",
    "shutdown_delay": "dur", "leader": "bool",
}, {"config": ("driver-config", False), "env": (MAP_BLOCK, False), "meta": (MAP_BLOCK, False),
    "template": (TEMPLATE, False), "resources": (RESOURCES, False), "logs": (LOGS, False),
    "lifecycle": (LIFECYCLE, False), "artifact": (ARTIFACT, False),
    "service": (SERVICE, False), "restart": (RESTART, False),
    "constraint": (CONSTRAINT, False), "affinity": (AFFINITY, False),
    "scaling": (SCALING, True)})
GROUP = block({"count": "int", "shutdown_delay": "dur", "stop_after_client_disconnect": "dur",
               "max_client_disconnect": "dur", "prevent_reschedule_on_lost": "bool"},
              {"task": (TASK, True), "network": (NETWORK, False), "service": (SERVICE, False),
               "update": (UPDATE, False), "restart": (RESTART, False),
               "reschedule": (RESCHEDULE, False), "migrate": (MIGRATE, False),
               "scaling": (SCALING, False), "ephemeral_disk": (EPHEMERAL_DISK, False),
               "constraint": (CONSTRAINT, False), "affinity": (AFFINITY, False),
               "spread": (SPREAD, False), "meta": (MAP_BLOCK, False)})
JOB = block({"type": "str", "datacenters": "list", "node_pool": "str", "region": "str",
             "namespace": "str", "priority": "int", "all_at_once": "bool"},
            {"group": (GROUP, True), "update": (UPDATE, False), "meta": (MAP_BLOCK, False),
             "constraint": (CONSTRAINT, False), "affinity": (AFFINITY, False),
             "spread": (SPREAD, False), "reschedule": (RESCHEDULE, False),
             "migrate": (MIGRATE, False)})

# At most one of these per parent (the api structs hold a pointer, not a list).
SINGLE_BLOCKS = {"network", "update", "restart", "reschedule", "migrate", "ephemeral_disk",
                 "resources", "logs", "lifecycle", "config", "env", "meta", "check_restart",
                 "policy", "wait", "change_script", "scaling"}

CONSTRAINT_OPERATORS = {"=", "==", "is", "!=", "not", ">", ">=", "<", "<=", "distinct_hosts",
                        "distinct_property", "regexp", "set_contains", "set_contains_all",
                        "set_contains_any", "version", "semver", "is_set", "is_not_set"}


def type_ok(kind, value):
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "dur":
        return duration_seconds(value) is not None
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "map":
        return isinstance(value, dict)
    raise ValueError(kind)


class Checker:
    def __init__(self, evaluator, errors):
        self.ev = evaluator
        self.errors = errors

    def err(self, where, message):
        self.errors.append(f"{where}: {message}")

    def body(self, schema, raw, where, driver=None):
        """One block body: names, types, nested blocks. Returns the evaluated body."""
        if schema == MAP_BLOCK:
            out = {}
            for name, value in raw.items():
                value = self.ev.value(value, f"{where}.{name}")
                if not isinstance(value, (str, int, float, bool)):
                    self.err(f"{where}.{name}", "Inappropriate value: a string is required")
                out[name] = value
            return out
        if schema is TASK:
            driver = raw.get("driver")
        if schema == "driver-config":
            attrs = DRIVER_CONFIG.get(driver)
            if attrs is None:
                return self.ev.value(raw, where)
            schema = block(attrs)
        out = {}
        for name, value in raw.items():
            here = f"{where}.{name}"
            if name in schema["blocks"]:
                sub, labelled = schema["blocks"][name]
                if labelled:
                    if not isinstance(value, dict):
                        self.err(here, f"Missing name for {name}: a {name} block needs a label")
                        continue
                    out[name] = {}
                    for label, bodies in value.items():
                        if not is_block_list(bodies):
                            self.err(f"{here}.{label}", f"Unsupported argument; {name} is a block")
                            continue
                        if len(bodies) > 1:
                            self.err(f"{here}.{label}", f"Duplicate {name} block named {label!r}")
                        out[name][label] = self.body(sub, bodies[0], f"{here}.{label}", driver)
                else:
                    if not is_block_list(value):
                        self.err(here, f"Unsupported argument; an argument named {name!r} is "
                                       f"not expected here (it is a block: `{name} {{ ... }}`)")
                        continue
                    if name in SINGLE_BLOCKS and len(value) > 1:
                        self.err(here, f"Duplicate {name} block; only one is allowed")
                    out[name] = [self.body(sub, b, here, driver) for b in value]
            elif name in schema["attrs"]:
                evaluated = self.ev.value(value, here)
                if not type_ok(schema["attrs"][name], evaluated):
                    self.err(here, f"Inappropriate value for attribute {name!r}: "
                                   f"{schema['attrs'][name]} required, got {evaluated!r}")
                out[name] = evaluated
            else:
                kind = "block type" if is_block_list(value) else "argument"
                self.err(here, f"Unsupported {kind}; {name!r} is not expected here")
        return out


# --- Validation rules (nomad/structs) -------------------------------------------------------

SERVICE_NAME = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
PORT_LABEL = re.compile(r"^[a-zA-Z0-9_]+$")


def one(body, name):
    """The single block `name` of a body, or {}."""
    blocks = body.get(name) or [{}]
    return blocks[0]


def validate_update(u, where, err):
    # structs.UpdateStrategy.Validate
    if "health_check" in u and u["health_check"] not in ("checks", "task_states", "manual"):
        err(where, f"Invalid health check given: {u['health_check']!r}")
    for field in ("max_parallel", "canary"):
        if u.get(field, 0) < 0:
            err(where, f"{field} must be non-negative")
    mht = duration_seconds(u.get("min_healthy_time", "10s"))
    hd = duration_seconds(u.get("healthy_deadline", "5m"))
    pd = duration_seconds(u.get("progress_deadline", "10m"))
    if None not in (mht, hd) and mht >= hd:
        err(where, f"Minimum healthy time ({u.get('min_healthy_time')}) must be less than "
                   f"healthy deadline ({u.get('healthy_deadline', '5m')})")
    if None not in (hd, pd) and pd != 0 and hd >= pd:
        err(where, f"Healthy deadline ({u.get('healthy_deadline', '5m')}) must be less than "
                   f"progress deadline ({u.get('progress_deadline', '10m')})")
    if u.get("auto_promote") and u.get("canary", 0) == 0:
        err(where, "Auto Promote requires a Canary count greater than zero")


def validate_restart(r, where, err):
    # structs.RestartPolicy.Validate
    mode = r.get("mode", "fail")
    if mode not in ("delay", "fail"):
        err(where, f"Unsupported restart mode: {mode!r}")
    attempts = r.get("attempts", 2)
    if attempts == 0 and mode != "fail":
        err(where, f"Restart policy {mode!r} with 0 attempts is ambiguous")
    interval = duration_seconds(r.get("interval", "30m"))
    delay = duration_seconds(r.get("delay", "15s"))
    if interval is not None and interval < 5:
        err(where, f"Interval can not be less than 5s (got {r.get('interval')})")
    if None not in (interval, delay) and attempts * delay > interval:
        err(where, f"Nomad can't restart the TaskGroup {attempts} times in an interval of "
                   f"{r.get('interval')} with a delay of {r.get('delay')}")


def validate_reschedule(r, where, err):
    # structs.ReschedulePolicy.Validate
    function = r.get("delay_function", "exponential")
    if function not in ("constant", "exponential", "fibonacci"):
        err(where, f"Invalid delay function {function!r}, must be one of "
                   "constant, exponential, fibonacci")
    delay = duration_seconds(r.get("delay", "30s"))
    if delay is not None and delay < 5:
        err(where, f"Delay cannot be less than 5s (got {r.get('delay')})")
    max_delay = duration_seconds(r.get("max_delay", "1h"))
    if function != "constant" and None not in (delay, max_delay) and max_delay < delay:
        err(where, f"Max Delay cannot be less than Delay {r.get('delay')} "
                   f"(got {r.get('max_delay')})")
    if function != "constant" and max_delay is not None and max_delay < 5:
        err(where, f"Max Delay cannot be less than 5s (got {r.get('max_delay')})")
    if r.get("attempts", 0) > 0 and r.get("unlimited"):
        err(where, "If Attempts >0, Unlimited cannot also be set to true")
    interval = duration_seconds(r.get("interval", "0"))
    if not r.get("unlimited") and interval is not None and interval < 15:
        err(where, f"Interval cannot be less than 15s (got {r.get('interval', '0')})")


def validate_check(c, where, provider, ports, err):
    ctype = str(c.get("type", "")).lower()
    allowed = ("tcp", "http") if provider == "nomad" else ("grpc", "tcp", "http", "script")
    if ctype not in allowed:
        err(where, f"invalid check type ({ctype!r}), must be one of {', '.join(allowed)}")
    if ctype == "http":
        path = c.get("path", "")
        if not path:
            err(where, "http type must have http path")
        elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", path):
            err(where, "http type must have relative http path")
    interval = duration_seconds(c.get("interval", "0"))
    timeout = duration_seconds(c.get("timeout", "0"))
    if not interval:
        err(where, "missing required value interval. Interval cannot be less than 1s")
    elif interval < 1:
        err(where, f"interval ({c['interval']}) cannot be lower than 1s")
    if not timeout:
        err(where, "missing required value timeout. Timeout cannot be less than 1s")
    elif timeout < 1:
        err(where, f"timeout ({c['timeout']}) is lower than required minimum timeout 1s")
    if c.get("on_update", "require_healthy") not in ("require_healthy", "ignore_warnings", "ignore"):
        err(where, "on_update must be require_healthy, ignore_warnings, or ignore")
    if provider == "nomad":
        # structs.ServiceCheck.validateNomad
        for field in ("tls_skip_verify", "tls_server_name", "success_before_passing",
                      "failures_before_critical", "failures_before_warning", "expose"):
            if c.get(field):
                err(where, f"{field} may only be set for Consul service checks")
        if c.get("on_update") == "ignore_warnings":
            err(where, "on_update may only be set to ignore_warnings for Consul service checks")
        if c.get("address_mode") == "driver":
            err(where, "address_mode = driver may only be set for Consul service checks")
    port = c.get("port")
    if port is not None and not str(port).isdigit() and port not in ports:
        err(where, f"check port label {port!r} is not a port of the group's network")


def validate_services(services, where, ports, err):
    # structs.TaskGroup.validateServices / Service.Validate
    seen = set()
    for s in services:
        key = (s.get("name"), s.get("port"))
        if key in seen:
            err(where, f"Service {s.get('name')} is duplicate")
        seen.add(key)
        names = [c.get("name") for c in s.get("check", []) if c.get("name")]
        for name in {n for n in names if names.count(n) > 1}:
            err(where, f"Check {name} is duplicate in service {s.get('name')}")
    providers = {s.get("provider", "consul") for s in services}
    if len(providers) > 1:
        err(where, "Multiple service providers used: task group services must use the same provider")
    for i, s in enumerate(services):
        here = f"{where}.service[{i}]"
        provider = s.get("provider", "consul")
        if provider not in ("consul", "nomad"):
            err(here, f"Service provider must be \"consul\" or \"nomad\", got {provider!r}")
        name = s.get("name", "")
        if name and "${" not in name and not SERVICE_NAME.match(name):
            err(here, f"Service name must be valid per RFC 1123 and can contain only "
                      f"alphanumeric characters or dashes: {name!r}")
        port = s.get("port")
        if port is not None and not str(port).isdigit() and port not in ports:
            err(here, f"port label {port!r} referenced by services {name} does not exist")
        for j, c in enumerate(s.get("check", [])):
            validate_check(c, f"{here}.check[{j}]", provider, ports, err)


def validate_template(t, where, err):
    # structs.Template.Validate
    if not t.get("data") and not t.get("source"):
        err(where, "Must specify a source path or have an embedded template")
    if t.get("data") and t.get("source"):
        err(where, "Can not specify both source and data")  # jobspec: one or the other
    if not t.get("destination"):
        err(where, "Must specify a destination for the template")
    mode = t.get("change_mode", "restart")
    if mode not in ("noop", "restart", "signal", "script"):
        err(where, f"Invalid change mode ({mode})")
    if mode == "signal" and not t.get("change_signal"):
        err(where, "Must specify signal value when change mode is signal")
    if mode == "signal" and t.get("env"):
        err(where, "cannot use signals with env var templates")
    if mode == "script" and not t.get("change_script"):
        err(where, "Must specify change script configuration value when change mode is script")
    if "perms" in t and not re.fullmatch(r"0?[0-7]{3}", t["perms"]):
        err(where, f"Failed to parse {t['perms']!r} as octal")


def validate_resources(r, where, err):
    # structs.Resources.Validate / MinCPU, MinMemory
    if "cpu" in r and "cores" in r:
        err(where, "Task can only ask for 'cpu' or 'cores' resource, not both.")
    if "cpu" in r and r["cpu"] < 1:
        err(where, f"minimum CPU value is 1; got {r['cpu']}")
    if "cores" in r and r["cores"] < 1:
        err(where, f"minimum cores value is 1; got {r['cores']}")
    memory = r.get("memory", 300)
    if memory < 10:
        err(where, f"minimum MemoryMB value is 10; got {memory}")
    if "memory_max" in r and r["memory_max"] < memory:
        err(where, f"MemoryMaxMB value ({r['memory_max']}) should be larger than MemoryMB "
                   f"value ({memory})")


def validate_task(name, t, where, err):
    driver = t.get("driver")
    if not driver:
        err(where, "Missing driver")
    if driver in DRIVER_CONFIG:
        config = one(t, "config")
        if not config.get("command"):
            err(f"{where}.config", "Missing required argument: command")
    for i, tpl in enumerate(t.get("template", [])):
        validate_template(tpl, f"{where}.template[{i}]", err)
    destinations = [tpl.get("destination") for tpl in t.get("template", [])]
    for d in {d for d in destinations if destinations.count(d) > 1}:
        err(where, f"two templates render to the same destination {d!r}")
    validate_resources(one(t, "resources"), f"{where}.resources", err)
    if "kill_signal" in t and not re.fullmatch(r"SIG[A-Z0-9]+", t["kill_signal"]):
        err(where, f"kill_signal {t['kill_signal']!r} is not a signal name")
    lifecycle = one(t, "lifecycle")
    if lifecycle and lifecycle.get("hook") not in ("prestart", "poststart", "poststop"):
        err(f"{where}.lifecycle", f"invalid hook {lifecycle.get('hook')!r}")


def validate_constraints(constraints, where, err):
    for i, c in enumerate(constraints):
        op = c.get("operator", "=")
        if op not in CONSTRAINT_OPERATORS:
            err(f"{where}.constraint[{i}]", f"Unknown constraint type {op!r}")
        if op not in ("distinct_hosts", "distinct_property") and not c.get("attribute") and \
                op not in ("is_set", "is_not_set"):
            err(f"{where}.constraint[{i}]", "No LTarget provided but is required by constraint")


def validate_scaling(s, count, where, err):
    if "max" not in s:
        err(where, "Missing required argument: max")
        return
    lo, hi = s.get("min", count), s["max"]
    if lo > hi:
        err(where, "Scaling policy invalid: maximum count must not be less than minimum count")
    if count is not None and count > hi:
        err(where, "Scaling policy invalid: task group count must not be greater than maximum count in scaling policy")
    if count is not None and count < lo:
        err(where, "Scaling policy invalid: task group count must not be less than minimum count in scaling policy")
    for policy in s.get("policy", []):
        for cname, c in policy.get("check", {}).items():
            here = f"{where}.policy.check.{cname}"
            if not c.get("source") or not c.get("query"):
                err(here, "an Autoscaler check needs a source and a query")
            strategies = c.get("strategy", {})
            if len(strategies) != 1:
                err(here, "an Autoscaler check needs exactly one strategy")
            for sname, strategy in strategies.items():
                if sname not in ("target-value", "threshold", "pass-through", "fixed-value"):
                    err(here, f"unknown Autoscaler strategy {sname!r}")
                if sname == "target-value" and "target" not in strategy:
                    err(here, "the target-value strategy needs a target")


def validate_job(name, job, where, err):
    # structs.Job.Validate
    jtype = job.get("type", "service")
    if jtype not in ("service", "batch", "system", "sysbatch"):
        err(where, f"Invalid job type: {jtype!r}")
    if "datacenters" in job and not job["datacenters"]:
        err(where, "Missing job datacenters")
    if not 1 <= job.get("priority", 50) <= 100:
        err(where, "Job priority must be between [1, 100]")
    groups = job.get("group", {})
    if not groups:
        err(where, "Missing job task groups")
    validate_constraints(job.get("constraint", []), where, err)
    for gname, g in groups.items():
        here = f"{where}.group.{gname}"
        tasks = g.get("task", {})
        if not tasks:
            err(here, "Missing tasks for task group")
        count = g.get("count", 1)
        if count < 0:
            err(here, "Task group count can't be negative")
        ports = set()
        static_ports = {}
        for network in g.get("network", []):
            for label, port in network.get("port", {}).items():
                if not PORT_LABEL.match(label):
                    err(f"{here}.network.port.{label}",
                        "Port label may only contain alphanumeric characters and underscores")
                for field in ("static", "to"):
                    if field in port and not 0 <= port[field] <= 65535:
                        err(f"{here}.network.port.{label}", f"{field} port out of range")
                if port.get("static"):
                    if port["static"] in static_ports:
                        err(f"{here}.network.port.{label}", f"Static port {port['static']} "
                            f"already reserved by {static_ports[port['static']]}")
                    static_ports[port["static"]] = label
                ports.add(label)
        validate_services(g.get("service", []), here, ports, err)
        for tname, t in tasks.items():
            validate_services(t.get("service", []), f"{here}.task.{tname}", ports, err)
            validate_task(tname, t, f"{here}.task.{tname}", err)
        if "update" in g:
            validate_update(one(g, "update"), f"{here}.update", err)
        if "restart" in g:
            validate_restart(one(g, "restart"), f"{here}.restart", err)
        if "reschedule" in g:
            validate_reschedule(one(g, "reschedule"), f"{here}.reschedule", err)
        if "scaling" in g:
            validate_scaling(one(g, "scaling"), count, f"{here}.scaling", err)
        if "shutdown_delay" in g and duration_seconds(g["shutdown_delay"]) is None:
            err(here, "shutdown_delay must be a duration")
        validate_constraints(g.get("constraint", []), here, err)
    if "update" in job:
        validate_update(one(job, "update"), f"{where}.update", err)


# --- Variables ------------------------------------------------------------------------------

VARIABLE_TYPES = {"${string}": str, "${number}": (int, float), "${bool}": bool,
                  "${list(string)}": list, "${map(string)}": dict}


def declared_variables(parsed, overrides, errors):
    values = {}
    for name, bodies in parsed.get("variable", {}).items():
        body = bodies[0]
        unknown = set(body) - {"type", "default", "description", "validation", "sensitive"}
        if unknown:
            errors.append(f"variable.{name}: Unsupported argument {sorted(unknown)}")
        kind = body.get("type", "${string}")
        if kind not in VARIABLE_TYPES:
            errors.append(f"variable.{name}: type {kind} is not one this check knows")
            continue
        if name in overrides:
            value = overrides[name]
        elif "default" in body:
            value = body["default"]
        else:
            errors.append(f"variable.{name}: Unset variable; a value is required (no default)")
            continue
        python_type = VARIABLE_TYPES[kind]
        if not isinstance(value, python_type) or (python_type is not bool and isinstance(value, bool)):
            errors.append(f"variable.{name}: Invalid value; {kind[2:-1]} required, got {value!r}")
        values[name] = value
    for name in set(overrides) - set(values):
        errors.append(f"-var {name}: Undefined variable; no variable named {name!r} is declared")
    return values


def check(parsed, overrides=None):
    """Returns (errors, jobs): Nomad's complaints about the parsed file, and its jobs with
    variables substituted ({name: body})."""
    errors = []
    top = set(parsed) - {"job", "variable", "locals"}
    for name in sorted(top):
        errors.append(f"{name}: Unsupported block type; only job, variable and locals are allowed")
    variables = declared_variables(parsed, overrides or {}, errors)
    # String values of variables may hold escapes ($${) and runtime references themselves.
    plain = Evaluator({}, errors)
    variables = {k: plain.value(v, f"variable.{k}") if isinstance(v, (str, list)) else v
                 for k, v in variables.items()}
    checker = Checker(Evaluator(variables, errors), errors)
    jobs = parsed.get("job", {})
    if len(jobs) != 1:
        errors.append("a job file holds exactly one job block")
    evaluated = {}
    for name, bodies in jobs.items():
        job = checker.body(JOB, bodies[0], f"job.{name}")
        evaluated[name] = job
        if errors:
            # Nomad's parser stops here: a job that does not decode is never validated.
            continue
        validate_job(name, job, f"job.{name}", lambda where, msg: errors.append(f"{where}: {msg}"))
    return errors, evaluated
