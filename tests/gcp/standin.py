#!/usr/bin/env python3
"""A stateful stand-in for the Google Compute Engine API, for running the real
ansible-playbook and google.cloud modules offline.

Design, in plain words:

- The modules hard-code https://compute.googleapis.com/compute/v1/ and get tokens from
  https://oauth2.googleapis.com/token. They use `requests`, which honours HTTPS_PROXY and
  REQUESTS_CA_BUNDLE. So this process is an HTTP CONNECT proxy on loopback: for those two
  hosts (and secretmanager.googleapis.com, read by the VM boot script) it answers the CONNECT,
  terminates TLS itself with a certificate from a test CA, and serves the API. A CONNECT to
  any other host is refused and recorded as a violation: nothing leaves the machine.
- Every Compute call is checked against Google's own discovery document (compute.v1.json),
  read at start-up, never copied into the repository: the HTTP method and path must be a
  method of the document, the query parameters must be that method's (or the global ones),
  and the JSON body must match the method's request schema: unknown fields, wrong types,
  values outside an enum, and fields the document marks required for that method are errors.
  A call that fails is answered 400 like the API would, and recorded; the test asserts that
  no call was ever recorded as a violation.
- State is kept like the API keeps it: insert answers an Operation (RUNNING; DONE on the first
  poll), get of an unknown name is a 404 `notFound`, a second insert is a 409 `alreadyExists`,
  deleting a resource another one references is a 400 `resourceInUseByAnotherResource`, and
  resizing a regional MIG that an autoscaler drives is refused. A regional MIG keeps a list
  of instances per version; a PROACTIVE update policy replaces them on later polls, an
  OPPORTUNISTIC one does not.
- The token endpoint verifies the JWT's RS256 signature with the public half of the
  service-account key the test generated, so a module that signed nothing, or with the
  wrong key, gets no token; Compute calls need that token.
- Secret Manager (`projects/P/secrets/S/versions/V:access`) and the metadata server
  (`/computeMetadata/v1/instance/attributes/`) are not in compute.v1.json. They are modelled
  here from Google's public REST reference (paths, `Metadata-Flavor: Google`, base64
  `payload.data`); what checks them is this file's strict routing, not a published schema.

A plain HTTP GET of /_standin/state on the proxy port returns the state and the violations
as JSON; /_standin/seed (POST) adds secrets. The test talks to it there.
"""

import argparse
import base64
import copy
import datetime
import http.server
import itertools
import json
import os
import re
import signal
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

API_HOSTS = {"compute.googleapis.com", "www.googleapis.com", "oauth2.googleapis.com", "secretmanager.googleapis.com"}
SELF_BASE = "https://www.googleapis.com/compute/v1/"
ALT_BASES = ("https://compute.googleapis.com/compute/v1/", SELF_BASE)
GLOBAL_OWNERS = ("debian-cloud",)  # public image projects: references there are not checked


