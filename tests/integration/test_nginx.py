"""nginx in front of the pool: TLS, HTTP/2, the redirect, headers, JSON errors, limits,
the concurrency cap, retries when a process dies, log redaction, /metrics access, and the
local stack's own start and stop. Every test runs the real stack (conftest.py)."""

import json
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid

import bcrypt
import httpx
import pytest

from harness.hashd_stack import REPO, wait_for

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("sandbox; default-src 'none'; form-action 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'"),
}


def secret():
    """A password no log could contain by accident."""
    return "pw-" + uuid.uuid4().hex


def assert_json_error(response, status, code):
    """nginx's and the app's errors share one shape; the id is the response's own."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"err_msg", "error", "request_id"}, body
    assert body["error"] == code
    assert body["err_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def in_background(fn, *args, **kwargs):
    """Runs fn in a thread; returns a callable that joins it and returns fn's result
    (or raises its exception)."""
    result = {}

    def run():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the joining test
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout=60):
        thread.join(timeout)
        assert not thread.is_alive(), "background request did not finish"
        if "error" in result:
            raise result["error"]
        return result["value"]

    return join


# --- Configuration ---------------------------------------------------------------------------


def render(tmp_path, *sets):
    out = tmp_path / "nginx"
    cmd = [sys.executable, str(REPO / "nginx" / "render"), str(out)]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def test_production_configuration_passes_nginx_t(tmp_path):
    # The production defaults as Ansible renders them, plus every optional branch (trusted
    # proxies, monitoring networks, IPv6); only paths nginx -t must open are redirected.
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=t", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    result, out = render(
        tmp_path,
        f"hashd_nginx_tls_certificate={cert}", f"hashd_nginx_tls_certificate_key={key}",
        f"hashd_nginx_pid_file={tmp_path}/nginx.pid", f"hashd_nginx_temp_dir={tmp_path}",
        'hashd_nginx_trusted_proxies=["130.211.0.0/22", "35.191.0.0/16", "203.0.113.10"]',
        'hashd_nginx_metrics_allow=["10.128.0.0/9"]',
        'hashd_nginx_listen_addresses=["0.0.0.0", "[::]"]', "hashd_processes=4")
    assert result.returncode == 0, result.stdout
    site = (out / "hashd" / "site.conf").read_text()
    assert site.count("server unix:/run/hashd/hashd-4.sock") == 2  # pool and probes
    assert "max_conns=33 " in site  # T=1 x (1 + 32 queued per thread): a safety bound
    assert "access_log syslog:server=unix:/dev/log,tag=nginx_access,nohostname hashd_json;" in site
    assert "error_log syslog:server=unix:/dev/log,tag=nginx_error,nohostname error;" in (out / "nginx.conf").read_text()
    check = subprocess.run(["nginx", "-t", "-p", f"{out}/", "-c", "nginx.conf"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert check.returncode == 0, check.stdout


def test_render_rejects_an_unknown_variable(tmp_path):
    result, _ = render(tmp_path, "hashd_nginx_hash_rat=1r/s")
    assert result.returncode != 0
    assert "unknown variable 'hashd_nginx_hash_rat'" in result.stdout


def test_local_stack_check_mode_validates_without_the_app(tmp_path):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HASHD_LOCAL_DIR": str(tmp_path / "local"),
           "HASHD_FCGI_BIN": str(tmp_path / "missing")}
    result = subprocess.run([str(REPO / "scripts" / "run-local"), "--check"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "local" / "tls" / "localhost.crt").exists()


# --- TLS and protocols -------------------------------------------------------------------------


def tls_handshake(stack, version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(stack.cert))
    # Let the client offer old protocols, so a refusal can only come from the server.
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = version
    context.maximum_version = version
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version(), tls.cipher()[0]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_2_and_1_3_only_with_forward_secret_aead_ciphers(stack):
    assert tls_handshake(stack, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    version, cipher = tls_handshake(stack, ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError) as refused:
            tls_handshake(stack, old)
        # The server's refusal, not the client's own policy.
        assert "ALERT_PROTOCOL_VERSION" in str(refused.value), refused.value


def tls12_cipher_accepted(stack, cipher):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(stack.cert))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher + ":@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", stack.https_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost"):
                return True
    except ssl.SSLError as e:
        assert "HANDSHAKE_FAILURE" in str(e) or "NO_SHARED_CIPHER" in str(e), e
        return False


def test_tls_1_2_offers_exactly_the_mozilla_intermediate_ciphers(stack):
    # The local certificate is ECDSA, so the ECDSA half of the list is what can be offered.
    accepted = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305"]
    refused = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256",
               "AES128-GCM-SHA256", "AES256-SHA", "DHE-RSA-AES128-GCM-SHA256",
               "ECDHE-ECDSA-NULL-SHA", "AECDH-AES128-SHA", "ECDHE-ECDSA-AES128-CCM",
               "ECDHE-ECDSA-ARIA128-GCM-SHA256", "ECDHE-ECDSA-CAMELLIA128-SHA256"]
    assert [c for c in accepted if not tls12_cipher_accepted(stack, c)] == []
    assert [c for c in refused if tls12_cipher_accepted(stack, c)] == []


def test_certificate_verifies_for_localhost_and_127_0_0_1(stack):
    # Clients pinning the shipped certificate check the host name (shared/NOTES.md).
    for host in ("localhost", "127.0.0.1"):
        r = stack.session.get(f"https://{host}:{stack.https_port}/healthz", timeout=10)
        assert r.status_code == 200


def test_http2_is_negotiated(stack):
    with httpx.Client(http2=True, verify=str(stack.cert), timeout=10) as client:
        r = client.get(stack.url("/healthz"))
    assert r.status_code == 200
    assert r.http_version == "HTTP/2"
    assert r.headers["x-request-id"]


def test_plain_http_redirects_and_never_serves_a_password(stack):
    password = secret()
    r = stack.session.get(stack.http_url(f"/gethash/{password}/"), allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == stack.url(f"/gethash/{password}/")
    assert "hash" not in r.text
    request_id = r.headers["X-Request-Id"]
    entry = stack.access_entry(request_id)
    assert entry["path"] == "/gethash/[redacted]/"
    assert entry["upstream"] == ""  # never reached the app

    r = stack.session.post(stack.http_url("/v1/hash"), json={"password": password},
                           allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == stack.url("/v1/hash")
    assert not stack.app_log_mentions(r.headers["X-Request-Id"])
    stack.assert_not_logged(password)


def test_plain_http_on_the_tls_port_gets_a_json_400(stack):
    r = stack.session.get(f"http://localhost:{stack.https_port}/healthz", timeout=10)
    assert_json_error(r, 400, "https_required")


# --- Headers and errors ----------------------------------------------------------------------


def test_every_response_carries_one_request_id_and_the_security_headers(stack):
    responses = [
        stack.get("/healthz"),                                  # app, 200
        stack.get("/no-such-route"),                            # app, 404
        stack.post("/messages", data=b"x" * (600 * 1024),       # nginx, 413
                   headers={"Content-Type": "application/json"}),
        stack.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}),
        stack.session.get(stack.http_url("/healthz"), allow_redirects=False, timeout=10),
    ]
    ids = set()
    for r in responses:
        request_id = r.headers["X-Request-Id"]
        # One header, not the app's and nginx's joined by a comma.
        assert len(request_id) == 32 and all(c in "0123456789abcdef" for c in request_id), request_id
        ids.add(request_id)
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (r.url, r.status_code, name)
        assert stack.access_entry(request_id)["status"] == str(r.status_code)
    assert len(ids) == len(responses)


def test_app_sees_the_request_id_nginx_logs(stack):
    r = stack.get("/no-such-route")
    assert r.status_code == 404
    request_id = r.headers["X-Request-Id"]
    assert r.json()["request_id"] == request_id
    assert stack.app_log_mentions(request_id)


def test_body_over_the_limit_is_refused_by_nginx_as_json_413(stack):
    r = stack.post("/messages", data=b"x" * (600 * 1024), headers={"Content-Type": "application/json"})
    assert_json_error(r, 413, "body_too_large")
    entry = stack.access_entry(r.headers["X-Request-Id"])
    assert entry["status"] == "413" and entry["upstream"] == ""


def test_largest_valid_message_passes_nginx(stack):
    # 64 KiB of control characters, each JSON-escaped to 6 bytes: the largest body the
    # contract allows must reach the app (nginx's limit is for garbage only).
    message = "\x01" * (64 * 1024)
    body = json.dumps({"message": message}).encode()
    assert len(body) > 380 * 1024
    r = stack.post("/messages", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    assert stack.get(f"/messages/{digest}").json()["message"] == message


# --- Logs ------------------------------------------------------------------------------------


def test_access_log_is_json_with_the_fields_operators_need(stack):
    r = stack.get("/healthz", headers={"User-Agent": "hashd-test"})
    entry = stack.access_entry(r.headers["X-Request-Id"])
    assert entry["method"] == "GET" and entry["path"] == "/healthz" and entry["status"] == "200"
    assert entry["client"] == "127.0.0.1" and entry["tls"] in ("TLSv1.2", "TLSv1.3")
    assert entry["upstream"].startswith("unix:") and entry["upstream_status"] == "200"
    assert entry["user_agent"] == "hashd-test"
    float(entry["request_time"])


def test_access_log_through_syslog_is_json_with_client_fields_capped(make_stack, tmp_path_factory):
    # Production sends the access log to journald's syslog socket, one datagram per line.
    # A socket of the test's own receives exactly what journald would.
    directory = tmp_path_factory.mktemp("syslog")
    directory.chmod(0o755)  # nginx's workers (www-data under root) send to it
    for parent in directory.parents:
        if str(parent).startswith("/tmp/pytest-of-"):
            parent.chmod(0o755)
    path = directory / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    path.chmod(0o666)
    receiver.settimeout(10)
    try:
        stack = make_stack(processes=1, nginx={
            "access_log": f"syslog:server=unix:{path},tag=nginx_access,nohostname"})
        sent = [
            stack.get("/healthz"),
            stack.get("/healthz", headers={"User-Agent": "\"\\" * 3000}),
            stack.get("/x" + "%01" * 1000),
            stack.get("/gethash/" + secret() + "/", headers={"User-Agent": "a" * 5000}),
        ]
        wanted = {r.headers["X-Request-Id"] for r in sent}
        entries = {}
        while not wanted <= set(entries):
            datagram = receiver.recv(65536).decode()
            prefix, _, line = datagram.partition(" nginx_access: ")
            assert prefix.startswith("<") and line, datagram[:200]
            entry = json.loads(line)  # whole, not cut
            entries[entry["request_id"]] = entry
    finally:
        receiver.close()
    long_ua, control_path, gethash = (entries[r.headers["X-Request-Id"]] for r in sent[1:])
    assert long_ua["user_agent"] == "\"\\" * 75
    # Percent-encoding outside /gethash/ is not canonical: refused, and not logged at all.
    assert control_path["path"] == "[non-canonical path]" and control_path["status"] == "400"
    assert gethash["path"] == "/gethash/[redacted]/" and gethash["user_agent"] == "a" * 150


@pytest.mark.parametrize("template", [
    "/gethash/{}/", "/gethash/{}", "/GETHASH/{}/", "//gethash/{}/", "/%67ethash/{}/",
    "/gethash/{}/?x=1",
])
def test_gethash_password_is_redacted_in_every_spelling(stack, template):
    password = secret()
    r = stack.get(template.format(password))
    entry = stack.access_entry(r.headers["X-Request-Id"])
    # "//" and %67 are refused as non-canonical (test_nginx_paths.py), and not logged either.
    assert entry["path"] in ("/gethash/[redacted]/", "[non-canonical path]")
    stack.assert_not_logged(password)


def test_passwords_reach_no_log_even_when_requests_fail(make_stack):
    # Rate-limited and failed requests are the ones nginx writes error-log lines about,
    # with the request line. Verbose error logging, so nothing is hidden by the level.
    stack = make_stack(processes=1, nginx={"hash_rate": "1r/m", "hash_burst": 1,
                                           "error_log_level": "info"})
    password = secret()
    statuses = [stack.get(f"/gethash/{password}/").status_code for _ in range(3)]
    assert 429 in statuses
    statuses = [stack.post("/v1/hash", json={"password": password, "cost": 10}).status_code
                for _ in range(3)]
    assert statuses.count(429) == 3  # the zone is shared by all hashing routes
    stack.assert_not_logged(password)


# --- Limits ----------------------------------------------------------------------------------


def test_rate_limit_answers_json_429_with_retry_after_and_spares_probes(make_stack):
    stack = make_stack(processes=1, nginx={"hash_rate": "1r/m", "hash_burst": 2})
    responses = [stack.post("/v1/verify", json={"password": "x", "hash": "not-a-hash"})
                 for _ in range(4)]
    assert [r.status_code for r in responses[:3]].count(429) == 0
    body = assert_json_error(responses[3], 429, "rate_limited")
    assert responses[3].headers["Retry-After"] == "1"
    assert stack.access_entry(body["request_id"])["limit_req"] == "REJECTED"
    # Health checks and other routes have their own budgets.
    assert all(stack.get("/healthz").status_code == 200 for _ in range(10))
    assert stack.get("/no-such-route").status_code == 404


def test_metrics_only_from_loopback_or_the_monitoring_network(make_stack):
    # 127.0.0.1 plays the load balancer: X-Forwarded-For then names the client.
    stack = make_stack(processes=1, nginx={"trusted_proxies": ["127.0.0.1"],
                                           "metrics_allow": ["198.51.100.0/24"]})
    assert stack.get("/metrics").status_code == 200
    r = stack.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_json_error(r, 403, "forbidden")
    entry = stack.access_entry(r.headers["X-Request-Id"])
    assert entry["client"] == "203.0.113.9" and entry["peer"] == "127.0.0.1"
    assert stack.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 200
    # The agents' listener on the VM.
    code, body = stack.status("/metrics")
    assert code == 200 and "hashd_" in body
    code, body = stack.status("/nginx_status")
    assert code == 200 and "Active connections" in body


def test_full_pool_answers_json_503_at_once_but_probes_still_pass(make_stack):
    # One process, one thread, no queue: max_conns=1. A stopped process holds the one
    # slot deterministically (its request waits in the socket backlog).
    stack = make_stack(processes=1, app_env={"HASHD_THREADS": 1, "HASHD_QUEUE_DEADLINE_MS": 600000},
                       nginx={"queued_per_thread": 0})
    stack.signal(1, signal.SIGSTOP)
    try:
        first = in_background(stack.post, "/v1/hash", json={"password": "first", "cost": 10})
        wait_for(lambda: stack.requests_in_flight() >= 2, 30, "the first request to be in flight")
        r = stack.post("/v1/hash", json={"password": "second", "cost": 10})
        assert_json_error(r, 503, "overloaded")
        assert r.headers["Retry-After"] == "1"
        probe = in_background(stack.get, "/healthz")
        wait_for(lambda: stack.requests_in_flight() >= 3, 30, "the health check to be in flight")
    finally:
        stack.signal(1, signal.SIGCONT)
    assert first().status_code == 200
    assert probe().status_code == 200


def test_post_is_retried_on_another_process_when_one_dies_mid_request(make_stack):
    stack = make_stack(processes=2, app_env={"HASHD_THREADS": 1, "HASHD_QUEUE_DEADLINE_MS": 600000})
    for n in (1, 2):
        stack.signal(n, signal.SIGSTOP)
    try:
        # least_conn puts one request on each stopped process, where it waits unanswered.
        passwords = [secret(), secret()]
        pending = [in_background(stack.post, "/v1/hash", json={"password": p, "cost": 10})
                   for p in passwords]
        wait_for(lambda: stack.requests_in_flight() >= 3, 30, "both requests to be in flight")
        old_pid = stack.signal(1, signal.SIGKILL)
    finally:
        stack.signal(2, signal.SIGCONT)
    responses = [join() for join in pending]
    stack.wait_restarted(1, old_pid)
    for password, r in zip(passwords, responses):
        assert r.status_code == 200, r.text
        assert bcrypt.checkpw(password.encode(), r.json()["bcrypt"].encode())
    entries = [stack.access_entry(r.headers["X-Request-Id"]) for r in responses]
    retried = [e for e in entries if "," in e["upstream"]]
    assert len(retried) == 1, entries
    assert retried[0]["upstream"].endswith("hashd-2.sock")
    assert retried[0]["upstream_status"] == "502, 200"
    stack.assert_not_logged(*passwords)


# --- The local stack itself --------------------------------------------------------------------


def nginx_is_shutting_down(stack):
    """True once nginx's workers have taken the graceful stop (they rename themselves)."""
    master = str(stack.nginx_pid())
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "stat").read_text().rsplit(")", 1)[1].split()[1] == master:
                if b"shutting down" in (proc / "cmdline").read_bytes():
                    return True
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return False


