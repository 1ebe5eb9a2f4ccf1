#!/usr/bin/env python3
"""The suite's own view of the stand-in (tests/gce/run), as a user's script would call the API.

  api.py state [EXPR]          the stand-in's state (/_standin/state); with EXPR, the value
                               of that Python expression over `s`, printed
  api.py call METHOD PATH [JSON]   an authorized Compute call (token from the run's service-
                               account key, through the stand-in's proxy, verified with the
                               run's CA); PATH is relative to compute/v1/; prints the JSON
                               answer, exits 1 on a non-2xx answer
  api.py wait-op PATH          polls an operation (relative path) until DONE
Env: GCE_PROXY (http://127.0.0.1:PORT), GCE_KEYS (the folder tests/gcp/keys.py wrote).
"""

import json
import os
import sys
import time

import requests

COMPUTE = "https://compute.googleapis.com/compute/v1/"


def state():
    r = requests.get(f"{os.environ['GCE_PROXY']}/_standin/state", timeout=60, proxies={"http": None})
    r.raise_for_status()
    return r.json()


def session():
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    proxy, keys = os.environ["GCE_PROXY"], os.environ["GCE_KEYS"]
    s = requests.Session()
    s.trust_env = False
    s.proxies, s.verify = {"https": proxy}, f"{keys}/ca.pem"
    creds = service_account.Credentials.from_service_account_file(
        f"{keys}/sa.json", scopes=["https://www.googleapis.com/auth/compute"])
    creds.refresh(Request(s))
    a = AuthorizedSession(creds)
    a.trust_env, a.proxies, a.verify = False, s.proxies, s.verify
    return a


def main():
    cmd = sys.argv[1]
    if cmd == "state":
        s = state()
        print(json.dumps(s) if len(sys.argv) == 2 else eval(sys.argv[2], {"s": s, "json": json}))  # noqa: S307
        return
    a = session()
    if cmd == "call":
        method, path = sys.argv[2], sys.argv[3]
        body = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
        r = a.request(method, COMPUTE + path, json=body, timeout=300)
        print(r.text)
        sys.exit(0 if r.ok else 1)
    if cmd == "wait-op":
        for _ in range(600):
            r = a.get(COMPUTE + sys.argv[2], timeout=60)
            if not r.ok or r.json().get("status") == "DONE":
                print(r.text)
                sys.exit(0 if r.ok and "error" not in r.json() else 1)
            time.sleep(0.5)
        sys.exit(1)
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
