#!/usr/bin/python
# -*- coding: utf-8 -*-
# hashd's one project module for the Compute API calls that google.cloud 1.1.3 cannot make.
#
# Why it exists (docs/gcp.md): google.cloud 1.1.3 has no Cloud Armor, no Google-managed
# certificates, no MIG `versions`/`updatePolicy`, and its regional MIG and autoscaler modules
# update with PUT paths that Compute v1 does not have, so any change after creation breaks the
# next run. This module makes exactly those calls, reusing the collection's own HTTP and auth
# layer (GcpModule, GcpSession: the same credentials, scopes, proxy and CA handling), and is
# idempotent the way the collection's modules are: GET, compare the requested fields with the
# live resource, then POST or PATCH only what differs, waiting on the returned operation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: hashd_gcp_compute
short_description: Compute resources google.cloud 1.1.3 cannot manage (Cloud Armor, managed certificates, MIG rollouts)
description:
  - Creates, updates (PATCH) or deletes one Compute Engine resource, or attaches a Cloud Armor
    policy to a backend service, waiting on every operation it starts.
  - Idempotent, GET then compare then write; a second run with the same arguments changes nothing.
options:
  resource:
    description:
      - Which collection. C(securityPolicies) (Cloud Armor; rules are reconciled one by one with
        addRule, patchRule and removeRule, which is the only way the API changes them),
        C(sslCertificates) (a Google-managed certificate; immutable, a new domain list needs a
        new name), C(instanceTemplates) (immutable, a new version or setting is a new name;
        google.cloud 1.1.3's module cannot set a boot disk type on a template),
        C(regionInstanceGroupManagers) (with versions and updatePolicy; PATCH),
        C(regionAutoscalers) (PATCH ...autoscalers?autoscaler=NAME),
        C(backendServices) (only to attach I(security_policy) with setSecurityPolicy),
        C(instances) (only I(status), with I(zone): stop or start one VM with its own method;
        google.cloud 1.1.3's instance module sends setLabels, setMachineType,
        setDeletionProtection and updateShieldedInstanceConfig for fields it was not given).
    type: str
    required: true
    choices: [securityPolicies, sslCertificates, instanceTemplates, regionInstanceGroupManagers,
              regionAutoscalers, backendServices, instances]
  name:
    description: The resource's name.
    type: str
    required: true
  body:
    description:
      - The resource as the API spells it (camelCase). Only the fields given are compared and
        written; fields the API fills in are left alone.
    type: dict
    default: {}
  create_only:
    description:
      - Fields sent only when the resource is created, never compared afterwards, such as a
        MIG's initial targetSize (then the autoscaler or I(resize) owns it) and its zones.
    type: dict
    default: {}
  resize:
    description:
      - With I(resource=regionInstanceGroupManagers), the group's size (POST .../resize).
        The API refuses it while an autoscaler drives the group.
    type: int
  region:
    description: Region of a regional resource.
    type: str
  zone:
    description: Zone of a zonal resource (I(resource=instances)).
    type: str
  status:
    description:
      - With I(resource=instances), C(TERMINATED) (POST .../stop) or C(RUNNING) (POST .../start),
        waiting until the instance reports it.
    type: str
    choices: [RUNNING, TERMINATED]
  retries:
    description:
      - Times a call answered 429 or 5xx, or that could not connect, is retried, with
        exponential back-off (1 s doubling to 30 s, full jitter); Google documents these as
        retryable. Any other error fails at once.
    type: int
    default: 6
  state:
    description: C(present) or C(absent).
    type: str
    default: present
    choices: [present, absent]
  security_policy:
    description: With I(resource=backendServices), the self link of the policy to attach (empty detaches).
    type: str
  wait_stable:
    description:
      - With I(resource=regionInstanceGroupManagers), wait until the group is stable and every
        instance runs the requested versions (status.isStable and status.versionTarget.isReached).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for an operation or a stable group before failing.
    type: int
    default: 900
  poll_interval:
    description: Seconds between two polls.
    type: float
    default: 2.0
extends_documentation_fragment: google.cloud.gcp
author: hashd
"""

EXAMPLES = r"""
- name: Ensure the regional MIG runs the current template with a proactive rolling update
  hashd_gcp_compute:
    resource: regionInstanceGroupManagers
    region: europe-west1
    name: hashd
    body:
      baseInstanceName: hashd
      versions:
        - name: "1.2.0"
          instanceTemplate: "https://www.googleapis.com/compute/v1/projects/p/global/instanceTemplates/hashd-1-2-0"
      updatePolicy: {type: PROACTIVE, minimalAction: REPLACE, maxUnavailable: {fixed: 0}, maxSurge: {fixed: 3}}
    wait_stable: true
"""

RETURN = r"""
resource:
  description: The resource as the API returned it after the run (empty when absent).
  returned: always
  type: dict
retried:
  description: The calls retried and why (e.g. C(GET 503), C(POST connection error)).
  returned: always
  type: list
  elements: str
operations:
  description: The kinds of write calls made (e.g. C(insert), C(patch), C(addRule priority=1000)).
  returned: always
  type: list
  elements: str
"""

# Ansible's module layout: the documentation strings first, then the imports.
import random  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402
from ansible_collections.google.cloud.plugins.module_utils.gcp_utils import GcpModule, GcpSession  # noqa: E402

BASE = "https://compute.googleapis.com/compute/v1/"
# Self links come back on this host; references may use either.
LINK_PREFIXES = (BASE, "https://www.googleapis.com/compute/v1/")
DEFAULT_RULE_PRIORITY = 2147483647


def rel(value):
    if isinstance(value, str):
        for prefix in LINK_PREFIXES:
            if value.startswith(prefix):
                return value[len(prefix):]
    return value


def differs(want, have):
    """True when a requested value is not what the live resource holds.

    Only requested keys count (the API adds defaults and output fields); lists must match in
    length and order, as Compute keeps them; scalars compare as text ("1" equals 1, proto3
    JSON sends 64-bit numbers as strings) and links compare without their host.
    """
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return True
        return any(differs(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return True
        return any(differs(w, h) for w, h in zip(want, have))
    if have is None:
        return want not in (None, False, 0, "", [], {})
    if isinstance(want, bool) or isinstance(have, bool):
        return str(want).lower() != str(have).lower()
    if isinstance(want, (int, float)) or isinstance(have, (int, float)):
        try:
            return float(want) != float(have)
        except (TypeError, ValueError):
            return True
    return rel(want) != rel(have)


class Compute(object):
    """The calls of one run: every write waits on its operation; errors end the module."""

    def __init__(self, module):
        self.module = module
        self.session = GcpSession(module, "compute")
        # One authorized session for the run: one token, refreshed by google-auth as needed.
        self.http = self.session.session()
        self.operations = []
        self.retried = []
        p = module.params
        scope = "projects/%s/" % p["project"]
        if p["resource"] in ("regionInstanceGroupManagers", "regionAutoscalers"):
            if not p["region"]:
                module.fail_json(msg="region is required for %s" % p["resource"])
            scope += "regions/%s/" % p["region"]
        elif p["resource"] == "instances":
            if not p["zone"]:
                module.fail_json(msg="zone is required for instances")
            scope += "zones/%s/" % p["zone"]
        else:
            scope += "global/"
        collection = {
            "regionInstanceGroupManagers": "instanceGroupManagers",
            "regionAutoscalers": "autoscalers",
        }.get(p["resource"], p["resource"])
        self.collection = BASE + scope + collection
        self.link = self.collection + "/" + p["name"]

    RETRY_STATUS = (429, 500, 502, 503, 504)

    def send(self, verb, url, kwargs):
        """One call, retried on 429, 5xx and connection errors with capped exponential
        back-off and full jitter (Google's advice for its APIs). A retried write is safe:
        inserts name their resource (a repeat is a 409 the next GET resolves) and the other
        writes set a state."""
        delay = 1.0
        for attempt in range(self.module.params["retries"] + 1):
            last = attempt == self.module.params["retries"]
            try:
                # The collection's own session (credentials, scopes, proxy and CA), but not its
                # full_* wrappers: they end the module on the first connection error.
                response = self.http.request(verb.upper(), url, headers=self.session._set_headers(None), **kwargs)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                if last:
                    self.module.fail_json(msg="%s %s: %s (after %d retries)" % (verb.upper(), url, e, attempt))
                response = None
            if response is not None and (response.status_code not in self.RETRY_STATUS or last):
                return response
            why = response.status_code if response is not None else "connection error"
            self.retried.append("%s %s" % (verb.upper(), why))
            time.sleep(random.uniform(0, delay))
            delay = min(30.0, delay * 2)

    def call(self, verb, url, body=None, params=None, allow_404=False):
        kwargs = {"params": params} if params else {}
        if body is not None:
            kwargs["json"] = body
        response = self.send(verb, url, kwargs)
        if allow_404 and response.status_code == 404:
            return None
        try:
            result = response.json() if response.content else {}
        except ValueError:
            result = {}
        if response.status_code >= 400:
            # The API's own message (never a request body: it may hold a certificate key).
            self.module.fail_json(msg="%s %s: %s" % (verb.upper(), url, result.get("error", result)),
                                  status=response.status_code)
        return result

    def write(self, verb, url, what, body=None, params=None):
        self.operations.append(what)
        if self.module.check_mode:
            return {}
        op = self.call(verb, url, body, params)
        return self.wait(op)

    def wait(self, op):
        deadline = time.time() + self.module.params["wait_timeout"]
        while op.get("status") != "DONE":
            if time.time() > deadline:
                self.module.fail_json(msg="operation %s not done after %ss"
                                      % (op.get("name"), self.module.params["wait_timeout"]))
            time.sleep(self.module.params["poll_interval"])
            op = self.call("get", op["selfLink"])
        if op.get("error"):
            self.module.fail_json(msg="operation %s failed: %s" % (op.get("name"), op["error"]))
        return op

    def get(self):
        return self.call("get", self.link, allow_404=True)


def ensure_security_policy(cx, have, want):
    """Cloud Armor: PATCH can change everything except rules, which have their own calls."""
    rules = want.get("rules", [])
    fields = dict((k, v) for k, v in want.items() if k != "rules")
    if differs(fields, have):
        cx.write("patch", cx.link, "patch", dict(fields, fingerprint=have.get("fingerprint")))
    live = dict((int(r["priority"]), r) for r in have.get("rules", []))
    wanted = dict((int(r["priority"]), r) for r in rules)
    for priority in sorted(wanted):
        rule = wanted[priority]
        if priority not in live:
            cx.write("post", cx.link + "/addRule", "addRule priority=%d" % priority, rule)
        elif differs(rule, live[priority]):
            cx.write("post", cx.link + "/patchRule", "patchRule priority=%d" % priority, rule,
                     params={"priority": priority})
    for priority in sorted(live):
        if priority not in wanted and priority != DEFAULT_RULE_PRIORITY:
            cx.write("post", cx.link + "/removeRule", "removeRule priority=%d" % priority,
                     params={"priority": priority})


def wait_stable(cx):
    """A rollout is done when the group is stable and every instance runs its version."""
    module = cx.module
    deadline = time.time() + module.params["wait_timeout"]
    while True:
        group = cx.get() or {}
        status = group.get("status", {})
        if status.get("isStable") and status.get("versionTarget", {}).get("isReached"):
            return group
        if time.time() > deadline:
            module.fail_json(msg="group %s not stable on its versions after %ss"
                             % (module.params["name"], module.params["wait_timeout"]),
                             status=status, current_actions=group.get("currentActions"))
        time.sleep(module.params["poll_interval"])


def ensure_instance_status(cx, have, status):
    """Stop or start a VM with its own method, and wait until it reports the status."""
    module = cx.module
    if have is None:
        module.fail_json(msg="instance %s does not exist" % module.params["name"])
    if have.get("status") == status:
        return have
    cx.write("post", cx.link + ("/stop" if status == "TERMINATED" else "/start"),
             "stop" if status == "TERMINATED" else "start")
    deadline = time.time() + module.params["wait_timeout"]
    while not module.check_mode:
        have = cx.get() or {}
        if have.get("status") == status:
            break
        if time.time() > deadline:
            module.fail_json(msg="instance %s not %s after %ss"
                             % (module.params["name"], status, module.params["wait_timeout"]))
        time.sleep(module.params["poll_interval"])
    return have


def main():
    module = GcpModule(
        argument_spec=dict(
            resource=dict(required=True, type="str",
                          choices=["securityPolicies", "sslCertificates", "instanceTemplates",
                                   "regionInstanceGroupManagers", "regionAutoscalers", "backendServices",
                                   "instances"]),
            name=dict(required=True, type="str"),
            body=dict(type="dict", default={}),
            create_only=dict(type="dict", default={}),
            resize=dict(type="int"),
            region=dict(type="str"),
            zone=dict(type="str"),
            status=dict(type="str", choices=["RUNNING", "TERMINATED"]),
            retries=dict(type="int", default=6),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            security_policy=dict(type="str"),
            wait_stable=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=900),
            poll_interval=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    if not module.params["scopes"]:
        module.params["scopes"] = ["https://www.googleapis.com/auth/compute"]
    p = module.params
    cx = Compute(module)
    have = cx.get()
    want = dict(p["body"], name=p["name"])

    if p["resource"] == "instances":
        if p["state"] == "absent":
            if have is not None:
                cx.write("delete", cx.link, "delete")
        elif not p["status"]:
            module.fail_json(msg="resource=instances manages only status (or state=absent)")
        else:
            ensure_instance_status(cx, have, p["status"])
    elif p["resource"] == "backendServices":
        if have is None:
            module.fail_json(msg="backend service %s does not exist" % p["name"])
        if p["state"] == "present" and differs(p["security_policy"] or "", have.get("securityPolicy") or ""):
            cx.write("post", cx.link + "/setSecurityPolicy", "setSecurityPolicy",
                     {"securityPolicy": p["security_policy"] or None} if p["security_policy"] else {})
    elif p["state"] == "absent":
        if have is not None:
            cx.write("delete", cx.link, "delete")
    elif have is None:
        cx.write("post", cx.collection, "insert", dict(p["create_only"], **want))
    elif p["resource"] == "securityPolicies":
        ensure_security_policy(cx, have, want)
    elif differs(want, have):
        if p["resource"] in ("sslCertificates", "instanceTemplates"):
            module.fail_json(msg="%s %s exists with other settings; it is immutable, give the new one a new name"
                             % (p["resource"], p["name"]))
        elif p["resource"] == "regionAutoscalers":
            # Compute v1 updates a regional autoscaler on the collection, naming it in the query.
            cx.write("patch", cx.collection, "patch", want, params={"autoscaler": p["name"]})
        else:
            cx.write("patch", cx.link, "patch", dict(want, fingerprint=have.get("fingerprint")))

    if p["resize"] is not None and p["state"] == "present":
        current = (cx.get() or {}).get("targetSize")
        if current is None or int(current) != p["resize"]:
            cx.write("post", cx.link + "/resize", "resize size=%d" % p["resize"], params={"size": p["resize"]})

    result = {} if p["state"] == "absent" else (cx.get() or {})
    if p["wait_stable"] and p["state"] == "present" and not module.check_mode:
        result = wait_stable(cx)
    module.exit_json(changed=bool(cx.operations), operations=cx.operations, retried=cx.retried, resource=result)


if __name__ == "__main__":
    main()