def test_stop_finishes_requests_in_flight_and_exits_cleanly(make_stack):
    # The process is held (SIGSTOP) so the request is certainly in flight when the stop
    # begins, whatever the machine's speed; it is let go once nginx is shutting down.
    stack = make_stack(processes=1, app_env={"HASHD_THREADS": 1, "HASHD_QUEUE_DEADLINE_MS": 600000})
    stack.signal(1, signal.SIGSTOP)
    try:
        pending = in_background(stack.post, "/v1/hash", json={"password": "held", "cost": 10})
        wait_for(lambda: stack.requests_in_flight() >= 2, 30, "the request to be in flight")
        stopping = in_background(stack.stop)
        wait_for(lambda: nginx_is_shutting_down(stack), 30, "nginx to begin its graceful stop")
    finally:
        stack.signal(1, signal.SIGCONT)
    r = pending()
    assert r.status_code == 200 and r.json()["cost"] == 10
    assert stopping() == 0
    assert [e["returncode"] for e in stack.events()] == [0, 0]  # nginx, then hashd-1


def test_a_killed_process_is_restarted_and_serves_again(make_stack):
    stack = make_stack(processes=1)
    old_pid = stack.signal(1, signal.SIGKILL)
    stack.wait_restarted(1, old_pid)
    wait_for(lambda: stack.get("/readyz").status_code == 200, 30, "the restarted process to serve")
    assert [e for e in stack.events() if e["pid"] == old_pid][0]["returncode"] == -signal.SIGKILL
