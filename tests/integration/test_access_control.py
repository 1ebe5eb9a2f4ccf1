"""API access control through real nginx (DESIGN.md "Who may call", docs/security.md).

The app reads HASHD_AUTH and the clients file HASHD_TOKENS_FILE (as Ansible renders it:
`token <client-id> <sha256 hex> <route-groups>`) at start. A gated route without a valid
token answers 401 with `WWW-Authenticate: Bearer`, a known client on a group it may not use
403, a good token 200 with the client id (never the token) in the request's log line as
CLIENT_ID. Revoking is removing the line and restarting the process.
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess

import pytest
import requests

from harness.hashd_stack import fcgi_bin, wait_for


def new_token(client_id):
    secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    assert len(secret) == 43
    return f"hashd_{client_id}_{secret}"


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def app_entries(stack):
    """Every JSON line the app processes logged (HASHD_LOG=stderr in the test stack)."""
    entries = []
    for path in stack.log_dir.glob("hashd-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    pass
    return entries


def request_entry(stack, request_id):
    def find():
        return next((e for e in app_entries(stack)
                     if e.get("REQUEST_ID") == request_id and e.get("message") == "request"), None)
    return wait_for(find, 10, f"the app's log line of request {request_id}")


@pytest.fixture
def clients(tmp_path):
    tokens = {"alice": new_token("alice"), "alice-next": new_token("alice"),
              "bob": new_token("bob")}
    path = tmp_path / "tokens"

    def write(*names):
        lines = ["# test clients", ""]
        groups = {"alice": "hash,verify", "alice-next": "hash,verify", "bob": "messages"}
        for name in names:
            client_id = name.split("-")[0]
            lines.append(f"token {client_id} {digest(tokens[name])} {groups[name]}")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)

    write("alice", "alice-next", "bob")
    return tokens, path, write


def test_tokens_gate_the_routes_and_the_log_names_the_client(make_stack, clients):
    tokens, path, write = clients
    stack = make_stack(processes=1, app_env={
        "HASHD_AUTH": "hash=token,verify=token,messages=token,legacy=open,multivac=open",
        "HASHD_TOKENS_FILE": str(path),
        "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})

    # No token, a malformed one, a made-up one of the right shape: 401, before any hash.
    r = stack.post("/v1/hash", json={"password": "pw-no-token"})
    assert_error(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert_error(stack.post("/v1/hash", json={"password": "x"}, headers=bearer("nope")),
                 401, "unauthenticated")
    assert_error(stack.post("/v1/hash", json={"password": "x"},
                            headers=bearer(new_token("alice"))), 401, "unauthenticated")

    # A good token (either of alice's two, overlapping in rotation): 200.
    for name in ("alice", "alice-next"):
        r = stack.post("/v1/hash", json={"password": "pw-" + name}, headers=bearer(tokens[name]))
        assert r.status_code == 200, r.text
        assert r.json()["bcrypt"].startswith("$2b$04$")
        entry = request_entry(stack, r.headers["X-Request-Id"])
        assert entry["CLIENT_ID"] == "alice", entry
        assert entry["HTTP_STATUS"] == "200"

    # Bob is a known client, but only for messages: 403 on hashing, 200/201 on messages.
    assert_error(stack.post("/v1/hash", json={"password": "x"}, headers=bearer(tokens["bob"])),
                 403, "forbidden")
    r = stack.post("/messages", json={"message": "from bob"}, headers=bearer(tokens["bob"]))
    assert r.status_code in (200, 201), r.text
    assert request_entry(stack, r.headers["X-Request-Id"])["CLIENT_ID"] == "bob"
    assert_error(stack.post("/messages", json={"message": "x"}, headers=bearer(tokens["alice"])),
                 403, "forbidden")

    # Open groups and the probes stay open, with no CLIENT_ID.
    r = stack.get("/gethash/legacy-open/")
    assert r.status_code == 200, r.text
    assert "CLIENT_ID" not in request_entry(stack, r.headers["X-Request-Id"])
    assert stack.get("/healthz").status_code == 200
    assert stack.get("/multivac").status_code == 200

    # Revoking: alice's first token's line removed, the process restarted.
    write("alice-next", "bob")
    old = stack.signal(1, signal.SIGTERM)
    stack.wait_restarted(1, old)
    wait_for(lambda: stack.get("/readyz").status_code == 200, 30, "the restarted process to be ready")
    assert_error(stack.post("/v1/hash", json={"password": "x"}, headers=bearer(tokens["alice"])),
                 401, "unauthenticated")
    r = stack.post("/v1/hash", json={"password": "x"}, headers=bearer(tokens["alice-next"]))
    assert r.status_code == 200, r.text

    # The tokens themselves, and their secret halves, are in no log (the app's, nginx's).
    # (The secret is the 43 characters after "hashd_<id>_"; it may itself hold "_", so it is
    # cut by length, not at the last "_", which could leave a tail of one or two characters.)
    secrets = list(tokens.values()) + [t[-43:] for t in tokens.values()]
    stack.assert_not_logged(*secrets)


def test_a_gated_policy_without_a_valid_clients_file_refuses_to_start(tmp_path):
    """Exit 2 with the file and line named; the digest is not in the message."""
    bad = tmp_path / "tokens"
    secret_digest = digest(new_token("carol"))
    bad.write_text(f"# ok\ntoken carol {secret_digest[:40]} hash\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHD_")}
    for tokens_file, line in ((bad, f"{bad}:2:"), (tmp_path / "missing", str(tmp_path / "missing"))):
        env.update({"HASHD_AUTH": "hash=token", "HASHD_TOKENS_FILE": str(tokens_file),
                    "HASHD_LOG": "stderr"})
        # fd 0 is not a socket: the clients file is checked before that, so exit 2 names it.
        run = subprocess.run([str(fcgi_bin())], env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, run
        assert line in run.stderr, run.stderr
        assert secret_digest[:40] not in run.stderr + run.stdout


def test_client_certificates_nginx_verified_identify_the_client(make_stack, tmp_path):
    """mTLS: the DN counts only with nginx's verdict SUCCESS; a DN with spaces matches."""
    def run(*argv):
        subprocess.run([str(a) for a in argv], check=True, capture_output=True)

    ca_key, ca_crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", "/CN=clients CA", "-keyout", ca_key, "-out", ca_crt)

    def client(name, subject):
        key, csr, crt = (tmp_path / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", subject, "-keyout", key, "-out", csr)
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
            "-CAcreateserial", "-days", "2", "-out", crt)
        return str(crt), str(key)

    billing = client("billing", "/O=Example Corp/CN=billing service")
    unknown = client("unknown", "/O=Example Corp/CN=someone else")
    tokens = tmp_path / "tokens"
    # As nginx's $ssl_client_s_dn writes it (RFC 2253: last RDN first).
    tokens.write_text("cert billing CN=billing service,O=Example Corp messages\n")
    stack = make_stack(processes=1, nginx={"client_ca": str(ca_crt)}, app_env={
        "HASHD_AUTH": "messages=mtls,hash=any", "HASHD_TOKENS_FILE": str(tokens),
        "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})

    def post(path, body, cert=None):
        with requests.Session() as session:  # one each: a pooled connection keeps its cert
            session.trust_env = False
            session.verify = str(stack.cert)
            return session.post(stack.url(path), json=body, cert=cert, timeout=30)

    assert_error(post("/messages", {"message": "m"}), 401, "unauthenticated")
    assert_error(post("/messages", {"message": "m"}, unknown), 401, "unauthenticated")
    r = post("/messages", {"message": "from billing"}, billing)
    assert r.status_code == 201, r.text
    assert request_entry(stack, r.headers["X-Request-Id"])["CLIENT_ID"] == "billing"
    # hash=any takes the certificate too; billing's groups do not include hash: 403.
    assert_error(post("/v1/hash", {"password": "pw"}, billing), 403, "forbidden")
    assert_error(post("/v1/hash", {"password": "pw"}), 401, "unauthenticated")


def test_the_work_budget_is_per_client_id_not_per_address(make_stack, clients):
    """Two clients behind one address (every test client is 127.0.0.1) have a budget each."""
    tokens, path, write = clients
    write("alice", "bob")
    path.write_text(path.read_text().replace(" messages\n", " hash,messages\n"))
    stack = make_stack(processes=1, app_env={
        "HASHD_AUTH": "hash=token", "HASHD_TOKENS_FILE": str(path),
        "HASHD_CLIENT_WORK_RATE": "1", "HASHD_CLIENT_WORK_BURST": "1",
        "HASHD_COST_MIN": "10", "HASHD_THREADS": "2", "HASHD_QUEUE_DEADLINE_MS": "0"})

    def hash_as(name):
        return stack.post("/v1/hash", json={"password": "budget-pw", "cost": 12},
                          headers=bearer(tokens[name]), timeout=60)

    # Sent together, both charged within milliseconds: alice's bucket holds one cost-12 hash.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(hash_as, ["alice", "alice"]))
    assert sorted(r.status_code for r in answers) == [200, 429], [r.text for r in answers]
    # Bob, from the same address, has his own full bucket.
    r = hash_as("bob")
    assert r.status_code == 200, r.text