class ApiError(Exception):
    """An error answered the way Compute answers it: status, reason, message."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self):
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


# ------------------------------------------------------------------------------------------
# The discovery document: routing and schema validation
# ------------------------------------------------------------------------------------------


class Discovery:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.schemas = self.doc["schemas"]
        self.global_params = self.doc.get("parameters", {})
        self.routes = []
        for resource in self.doc["resources"].values():
            for method in resource.get("methods", {}).values():
                template = method["path"]
                literal = len(re.sub(r"\{[^}]+\}", "", template))
                pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
                names = re.findall(r"\{\+?([^}]+)\}", template)
                self.routes.append((literal, method["httpMethod"], re.compile(pattern), names, method))
        # Most literal characters first: ".../images/family/{family}" before ".../images/{image}".
        self.routes.sort(key=lambda r: -r[0])

    def route(self, http_method, path):
        """Returns (method, path params) or raises ApiError 404 like the API's front end."""
        for _, verb, pattern, names, method in self.routes:
            m = pattern.match(path)
            if m and verb == http_method:
                return method, dict(zip(names, (urllib.parse.unquote(g) for g in m.groups())))
        raise ApiError(404, "notFound", f"no method {http_method} {path} in compute.v1.json")

    def check_query(self, method, query):
        params = method.get("parameters", {})
        for name, values in query.items():
            spec = params.get(name) or self.global_params.get(name)
            if spec is None or spec.get("location") == "path":
                raise ApiError(400, "invalid", f"unknown query parameter {name!r} for {method['id']}")
            for v in values:
                self._check_scalar(v, spec, f"query {name}", from_query=True)
        for name, spec in params.items():
            if spec.get("required") and spec.get("location") == "query" and name not in query:
                raise ApiError(400, "required", f"query parameter {name!r} is required for {method['id']}")

    def check_body(self, method, body):
        ref = (method.get("request") or {}).get("$ref")
        if ref is None:
            if body not in (None, b"", {}):
                raise ApiError(400, "invalid", f"{method['id']} takes no request body")
            return
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", f"{method['id']} needs a JSON object body ({ref})")
        self._check(body, {"$ref": ref}, ref, method["id"])

    def _resolve(self, schema):
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        return schema

    def _check(self, value, schema, where, method_id):
        schema = self._resolve(schema)
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                raise ApiError(400, "invalid", f"{where}: expected an object, got {type(value).__name__}")
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, v in value.items():
                if props and key in props:
                    self._check(v, props[key], f"{where}.{key}", method_id)
                elif extra is not None:
                    self._check(v, extra, f"{where}[{key!r}]", method_id)
                else:
                    raise ApiError(400, "invalid", f"{where}: unknown field {key!r}")
            for key, spec in (props or {}).items():
                required = spec.get("annotations", {}).get("required", [])
                if method_id in required and key not in value:
                    raise ApiError(400, "required", f"{where}.{key} is required by {method_id}")
        elif kind == "array":
            if not isinstance(value, list):
                raise ApiError(400, "invalid", f"{where}: expected an array, got {type(value).__name__}")
            for i, item in enumerate(value):
                self._check(item, schema["items"], f"{where}[{i}]", method_id)
        else:
            self._check_scalar(value, schema, where)

    @staticmethod
    def _check_scalar(value, schema, where, from_query=False):
        kind, fmt = schema.get("type"), schema.get("format")
        if from_query and kind != "string":
            # Query strings carry every type as text; check that the text parses as it.
            if kind == "boolean" and value in ("true", "false"):
                return
            if kind == "integer" and re.fullmatch(r"-?\d+", value):
                return
            if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
                return
            raise ApiError(400, "invalid", f"{where}: {value!r} is not a {kind}")
        if kind == "string":
            # proto3 JSON: 64-bit integers travel as strings, and may arrive as numbers.
            if fmt in ("int64", "uint64") and isinstance(value, int) and not isinstance(value, bool):
                return
            if not isinstance(value, str):
                raise ApiError(400, "invalid", f"{where}: expected a string, got {json.dumps(value)}")
            if fmt in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
                raise ApiError(400, "invalid", f"{where}: {value!r} is not an integer")
            if "enum" in schema and value not in schema["enum"]:
                raise ApiError(400, "invalid", f"{where}: {value!r} is not one of {schema['enum']}")
        elif kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and re.fullmatch(r"-?\d+", value)
            )
            if not ok:
                raise ApiError(400, "invalid", f"{where}: expected an integer, got {json.dumps(value)}")
        elif kind == "number":
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)
            )
            if not ok:
                raise ApiError(400, "invalid", f"{where}: expected a number, got {json.dumps(value)}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise ApiError(400, "invalid", f"{where}: expected a boolean, got {json.dumps(value)}")
        elif kind == "any" or kind is None:
            return
        else:
            raise ApiError(500, "backendError", f"{where}: schema type {kind} unknown to the stand-in")

    def normalize(self, value, schema):
        """The value as the API would store and return it (proto3 JSON): "120" for an int32
        field comes back as 120, an int64 as "120", a number as a float."""
        schema = self._resolve(schema)
        kind, fmt = schema.get("type"), schema.get("format")
        if kind == "object" and isinstance(value, dict):
            props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
            return {k: self.normalize(v, props.get(k) or extra or {}) for k, v in value.items()}
        if kind == "array" and isinstance(value, list):
            return [self.normalize(v, schema.get("items", {})) for v in value]
        if kind == "integer":
            return int(value)
        if kind == "number":
            # Google's JSON writes a whole double without a fraction (1.0 as 1).
            f = float(value)
            return int(f) if f.is_integer() else f
        if kind == "string" and fmt in ("int64", "uint64"):
            return str(value)
        return value

    def normalize_body(self, method, body):
        ref = (method.get("request") or {}).get("$ref")
        return self.normalize(body, {"$ref": ref}) if ref and isinstance(body, dict) else body

    def kind_of(self, method):
        """compute#xxx of the resource a method's request or response describes."""
        for key in ("request", "response"):
            ref = (method.get(key) or {}).get("$ref")
            if ref:
                kind = self.schemas[ref].get("properties", {}).get("kind", {}).get("default")
                if kind and kind != "compute#operation":
                    return kind
        return None


# ------------------------------------------------------------------------------------------
# The state of one fake project
# ------------------------------------------------------------------------------------------


def rel(link):
    """'projects/P/...' for any form of a Compute URL or relative path."""
    for base in ALT_BASES:
        if link.startswith(base):
            return link[len(base) :]
    return link


def merge_patch(target, patch):
    """RFC 7396 JSON merge patch, which Compute's PATCH methods use."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


class Project:
    def __init__(self, discovery, zones_per_region=3):
        self.d = discovery
        self.lock = threading.RLock()
        self.resources = {}  # 'projects/P/global/healthChecks/x' -> resource
        self.instances_of = {}  # MIG rel path -> [ {name, template} ]
        self.operations = {}  # op rel path -> operation
        self.secrets = {}  # 'projects/P/secrets/S' -> {version: bytes}
        self.violations = []
        self.calls = []
        self.ids = itertools.count(1000000000000000001)
        self.ops = itertools.count(1)
        self.zones_per_region = zones_per_region
        self.addresses = itertools.count(10)
        self.fleet = None  # fleet.Fleet with --vms: instances and images are real
        self.front_end = None  # frontend.FrontEnd with --vms and --lb-netns
        self.project_attributes = {}  # the project's metadata (commonInstanceMetadata)
        self.refused = []  # every 4xx answered, but a GET's 404 (how modules ask "exists?")
        self.faults = []  # injected: [{host, status, count, delay_s}]
        self.faults_served = []

    # -- helpers ---------------------------------------------------------------------------
    def now(self):
        return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")

    def zones(self, region):
        return [f"{region}-{z}" for z in "bcd"[: self.zones_per_region]]

    def must(self, path):
        res = self.resources.get(path)
        if res is None:
            raise ApiError(404, "notFound", f"The resource '{path}' was not found")
        return res

    def operation(self, scope, target, op_type, method_id=None):
        n = next(self.ops)
        name = f"operation-{n:08d}-standin"
        path = f"{scope}/operations/{name}"
        op = {
            "kind": "compute#operation",
            "id": str(next(self.ids)),
            "name": name,
            "operationType": op_type,
            "targetLink": SELF_BASE + target,
            "targetId": str(self.resources.get(target, {}).get("id", "0")),
            "status": "RUNNING",
            "progress": 0,
            "insertTime": self.now(),
            "startTime": self.now(),
            "selfLink": SELF_BASE + path,
        }
        m = re.match(r"projects/[^/]+/(regions|zones)/([^/]+)", scope)
        if m:
            op["region" if m.group(1) == "regions" else "zone"] = SELF_BASE + scope
        self.operations[path] = op
        return copy.deepcopy(op)

    def check_refs(self, project, body, own_path):
        """A reference to a resource of this project that does not exist is refused."""
        for s in strings_in(body):
            r = rel(s)
            if not r.startswith(f"projects/{project}/") or r == own_path:
                continue
            # Only Compute's own paths: "projects/P/secrets/S" in metadata is Secret Manager's.
            if not re.match(rf"projects/{re.escape(project)}/(global|regions|zones)/", r):
                continue
            if re.search(r"/(zones|regions)/[^/]+$", r) or "/images/family/" in r:
                continue
            if "/machineTypes/" in r or "/diskTypes/" in r:
                continue
            if r not in self.resources:
                raise ApiError(404, "notFound", f"The resource '{r}' was not found")

    def users_of(self, path):
        for other, res in self.resources.items():
            if other == path:
                continue
            # status is output (a MIG's status.autoscaler names its autoscaler): not a use.
            for s in strings_in({k: v for k, v in res.items() if k != "status"}):
                if rel(s) == path:
                    yield other

    # -- Compute ---------------------------------------------------------------------------
    def compute(self, verb, path, query, body, method, params):
        mid = method["id"]
        _, collection, action = mid.split(".", 2)
        project = params.get("project")
        scope = f"projects/{project}/global"
        if "region" in params:
            scope = f"projects/{project}/regions/{params['region']}"
        if "zone" in params:
            scope = f"projects/{project}/zones/{params['zone']}"
        if collection.endswith("Operations") and action == "get":
            op = self.operations.get(path)
            if op is None:
                raise ApiError(404, "notFound", f"The resource '{path}' was not found")
            answer = copy.deepcopy(op)
            op.update(status="DONE", progress=100, endTime=self.now())
            return 200, answer
        handler = getattr(self, f"_{collection}_{action}", None)
        if handler is not None:
            return handler(path, query, body, params, scope, method)
        if action == "insert":
            return self.insert(path, body, scope, method)
        if action in ("get", "delete", "patch", "update"):
            target = path
            if mid in ("compute.regionAutoscalers.patch", "compute.regionAutoscalers.update"):
                target = f"{path}/{query.get('autoscaler', [body.get('name', '')])[0]}"
            return getattr(self, action)(target, body, scope, method, params)
        if action == "list":
            if any(f.strip() for f in query.get("filter", [])):
                raise ApiError(400, "invalid", "the stand-in does not implement list filters")
            prefix = path + "/"
            items = [copy.deepcopy(r) for p, r in sorted(self.resources.items())
                     if p.startswith(prefix) and "/" not in p[len(prefix):]]
            return 200, {"kind": self.d.kind_of(method) or "compute#list", "items": items,
                         "selfLink": SELF_BASE + path}
        raise ApiError(501, "notImplemented", f"the stand-in does not implement {mid}")

    def insert(self, collection_path, body, scope, method):
        name = body.get("name")
        if not name:
            raise ApiError(400, "required", "Required field 'resource.name' not specified")
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.name': '{name}'")
        path = f"{collection_path}/{name}"
        if path in self.resources:
            raise ApiError(409, "alreadyExists", f"The resource '{path}' already exists")
        project = collection_path.split("/")[1]
        self.check_refs(project, body, path)
        res = copy.deepcopy(body)
        res.update(
            id=str(next(self.ids)),
            creationTimestamp=self.now(),
            selfLink=SELF_BASE + path,
        )
        kind = self.d.kind_of(method)
        if kind:
            res["kind"] = kind
        ref = method["request"]["$ref"]
        props = self.d.schemas[ref].get("properties", {})
        if "fingerprint" in props:
            res["fingerprint"] = base64.b64encode(next(self.ids).to_bytes(8, "big")).decode()
        if "/regions/" in scope and "region" in props:
            res["region"] = SELF_BASE + scope
        if "/zones/" in scope and "zone" in props:
            res["zone"] = SELF_BASE + scope
        self.resources[path] = res
        hook = getattr(self, f"_after_insert_{ref}", None)
        if hook:
            hook(path, res, scope)
        return 200, self.operation(scope, path, "insert", method["id"])

    def get(self, path, body, scope, method, params):
        res = self.must(path)
        hook = getattr(self, f"_before_get_{res.get('kind', '').split('#')[-1]}", None)
        if hook:
            hook(path, res)
        return 200, copy.deepcopy(res)

    def delete(self, path, body, scope, method, params):
        self.must(path)
        users = sorted(u for u in self.users_of(path) if not self._owned_by(u, path))
        if users:
            raise ApiError(
                400,
                "resourceInUseByAnotherResource",
                f"The {path.split('/')[-2]} resource '{path}' is already being used by '{users[0]}'",
            )
        hook = getattr(self, f"_before_delete_{path.split('/')[-2]}", None)
        if hook:
            hook(path)
        op = self.operation(scope, path, "delete", method["id"])
        del self.resources[path]
        return 200, op

    def _owned_by(self, user, path):
        # A MIG's own instance group and instances point back at it: that is not "in use".
        return self.resources[user].get("_owner") == path

    def patch(self, path, body, scope, method, params, replace=False):
        res = self.must(path)
        if "fingerprint" in res and body.get("fingerprint") not in (None, res["fingerprint"]):
            raise ApiError(412, "conditionNotMet", "Supplied fingerprint does not match current")
        project = path.split("/")[1]
        self.check_refs(project, body, path)
        kept = ("id", "creationTimestamp", "selfLink", "kind", "region", "zone", "name",
                "instanceGroup", "status", "_owner")
        keep = {k: res[k] for k in kept if k in res}
        if replace:
            # PUT replaces what the caller may set; output-only fields (a backend service's
            # securityPolicy, attached by its own method) stay as they were.
            new = copy.deepcopy(body)
            props = self.d.schemas[method["request"]["$ref"]].get("properties", {})
            for k, spec in props.items():
                if k in res and k not in new and spec.get("description", "").startswith("[Output Only]"):
                    new[k] = res[k]
        else:
            new = copy.deepcopy(res)
            merge_patch(new, body)
        new.update(keep)
        if "fingerprint" in res:
            new["fingerprint"] = base64.b64encode(next(self.ids).to_bytes(8, "big")).decode()
        self.resources[path] = new
        hook = getattr(self, f"_after_patch_{path.split('/')[-2]}", None)
        if hook:
            hook(path, new)
        return 200, self.operation(scope, path, "patch" if not replace else "update", method["id"])

    def update(self, path, body, scope, method, params):
        return self.patch(path, body, scope, method, params, replace=True)

    # -- regional managed instance groups --------------------------------------------------
    def _after_insert_InstanceGroupManager(self, path, res, scope):
        region = scope.split("/")[-1]
        project = path.split("/")[1]
        group = f"{scope}/instanceGroups/{res['name']}"
        self.resources[group] = {
            "kind": "compute#instanceGroup", "name": res["name"], "id": str(next(self.ids)),
            "selfLink": SELF_BASE + group, "region": SELF_BASE + scope,
            "namedPorts": res.get("namedPorts", []), "_owner": path,
        }
        res["instanceGroup"] = SELF_BASE + group
        res.setdefault("distributionPolicy", {"zones": [{"zone": SELF_BASE + f"projects/{project}/zones/{z}"}
                                                        for z in self.zones(region)]})
        res.setdefault("targetSize", 0)
        self.instances_of[path] = []
        self._converge(path, res, steps=None)

    def _after_patch_instanceGroupManagers(self, path, res):
        group = rel(res["instanceGroup"])
        if group in self.resources and "namedPorts" in res:
            self.resources[group]["namedPorts"] = res["namedPorts"]
        proactive = res.get("updatePolicy", {}).get("type", "OPPORTUNISTIC") == "PROACTIVE"
        # A proactive update replaces instances over the next polls; opportunistic never does.
        self._converge(path, res, steps=0 if proactive else None, replace=proactive)

    def _before_delete_instanceGroupManagers(self, path):
        self.instances_of[path] = []
        self._realize(path)
        for key in [k for k, r in self.resources.items() if r.get("_owner") == path]:
            del self.resources[key]
        self.instances_of.pop(path, None)

    def _realize(self, mig_path):
        """With --vms: the group's planned instances as real VMs (created from their template,
        zones in turn), and no VM the plan dropped."""
        if self.fleet is None:
            return
        want = {i["name"]: i["template"] for i in self.instances_of.get(mig_path, [])}
        have = {p.rsplit("/", 1)[-1]: p for p, r in self.resources.items()
                if r.get("kind") == "compute#instance" and r.get("_owner") == mig_path}
        for name, ipath in have.items():
            if name not in want:
                self._before_delete_instances(ipath)
                del self.resources[ipath]
        mig = self.resources.get(mig_path, {})
        zones = [rel(z["zone"]).rsplit("/", 1)[-1] for z in mig.get("distributionPolicy", {}).get("zones", [])]
        for name, template in want.items():
            if name not in have:
                self._create_managed(mig_path, name, template, zones[int(name[-4:]) % len(zones)])
        self._sync_front_end()

    def resize_for_autoscaler(self, mig_path):
        """The autoscaler (fleet.Fleet) set the group's targetSize: VMs are added or removed,
        the versions kept."""
        with self.lock:
            self._converge(mig_path, self.resources[mig_path], replace=False)

    def recreate_managed(self, ipath):
        """Autohealing's recreate (fleet.Fleet's healer): the group's instance at ipath is
        deleted and created again, same name, from the template its version names."""
        with self.lock:
            res = self.resources.get(ipath)
            if res is None or not res.get("_owner"):
                return
            mig_path = res["_owner"]
            inst = next((i for i in self.instances_of.get(mig_path, []) if i["name"] == res["name"]), None)
            if inst is None:
                return
            zone = res["zone"].rsplit("/", 1)[-1]
            self._before_delete_instances(ipath)
            del self.resources[ipath]
            self._create_managed(mig_path, inst["name"], inst["template"], zone)
            self._sync_front_end()

    def _sync_front_end(self):
        if self.front_end is not None:
            try:
                self.front_end.sync()
            except (RuntimeError, OSError) as e:
                raise ApiError(500, "backendError", str(e)) from None

    def _create_managed(self, mig_path, name, template, zone):
        props = copy.deepcopy(self.must(template)["properties"])
        scope = f"projects/{mig_path.split('/')[1]}/zones/{zone}"
        path = f"{scope}/instances/{name}"
        res = {k: props[k] for k in ("disks", "networkInterfaces", "metadata", "serviceAccounts", "tags",
                                     "labels", "scheduling", "shieldedInstanceConfig") if k in props}
        res.update(kind="compute#instance", name=name, id=str(next(self.ids)), creationTimestamp=self.now(),
                   selfLink=SELF_BASE + path, zone=SELF_BASE + scope,
                   machineType=SELF_BASE + f"{scope}/machineTypes/{props['machineType'].rsplit('/', 1)[-1]}",
                   _owner=mig_path)
        self.resources[path] = res
        self._after_insert_Instance(path, res, scope)
        self.fleet.watch(path, mig_path)

    def _desired_versions(self, res):
        versions = res.get("versions") or [{"instanceTemplate": res.get("instanceTemplate")}]
        size = int(res.get("targetSize", 0))
        out, rest = [], size
        for v in versions[1:]:
            ts = v.get("targetSize", {})
            n = int(ts["fixed"]) if "fixed" in ts else (size * int(ts.get("percent", 0)) + 99) // 100
            out.append((rel(v["instanceTemplate"]), min(n, rest)))
            rest -= out[-1][1]
        out.insert(0, (rel(versions[0]["instanceTemplate"]), rest))
        return out

    def _converge(self, path, res, steps=None, replace=True):
        """Moves the group towards its desired versions; steps=None: all the way. With --vms
        the instances are real VMs."""
        self._converge_plan(path, res, steps, replace)
        self._realize(path)

    def _converge_plan(self, path, res, steps=None, replace=True):
        current = self.instances_of.setdefault(path, [])
        want = self._desired_versions(res)
        wanted_count = {t: n for t, n in want}
        # Size first: add or drop instances.
        while len(current) < sum(wanted_count.values()):
            have = {t: sum(1 for i in current if i["template"] == t) for t in wanted_count}
            t = next(t for t, n in want if have[t] < n)
            current.append({"name": f"{res['name']}-{next(self.ids) % 10000:04d}", "template": t})
        while len(current) > sum(wanted_count.values()):
            current.pop()
        if not replace:
            return
        moved = 0
        for inst in current:
            have = {}
            for i in current:
                have[i["template"]] = have.get(i["template"], 0) + 1
            if have[inst["template"]] > wanted_count.get(inst["template"], 0):
                if steps is not None and moved >= steps:
                    break
                inst["template"] = next(t for t, n in want if have.get(t, 0) < n)
                inst["name"] = f"{res['name']}-{next(self.ids) % 10000:04d}"
                moved += 1

    def _mig_status(self, path, res):
        want = dict(self._desired_versions(res))
        have = {}
        for inst in self.instances_of.get(path, []):
            have[inst["template"]] = have.get(inst["template"], 0) + 1
        reached = all(have.get(t, 0) == n for t, n in want.items())
        # With --vms, a VM the autohealing check has not yet seen healthy is VERIFYING.
        verifying = 0
        if self.fleet is not None and res.get("autoHealingPolicies"):
            verifying = sum(1 for i in self.instances_of.get(path, [])
                            if not self.fleet.ever_healthy(self._instance_path(path, i["name"])))
        autoscaler = next((SELF_BASE + p for p, r in self.resources.items()
                           if r.get("kind") == "compute#autoscaler" and rel(r.get("target", "")) == path), None)
        res["status"] = {
            "isStable": verifying == 0 and (reached or res.get("updatePolicy", {}).get("type") != "PROACTIVE"),
            "versionTarget": {"isReached": reached},
            "stateful": {"hasStatefulConfig": False},
        }
        if autoscaler:
            res["status"]["autoscaler"] = autoscaler
        actions = ("creating", "deleting", "recreating", "refreshing", "restarting", "abandoning",
                   "verifying", "creatingWithoutRetries", "resuming", "starting", "stopping", "suspending")
        res["currentActions"] = dict({a: 0 for a in actions}, verifying=verifying,
                                     none=len(self.instances_of.get(path, [])) - verifying)

    def _instance_path(self, mig_path, name):
        return next((p for p, r in self.resources.items()
                     if r.get("_owner") == mig_path and r.get("name") == name), "")

    def _before_get_instanceGroupManager(self, path, res):
        # Each poll of a group mid-rollout replaces one instance (surge then delete, in reality).
        if res.get("updatePolicy", {}).get("type") == "PROACTIVE":
            self._converge(path, res, steps=1)
        self._mig_status(path, res)

    def _autoscaled(self, path):
        for r in self.resources.values():
            if r.get("kind") == "compute#autoscaler" and rel(r.get("target", "")) == path:
                if r.get("autoscalingPolicy", {}).get("mode", "ON") != "OFF":
                    return r
        return None

    def _regionInstanceGroupManagers_resize(self, path, query, body, params, scope, method):
        mig = path.rsplit("/", 1)[0]
        res = self.must(mig)
        if self._autoscaled(mig):
            raise ApiError(400, "invalid", "Resize is not allowed for a managed instance group with "
                           "an active autoscaler; change the autoscaler's min/max or set its mode to OFF")
        res["targetSize"] = int(query["size"][0])
        self._converge(mig, res)
        return 200, self.operation(scope, mig, "compute.regionInstanceGroupManagers.resize", method["id"])

    def _regionInstanceGroupManagers_listManagedInstances(self, path, query, body, params, scope, method):
        mig = path.rsplit("/", 1)[0]
        self.must(mig)
        project, region = params["project"], params["region"]
        zones = self.zones(region)
        items = [{"instance": SELF_BASE + f"projects/{project}/zones/{zones[n % len(zones)]}/instances/{i['name']}",
                  "instanceStatus": "RUNNING", "currentAction": "NONE",
                  "version": {"instanceTemplate": SELF_BASE + i["template"]}}
                 for n, i in enumerate(self.instances_of.get(mig, []))]
        if self.fleet is not None:
            for item, i in zip(items, self.instances_of.get(mig, [])):
                ipath = self._instance_path(mig, i["name"])
                item["instance"] = SELF_BASE + ipath
                item["currentAction"] = "NONE" if self.fleet.ever_healthy(ipath) else "VERIFYING"
                hc = (self.resources[mig].get("autoHealingPolicies") or [{}])[0].get("healthCheck")
                if hc:
                    item["instanceHealth"] = [{"healthCheck": hc,
                                               "detailedHealthState": self.fleet.health_state(ipath)}]
        return 200, {"managedInstances": items}

    # -- autoscalers: they drive the group's size -----------------------------------------
    def _after_insert_Autoscaler(self, path, res, scope):
        self._apply_autoscaler(res)

    def _after_patch_autoscalers(self, path, res):
        self._apply_autoscaler(res)

    def _apply_autoscaler(self, res):
        mig = rel(res.get("target", ""))
        if mig not in self.resources:
            raise ApiError(404, "notFound", f"The resource '{mig}' was not found")
        pol = res.get("autoscalingPolicy", {})
        lo, hi = int(pol.get("minNumReplicas", 1)), int(pol.get("maxNumReplicas", 0))
        if hi < lo:
            raise ApiError(400, "invalid", "maxNumReplicas must not be lower than minNumReplicas")
        res["status"] = "ACTIVE"
        group = self.resources[mig]
        if pol.get("mode", "ON") != "OFF":
            group["targetSize"] = max(lo, min(hi, int(group.get("targetSize", 0)) or lo))
            self._converge(mig, group, replace=False)

    # -- Cloud Armor ------------------------------------------------------------------------
    def _after_insert_SecurityPolicy(self, path, res, scope):
        rules = res.setdefault("rules", [])
        if not any(r.get("priority") == 2147483647 for r in rules):
            # The API adds the default rule when none is given.
            rules.append({"priority": 2147483647, "action": "allow", "preview": False,
                          "description": "default rule",
                          "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}})
        for r in rules:
            r["kind"] = "compute#securityPolicyRule"

    def _securityPolicies_addRule(self, path, query, body, params, scope, method):
        policy = path.rsplit("/", 1)[0]
        res = self.must(policy)
        if any(r.get("priority") == body.get("priority") for r in res["rules"]):
            raise ApiError(400, "invalid", f"A rule with priority {body.get('priority')} already exists")
        rule = dict(body, kind="compute#securityPolicyRule")
        res["rules"].append(rule)
        res["fingerprint"] = base64.b64encode(next(self.ids).to_bytes(8, "big")).decode()
        return 200, self.operation(scope, policy, "addSecurityPolicyRule", method["id"])

    def _find_rule(self, res, query):
        priority = int(query.get("priority", ["0"])[0])
        for r in res["rules"]:
            if int(r["priority"]) == priority:
                return r
        raise ApiError(400, "invalid", f"No rule with priority {priority}")

    def _securityPolicies_patchRule(self, path, query, body, params, scope, method):
        policy = path.rsplit("/", 1)[0]
        res = self.must(policy)
        rule = self._find_rule(res, query)
        rule.clear()
        rule.update(body, kind="compute#securityPolicyRule")
        res["fingerprint"] = base64.b64encode(next(self.ids).to_bytes(8, "big")).decode()
        return 200, self.operation(scope, policy, "patchSecurityPolicyRule", method["id"])

    def _securityPolicies_removeRule(self, path, query, body, params, scope, method):
        policy = path.rsplit("/", 1)[0]
        res = self.must(policy)
        rule = self._find_rule(res, query)
        if int(rule["priority"]) == 2147483647:
            raise ApiError(400, "invalid", "The default rule cannot be removed")
        res["rules"].remove(rule)
        return 200, self.operation(scope, policy, "removeSecurityPolicyRule", method["id"])

    def _securityPolicies_getRule(self, path, query, body, params, scope, method):
        return 200, copy.deepcopy(self._find_rule(self.must(path.rsplit("/", 1)[0]), query))

    def _backendServices_setSecurityPolicy(self, path, query, body, params, scope, method):
        service = path.rsplit("/", 1)[0]
        res = self.must(service)
        link = body.get("securityPolicy")
        if link:
            self.check_refs(params["project"], body, service)
            res["securityPolicy"] = SELF_BASE + rel(link)
        else:
            res.pop("securityPolicy", None)
        return 200, self.operation(scope, service, "setSecurityPolicy", method["id"])

    # -- certificates, addresses, images, instances ---------------------------------------
    def _after_insert_SslCertificate(self, path, res, scope):
        if res.get("type") == "MANAGED":
            res["managed"]["status"] = "PROVISIONING"
            res["managed"]["domainStatus"] = {d: "PROVISIONING" for d in res["managed"].get("domains", [])}
            res["subjectAlternativeNames"] = list(res["managed"].get("domains", []))
        else:
            res["type"] = "SELF_MANAGED"
            # Never returned by the API; the front end (--vms) serves with it.
            res["_privateKey"] = res.pop("privateKey", "")

    def _after_insert_Address(self, path, res, scope):
        # 203.0.113.0/24 is TEST-NET-3: data in a record, never an address anything is sent to.
        # With --vms the front end serves it: a private address the suite's client reaches.
        default = self.fleet.new_lb_address() if self.fleet is not None else f"203.0.113.{next(self.addresses)}"
        res.setdefault("address", default)
        res["status"] = "RESERVED"

    def _after_insert_Instance(self, path, res, scope):
        if self.fleet is not None:
            # A real VM: booted from its image, addresses from the VPC's and the NAT's ranges.
            try:
                self.fleet.create(path, res)
            except ValueError as e:
                del self.resources[path]
                raise ApiError(400, "invalid", str(e)) from None
            except (RuntimeError, OSError) as e:
                del self.resources[path]
                raise ApiError(500, "backendError", f"could not boot {path}: {e}") from None
        res["status"] = "RUNNING"
        for n, nic in enumerate(res.get("networkInterfaces", [])):
            nic.setdefault("networkIP", f"10.128.0.{next(self.addresses)}")
            nic["name"] = f"nic{n}"
        for disk in res.get("disks", []):
            params = disk.pop("initializeParams", {}) or {}
            name = params.get("diskName") or res["name"]
            dpath = f"{scope}/disks/{name}"
            self.resources[dpath] = {"kind": "compute#disk", "name": name, "id": str(next(self.ids)),
                                     "selfLink": SELF_BASE + dpath, "zone": SELF_BASE + scope,
                                     "sourceImage": params.get("sourceImage", ""),
                                     "users": [SELF_BASE + path], "_owner": path}
            disk["source"] = SELF_BASE + dpath

    def _before_delete_instances(self, path):
        if self.fleet is not None:
            self._fleet_do(self.fleet.delete, path)
        # Boot disks are auto-deleted with their instance.
        for key in [k for k, r in self.resources.items() if r.get("_owner") == path]:
            del self.resources[key]

    def _instances_stop(self, path, query, body, params, scope, method):
        inst = path.rsplit("/", 1)[0]
        res = self.must(inst)
        if self.fleet is not None and res.get("status") == "RUNNING":
            self._fleet_do(self.fleet.stop, inst)
        res["status"] = "TERMINATED"
        return 200, self.operation(scope, inst, "stop", method["id"])

    def _instances_start(self, path, query, body, params, scope, method):
        inst = path.rsplit("/", 1)[0]
        res = self.must(inst)
        if self.fleet is not None and res.get("status") == "TERMINATED":
            self._fleet_do(self.fleet.start, inst)
        res["status"] = "RUNNING"
        return 200, self.operation(scope, inst, "start", method["id"])

    def _fleet_do(self, action, *args):
        try:
            action(*args)
        except (RuntimeError, OSError) as e:
            raise ApiError(500, "backendError", str(e)) from None

    def _images_insert(self, path, query, body, params, scope, method):
        disk = rel(body.get("sourceDisk", ""))
        if disk:
            d = self.must(disk)
            owner = self.resources.get(d.get("_owner", ""), {})
            if owner.get("status") == "RUNNING" and query.get("forceCreate") != ["true"]:
                raise ApiError(400, "resourceInUseByAnotherResource",
                               f"The disk resource '{disk}' is already being used by '{d['_owner']}'")
        status, op = self.insert(path, dict(body), scope, method)
        image = f"{path}/{body['name']}"
        if self.fleet is not None and disk:
            # The image is the stopped builder's disk, copied: later VMs boot from it.
            try:
                self.fleet.snapshot(self.resources[disk]["_owner"], body["name"])
            except (RuntimeError, OSError) as e:
                del self.resources[image]
                raise ApiError(500, "backendError", f"could not copy {disk}: {e}") from None
        self.resources[image]["status"] = "READY"
        # The image no longer needs its disk: the copy is independent.
        self.resources[image]["sourceDisk"] = SELF_BASE + disk if disk else ""
        return status, op

    def _images_getFromFamily(self, path, query, body, params, scope, method):
        family = params["family"]
        images = [r for p, r in sorted(self.resources.items())
                  if r.get("kind") == "compute#image" and r.get("family") == family
                  and p.startswith(f"projects/{params['project']}/")]
        if not images:
            raise ApiError(404, "notFound", f"The resource 'projects/{params['project']}/global/images/"
                                            f"family/{family}' was not found")
        return 200, copy.deepcopy(images[-1])

    # -- state for the test ----------------------------------------------------------------
    def snapshot(self):
        def clean(r):
            return {k: v for k, v in r.items() if not k.startswith("_")}
        return {
            "resources": {p: clean(r) for p, r in self.resources.items()},
            "instances": self.instances_of,
            "violations": self.violations,
            "refused": self.refused,
            "faults_served": self.faults_served,
            "calls": self.calls,
            "fleet": self.fleet.state() if self.fleet is not None else {},
            "fleet_autoscaler": self.fleet.autoscaler_events if self.fleet is not None else [],
            "front_end": ({"pid": self.front_end.pid, "reloads": self.front_end.reloads,
                           "config": self.front_end.config} if self.front_end is not None else {}),
        }


def strip_private(value):
    if isinstance(value, dict):
        return {k: strip_private(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [strip_private(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------
# HTTP: the proxy, the TLS-terminated API hosts, the metadata server
# ------------------------------------------------------------------------------------------


class ApiHandler(http.server.BaseHTTPRequestHandler):
    """Serves one TLS-terminated connection to a Google API host."""

    protocol_version = "HTTP/1.1"
    host = ""

    def log_message(self, fmt, *args):  # request bodies may hold keys; log nothing by default
        if self.server.verbose:
            sys.stderr.write(f"standin {self.host}: {fmt % args}\n")

    def _send(self, status, body):
        data = json.dumps(strip_private(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return raw

    def _dispatch(self):
        project = self.server.project
        raw = self._read_body()
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if self.host == "oauth2.googleapis.com":
                return self._send(*self._token(url.path, raw))
            if self.host == "www.googleapis.com" and url.path == "/discovery/v1/apis/compute/v1/rest":
                # Google's public discovery service (apis.getRest): no credentials needed.
                project.calls.append(f"{self.command} discovery compute v1")
                return self._send(200, project.d.doc)
            auth = self.headers.get("Authorization", "")
            if auth.removeprefix("Bearer ") not in self.server.tokens:
                raise ApiError(401, "authError", "Request had invalid authentication credentials.")
            if self.host == "secretmanager.googleapis.com":
                self._inject_fault()
                self._check_scope(auth.removeprefix("Bearer "))
                return self._send(*self._secret(url.path))
            if not url.path.startswith("/compute/v1/"):
                raise ApiError(404, "notFound", f"no such API path {url.path}")
            path = url.path[len("/compute/v1/"):]
            with project.lock:
                project.calls.append(f"{self.command} {path}")
                try:
                    method, params = project.d.route(self.command, path)
                    project.d.check_query(method, query)
                    body = json.loads(raw) if raw else None
                    project.d.check_body(method, body)
                except (ApiError, ValueError) as e:
                    project.violations.append(f"{self.command} {url.path}?{url.query}: {e}")
                    raise e if isinstance(e, ApiError) else ApiError(400, "parseError", str(e))
                try:
                    body = project.d.normalize_body(method, body or {})
                    status, answer = project.compute(self.command, path, query, body, method, params)
                    if self.command != "GET":
                        project._sync_front_end()
                except ApiError as e:
                    if e.code >= 500:
                        project.violations.append(f"{self.command} {url.path}: {e}")
                    raise
            self._send(status, answer)
        except ApiError as e:
            if 400 <= e.code < 500 and not (self.command == "GET" and e.code == 404):
                with project.lock:
                    project.refused.append(f"{e.code} {self.host} {self.command} {url.path}: {e.message}")
            self._send(e.code, e.body())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _token(self, path, raw):
        if path != "/token":
            raise ApiError(404, "notFound", path)
        form = urllib.parse.parse_qs(raw.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        head, payload, sig = form["assertion"][0].split(".")
        pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
        try:
            self.server.public_key.verify(pad(sig), f"{head}.{payload}".encode(),
                                          padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # cryptography raises InvalidSignature; any failure is a refusal
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        claims = json.loads(pad(payload))
        if claims.get("aud") != "https://oauth2.googleapis.com/token":
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT audience."}
        token = f"ya29.standin-{next(self.server.project.ids)}"
        self.server.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _inject_fault(self):
        """Faults seeded for this host (/_standin/seed {"faults": [...]}): the next `count`
        calls wait `delay_s`, then are answered `status` (0: served after the delay)."""
        project = self.server.project
        with project.lock:
            fault = next((f for f in project.faults if f["host"] == self.host and f["count"] > 0), None)
            if fault:
                fault["count"] -= 1
                project.faults_served.append(f"{fault.get('status', 0)} {self.host} {self.path}")
        if fault:
            time.sleep(float(fault.get("delay_s", 0)))
            if fault.get("status"):
                reason = {403: "forbidden", 429: "rateLimitExceeded"}.get(fault["status"], "backendError")
                raise ApiError(int(fault["status"]), reason, "injected by the stand-in")

    def _check_scope(self, token):
        """A VM's token carries its service account's scopes: Secret Manager needs cloud-platform."""
        fleet = self.server.project.fleet
        owner = fleet.token_owner.get(token) if fleet is not None else None
        if owner and "https://www.googleapis.com/auth/cloud-platform" not in owner[1]:
            raise ApiError(403, "insufficientPermissions", "Request had insufficient authentication scopes.")

    def _secret(self, path):
        m = re.fullmatch(r"/v1/(projects/[^/]+/secrets/[^/]+)/versions/([^/:]+):access", path)
        if self.command != "GET" or not m:
            self.server.project.violations.append(f"secretmanager: {self.command} {path}")
            raise ApiError(404, "notFound", f"no Secret Manager method {self.command} {path}")
        versions = self.server.project.secrets.get(m.group(1))
        if not versions:
            raise ApiError(404, "notFound", f"Secret [{m.group(1)}] not found or has no versions.")
        v = max(versions) if m.group(2) == "latest" else int(m.group(2))
        data = versions[v]
        return 200, {"name": f"{m.group(1)}/versions/{v}",
                     "payload": {"data": base64.b64encode(data).decode()}}


class PrivateAccessHandler(ApiHandler):
    """Google APIs as a VM without an external address reaches them (Private Google Access):
    TLS straight to the API hosts' certificate, the host from the Host header."""

    def _dispatch(self):
        self.host = (self.headers.get("Host") or "").split(":")[0]
        if self.host not in API_HOSTS:
            self.server.project.violations.append(f"private access to {self.host!r} refused")
            return self._send(404, ApiError(404, "notFound", f"no API host {self.host}").body())
        return super()._dispatch()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write(f"standin proxy: {fmt % args}\n")

    def do_CONNECT(self):
        host, _, port = self.path.partition(":")
        if host not in API_HOSTS or port != "443":
            self.server.project.violations.append(f"CONNECT to {self.path} refused")
            self.send_error(403, "the stand-in only serves Google API hosts")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        handler = type("Handler", (ApiHandler,), {"host": host})
        try:
            handler(tls, self.client_address, self.server)
        except (ssl.SSLError, ConnectionError):
            pass
        self.close_connection = True

    def do_GET(self):
        project = self.server.project
        # The metadata server is plain HTTP; a VM reaches it by address, so it has no proxy.
        if self.path.startswith("/computeMetadata/v1/"):
            return self._metadata()
        if self.path == "/_standin/state":
            with project.lock:
                data = json.dumps(project.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_error(404)

    def do_POST(self):
        project = self.server.project
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_standin/seed":
            seed = json.loads(raw)
            with project.lock:
                for name, value in seed.get("secrets", {}).items():
                    project.secrets.setdefault(name, {})[len(project.secrets.get(name, {})) + 1] = value.encode()
                self.server.metadata.update(seed.get("metadata", {}))
                project.project_attributes.update(seed.get("project_attributes", {}))
                project.faults.extend(seed.get("faults", []))
                for path, resource in seed.get("resources", {}).items():
                    project.resources[path] = dict(resource, id=str(next(project.ids)),
                                                   selfLink=SELF_BASE + path, creationTimestamp=project.now())
            self.send_response(204)
            self.end_headers()
            return
        self.send_error(404)

    def _metadata(self):
        if self.headers.get("Metadata-Flavor") != "Google":
            self.send_error(403, "Missing Metadata-Flavor:Google header")
            return
        url = urllib.parse.urlsplit(self.path)
        md = self.server.metadata
        path = url.path[len("/computeMetadata/v1/"):]
        if path == "instance/attributes/" and "recursive=true" in url.query:
            body, ctype = json.dumps(md.get("attributes", {})).encode(), "application/json"
        elif path.startswith("instance/attributes/"):
            value = md.get("attributes", {}).get(path[len("instance/attributes/"):])
            if value is None:
                self.send_error(404)
                return
            body, ctype = value.encode(), "application/text"
        elif path == "project/project-id":
            body, ctype = md.get("project", "").encode(), "application/text"
        elif path == "instance/service-accounts/default/token":
            token = f"ya29.standin-vm-{next(self.server.project.ids)}"
            self.server.tokens.add(token)
            body = json.dumps({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).encode()
            ctype = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--discovery", required=True, help="compute.v1.json")
    ap.add_argument("--cert", required=True, help="PEM certificate for the API hosts (test CA)")
    ap.add_argument("--key", required=True, help="its PEM private key")
    ap.add_argument("--sa-public-key", required=True, help="PEM public key of the service account")
    ap.add_argument("--port-file", required=True, help="where to write the port chosen")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--vms", metavar="VMCTL", help="make instances real VMs with this tests/gce/vmctl")
    ap.add_argument("--image-dir", help="with --vms: where images are (debian-12/lower is the base)")
    ap.add_argument("--vpc-subnet", default="10.219.0.0/24", help="with --vms: the VMs' internal addresses")
    ap.add_argument("--external-range", default="10.219.200.0/24",
                    help="with --vms: the one-to-one NAT addresses (a private range standing in for Google's)")
    ap.add_argument("--cpu-per-vcpu", type=float, default=0.5, help="with --vms: host cores per vCPU")
    ap.add_argument("--netns-prefix", default="", help="with --vms: the VMs' namespace names are this + name")
    ap.add_argument("--metadata-netns", help="with --vms: the namespace on the VPC with 169.254.169.254")
    ap.add_argument("--lb-netns", help="with --vms: the namespace HAProxy, the HTTPS LB's front end, runs in")
    ap.add_argument("--lb-source", help="with --lb-netns: the address (in the probe range) backends see")
    ap.add_argument("--lb-dir", help="with --lb-netns: where its configuration and PID file are")
    ap.add_argument("--autoscaler-stabilization-s", type=float, default=600,
                    help="with --vms: how long a smaller recommendation waits (Google's: 10 minutes)")
    ap.add_argument("--private-access", metavar="ADDRESS",
                    help="with --vms: Google APIs on ADDRESS:443 in the metadata namespace (Private Google Access)")
    args = ap.parse_args()

    server = Server(("127.0.0.1", 0), ProxyHandler)
    server.verbose = args.verbose
    server.project = Project(Discovery(args.discovery))
    server.tokens = set()
    server.metadata = {}
    if args.vms:
        import fleet  # tests/gcp/fleet.py, next to this file

        server.project.fleet = fleet.Fleet(server.project, server.tokens, args.vms, args.image_dir,
                                           args.vpc_subnet, args.external_range, args.cpu_per_vcpu,
                                           args.netns_prefix, args.metadata_netns)
        server.project.fleet.stabilization_s = args.autoscaler_stabilization_s
        # Autohealing's probes come from the probe range, in the LB's namespace when given.
        server.project.fleet.start_probing(args.lb_netns, args.lb_source)
        if args.lb_netns:
            import frontend  # tests/gcp/frontend.py

            server.project.front_end = frontend.FrontEnd(server.project, server.project.fleet, args.lb_netns,
                                                         args.lb_source, args.lb_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.tls = ctx
    with open(args.sa_public_key, "rb") as f:
        server.public_key = serialization.load_pem_public_key(f.read())
    if args.vms and args.private_access:
        import fleet

        pga = fleet.listen_in_netns(args.metadata_netns, args.private_access, 443, PrivateAccessHandler)
        # The handshake on the handler thread, not in accept(): one stuck client blocks no other.
        pga.socket = ctx.wrap_socket(pga.socket, server_side=True, do_handshake_on_connect=False)
        for attr in ("verbose", "project", "tokens", "metadata", "public_key", "tls"):
            setattr(pga, attr, getattr(server, attr))
        threading.Thread(target=pga.serve_forever, daemon=True).start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    # SIGTERM: the VMs go down with the stand-in (the suite's teardown stops it).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        if server.project.fleet is not None:
            with server.project.lock:
                if server.project.front_end is not None:
                    server.project.front_end.stop()
                server.project.fleet.shutdown()


if __name__ == "__main__":
    main()
