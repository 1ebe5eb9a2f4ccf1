"""nginx's half of "who may call" (issue 21, access control).

- Per-client limits are keyed by the API token when a request carries a well-formed
  `Authorization: Bearer hashd_<id>_<secret>`, else by the address: two clients behind one
  NAT (one address here, 127.0.0.1) each get their own hashing budget, while a per-address
  ceiling (hashd_nginx_hash_rate_per_address) bounds what made-up tokens from one address
  can get, since nginx cannot tell a valid token from an invented one (the app can: 401).
- The access log names the token's client id, never the token.
- With a client CA configured (hashd_nginx_client_ca), nginx asks for a client certificate
  (optional: token and open routes keep working without one) and passes the verdict and the
  subject to the app (HASHD_CLIENT_VERIFY, HASHD_CLIENT_DN); a certificate from another CA
  is refused by nginx with a JSON error.
"""

import base64
import os
import subprocess

import requests


def token(client):
    return f"hashd_{client}_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def hash_as(stack, bearer):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return stack.post("/v1/hash", json={"password": "pw", "cost": 4}, headers=headers).status_code


def test_clients_behind_one_address_have_their_own_hash_budget(make_stack):
    stack = make_stack(processes=1, app_env={"HASHD_COST_MIN": "4"},
                       nginx={"hash_rate": "1r/m", "hash_burst": 2,
                              "hash_rate_per_address": "1000r/s", "hash_burst_per_address": 1000})
    alice, bob = token("alice"), token("bob")
    assert [hash_as(stack, alice) for _ in range(4)] == [200, 200, 200, 429]
    # Bob shares Alice's address but not her budget; an anonymous client has the address's.
    assert [hash_as(stack, bob) for _ in range(4)] == [200, 200, 200, 429]
    assert [hash_as(stack, None) for _ in range(4)] == [200, 200, 200, 429]
    entries = [e for e in stack.access_log() if e["path"] == "/v1/hash"]
    assert {e.get("client_id") for e in entries} == {"alice", "bob", ""}
    log = (stack.log_dir / "nginx-access.log").read_text()
    # The secret part may itself hold "_" (base64url): split off the prefix, not at every "_".
    assert alice.split("_", 2)[2] not in log and bob.split("_", 2)[2] not in log


def test_made_up_tokens_from_one_address_meet_the_address_ceiling(make_stack):
    stack = make_stack(processes=1, app_env={"HASHD_COST_MIN": "4"},
                       nginx={"hash_rate": "1000r/s", "hash_burst": 1000,
                              "hash_rate_per_address": "1r/m", "hash_burst_per_address": 5})
    statuses = [hash_as(stack, token(f"made-up-{i}")) for i in range(10)]
    assert statuses == [200] * 6 + [429] * 4, statuses


def test_client_certificates_are_checked_against_the_configured_ca(make_stack, tmp_path):
    def ca(name):
        key, crt = tmp_path / f"{name}-ca.key", tmp_path / f"{name}-ca.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", f"/CN={name} CA", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        return key, crt

    def client(name, ca_key, ca_crt):
        key, csr, crt = (tmp_path / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", f"/O=Example/CN={name}", "-keyout", key, "-out", csr],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                        "-CAcreateserial", "-days", "2", "-out", crt], check=True, capture_output=True)
        return str(crt), str(key)

    good_key, good_crt = ca("good")
    other_key, other_crt = ca("other")
    stack = make_stack(processes=1, app_env={"HASHD_COST_MIN": "4"},
                       nginx={"client_ca": str(good_crt)})
    url = stack.url("/v1/hash")
    body = {"password": "pw", "cost": 4}

    def post(cert=None):
        # A session each: requests reuses a pooled connection whatever `cert` says.
        with requests.Session() as session:
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (requests #3829)
            session.verify = str(stack.cert)
            return session.post(url, json=body, cert=cert, timeout=30)

    # Optional: no certificate is fine (the route's policy is the app's), a good one too.
    assert post().status_code == 200
    assert post(client("billing", good_key, good_crt)).status_code == 200
    refused = post(client("mallory", other_key, other_crt))
    assert refused.status_code == 400 and refused.json()["error"] == "bad_client_certificate", refused.text
