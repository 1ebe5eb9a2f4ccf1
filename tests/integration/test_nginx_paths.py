"""What a hostile client can do with paths, errors and probes (non-canonical
paths, nginx's own refusals, the 413 and TRACE), against the real stack: nginx and the app agree on what a path is,
secrets reach no log in any spelling, nginx's own errors are the JSON error shape, and the
probes are limited for everyone but the health checkers.

Paths are sent byte for byte with http.client: requests and urllib3 would normalise them
("/gethash/../" becomes "/") before they left the test."""

import http.client
import json
import re
import signal
import socket
import ssl
import struct
import uuid

import bcrypt
import pytest

from harness.hashd_stack import REPO


def secret():
    return "pw-" + uuid.uuid4().hex


class Raw:
    """One raw HTTP/1.1 exchange: status, headers (a dict, names as sent), body text."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def raw_request(stack, method, path, body=None, headers=None, https=True):
    if https:
        context = ssl.create_default_context(cafile=str(stack.cert))
        conn = http.client.HTTPSConnection("localhost", stack.https_port, timeout=60, context=context)
    else:
        conn = http.client.HTTPConnection("localhost", stack.http_port, timeout=60)
    try:
        # skip_host/accept_encoding keep http.client from adding anything but what is given.
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Raw(response.status, dict(response.getheaders()), response.read().decode(errors="replace"))
    finally:
        conn.close()


def assert_json_error(response, status, code=None):
    assert response.status == status, (response.status, response.body)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"err_msg", "error", "request_id"}, body
    assert body["request_id"] == response.headers["X-Request-Id"]
    if code is not None:
        assert body["error"] == code, body
    return body


# --- Finding 1: one meaning per path ----------------------------------------------------------

NON_CANONICAL = [
    "/gethash/..%2F{pw}/",          # nginx: /pw/ in location / ; app: password "../pw"
    "/gethash/../",                  # nginx: / ; app: password ".."
    "/gethash/%2e%2E/",
    "/gethash/./{pw}/",
    "/%67ethash/{pw}/",              # nginx: /gethash/pw/ ; app: unknown path
    "//gethash/{pw}/",
    "/gethash//{pw}/",
    "/gethash/{pw}%2F/",
    "/v1/hash/..%2F..%2Fgethash%2F{pw}%2F",
    "/messages/..%2F..%2Fgethash%2F{pw}",
]


@pytest.mark.parametrize("template", NON_CANONICAL)
def test_a_non_canonical_path_is_a_json_400_never_hashed_nor_logged(stack, template):
    pw = secret()
    r = raw_request(stack, "GET", template.format(pw=pw))
    # "bad_request": a ".." above the root, which nginx refuses itself before any location.
    code = assert_json_error(r, 400)["error"]
    assert code in ("invalid_path", "bad_request")
    entry = stack.access_entry(r.headers["X-Request-Id"])
    # A path nginx could not parse has no $request_uri: nothing of it is logged.
    assert entry["path"] == ("[non-canonical path]" if code == "invalid_path" else ""), entry
    stack.assert_not_logged(pw)


def test_the_app_refuses_non_canonical_paths_on_its_own(stack):
    """Defence in depth: the same request straight to a worker's socket, past nginx."""
    pw = secret()
    socket_path = stack.run_dir / "hashd-1.sock"
    for path in (f"/gethash/..%2F{pw}/", "/gethash/../", f"/%67ethash/{pw}/"):
        status, body = fastcgi_get(socket_path, path)
        assert status == 400, (path, status, body)
        assert json.loads(body)["error"] == "invalid_path"
    stack.assert_not_logged(pw)


def fastcgi_get(socket_path, path):
    """A minimal FastCGI GET (what nginx sends) over the unix socket: status and body."""
    def record(kind, content, request_id=1):
        return struct.pack("!BBHHBx", 1, kind, request_id, len(content), 0) + content

    def pair(name, value):
        name, value = name.encode(), value.encode()
        return bytes([len(name)]) + bytes([len(value)]) + name + value if len(value) < 128 else (
            bytes([len(name)]) + struct.pack("!I", len(value) | 0x80000000) + name + value)

    params = b"".join(pair(k, v) for k, v in {
        "REQUEST_METHOD": "GET", "REQUEST_URI": path, "QUERY_STRING": "", "CONTENT_LENGTH": "",
        "REQUEST_ID": "paths-test-" + uuid.uuid4().hex[:8], "SERVER_PROTOCOL": "HTTP/1.1"}.items())
    message = (record(1, struct.pack("!HB5x", 1, 0)) + record(4, params) + record(4, b"") +
               record(5, b""))
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(socket_path))
        s.sendall(message)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    out, offset = b"", 0
    while offset + 8 <= len(data):
        _, kind, _, length, padding = struct.unpack("!BBHHB", data[offset:offset + 7])
        if kind == 6:
            out += data[offset + 8:offset + 8 + length]
        offset += 8 + length + padding
    head, _, body = out.partition(b"\r\n\r\n")
    status = 200
    for line in head.decode().splitlines():
        if line.lower().startswith("status:"):
            status = int(line.split(":", 1)[1].split()[0])
    return status, body.decode()


def test_an_encoded_password_still_hashes_and_is_redacted(stack):
    pw = "p@ss w" + uuid.uuid4().hex[:8]
    encoded = pw.replace("@", "%40").replace(" ", "%20")
    r = raw_request(stack, "GET", f"/gethash/{encoded}/")
    assert r.status == 200, r.body
    assert bcrypt.checkpw(pw.encode(), bytes.fromhex(r.json()["hash"]))
    assert stack.access_entry(r.headers["X-Request-Id"])["path"] == "/gethash/[redacted]/"
    stack.assert_not_logged(pw, encoded)


def test_every_spelling_of_the_legacy_route_is_limited_by_the_hashing_zone(make_stack):
    stack = make_stack(processes=1, nginx={"hash_rate": "1r/m", "hash_burst": 1})
    pw = secret()
    assert raw_request(stack, "GET", "/v1/hash").status == 405  # general zone: not counted
    first = raw_request(stack, "GET", f"/gethash/{pw}/")
    assert first.status == 200, first.body
    # Any other spelling is either refused as non-canonical (400, before any zone) or is the
    # hashing route, and then already over its limit.
    for path in (f"/GETHASH/{pw}/", f"/gethash/{pw}", f"/gethash/..%2F{pw}/"):
        r = raw_request(stack, "GET", path)
        assert r.status in (400, 429), (path, r.status, r.body)
        entry = stack.access_entry(r.headers["X-Request-Id"])
        assert entry["path"] in ("/gethash/[redacted]/", "[non-canonical path]"), entry
    stack.assert_not_logged(pw)


# --- Finding 3 and 8: nginx's own errors are JSON, with the right status ------------------------

@pytest.mark.parametrize("path", ["/gethash/%00/", "/gethash/..%2F..%2F..%2Fetc%2Fpasswd/",
                                  "/..%2F..%2F", "/gethash/../../../"])
def test_paths_nginx_itself_refuses_are_a_json_400_not_an_html_500(stack, path):
    assert_json_error(raw_request(stack, "GET", path), 400)


def test_a_request_line_too_long_is_a_json_414(stack):
    assert_json_error(raw_request(stack, "GET", "/gethash/" + "a" * 20000 + "/"), 414, "uri_too_long")


def app_allow(stack, path):
    """The Allow header of the app's own 405 for path (PUT is no route's method)."""
    r = raw_request(stack, "PUT", path, body=b"")
    assert_json_error(r, 405, "method_not_allowed")
    return r.headers["Allow"]


@pytest.mark.parametrize("path", ["/v1/hash", "/v1/verify", "/messages", "/messages/abc",
                                  "/gethash/x/", "/healthz", "/readyz", "/metrics", "/",
                                  "/multivac", "/multivac/data"])
def test_trace_is_nginx_s_json_405_with_the_app_s_allow(stack, path):
    r = raw_request(stack, "TRACE", path)
    assert_json_error(r, 405, "method_not_allowed")
    assert r.headers.get("Allow") == app_allow(stack, path)


def test_the_413_names_the_limit_of_the_route(stack):
    big = b"x" * (500 * 1024)
    r = raw_request(stack, "POST", "/v1/hash", body=big, headers={"Content-Type": "application/json"})
    body = assert_json_error(r, 413, "body_too_large")
    assert "message" not in body["err_msg"].lower(), body
    assert "password" in body["err_msg"]
    r = raw_request(stack, "POST", "/messages", body=big, headers={"Content-Type": "application/json"})
    assert "message" in assert_json_error(r, 413, "body_too_large")["err_msg"]


# --- Finding 2: no request line in nginx's error log ------------------------------------------

def test_no_error_log_line_carries_a_request_line(make_stack):
    stack = make_stack(processes=1, nginx={"hash_rate": "1r/m", "hash_burst": 1,
                                           "fastcgi_read_timeout": "1s",
                                           "error_log_level": "info"})
    pw = secret()
    big = b"x" * (500 * 1024)
    # Rate limited (limit_req logs "limiting requests" with the request line).
    for _ in range(3):
        raw_request(stack, "GET", f"/gethash/{pw}/")
    # Too large, with the password in a query string, on HTTPS and on port 80.
    raw_request(stack, "POST", f"/v1/hash?password={pw}", body=big)
    raw_request(stack, "POST", f"/gethash/{pw}/", body=big, https=False)
    raw_request(stack, "GET", f"/gethash/%00{pw}/")
    # An upstream timeout ("upstream timed out ... request: ..."): the one process stopped.
    stack.signal(1, signal.SIGSTOP)
    try:
        r = raw_request(stack, "POST", f"/messages?password={pw}", body=b'{"message":"x"}',
                        headers={"Content-Type": "application/json"})
        assert_json_error(r, 504)
    finally:
        stack.signal(1, signal.SIGCONT)
    error_log = (stack.log_dir / "nginx-error.log").read_text()
    assert 'request: "' not in error_log, error_log[-2000:]
    stack.assert_not_logged(pw)


# --- Finding 6: probes --------------------------------------------------------------------------

def probe(stack, path, client=None):
    headers = {"X-Forwarded-For": client} if client else {}
    return stack.get(path, headers=headers)


def test_probes_are_limited_for_clients_but_never_for_the_health_checkers(make_stack):
    stack = make_stack(processes=1, nginx={
        "probe_rate": "1r/m", "probe_burst": 2,
        # Behind a proxy on loopback, so a test can be any client (the load balancer's case).
        "trusted_proxies": ["127.0.0.1"], "health_checkers": ["198.51.100.0/24"]})
    for path, client in (("/healthz", "203.0.113.7"), ("/readyz", "203.0.113.8")):
        statuses = [probe(stack, path, client).status_code for _ in range(6)]
        assert statuses.count(429) >= 3 and 200 in statuses, (path, statuses)
    r = probe(stack, "/healthz", "203.0.113.7")
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    # A health checker and loopback (the VM's own agents) are never limited.
    for client in ("198.51.100.20", None):
        statuses = {probe(stack, path, client).status_code for path in ("/healthz", "/readyz")
                    for _ in range(10)}
        assert statuses == {200}, (client, statuses)
    # A client cannot pose as a checker: the trusted proxy's view of the client wins.
    r = probe(stack, "/healthz", "198.51.100.20, 203.0.113.7")
    assert r.status_code == 429


# --- Finding 7: the legacy route's 429s are where fail2ban counts them ------------------------------

def test_legacy_429s_are_in_the_access_log_with_the_client_and_redacted(make_stack):
    stack = make_stack(processes=1, nginx={"hash_rate": "1r/m", "hash_burst": 1,
                                           "trusted_proxies": ["127.0.0.1"]})
    pw = secret()
    ids = [raw_request(stack, "GET", f"/gethash/{pw}/", headers={"X-Forwarded-For": "203.0.113.9"})
           .headers["X-Request-Id"] for _ in range(5)]
    entries = [stack.access_entry(i) for i in ids]
    limited = [e for e in entries if e["status"] == "429"]
    assert len(limited) >= 2, entries
    for e in limited:
        assert e["client"] == "203.0.113.9" and e["peer"] == "127.0.0.1", e
        assert e["path"] == "/gethash/[redacted]/"
    stack.assert_not_logged(pw)
    # The line shape the hardening role's fail2ban filter matches (journal prefix aside).
    filt = (REPO / "ansible/roles/hardening/files/hashd-nginx-limit-req.conf").read_text()
    assert '"client":"<HOST>"' in filt and '"status":"429"' in filt
    pattern = re.search(r'^failregex = \^%\(__prefix_line\)s(.*)$', filt, re.M).group(1)
    regex = pattern.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)")
    lines = (stack.log_dir / "nginx-access.log").read_text().splitlines()
    hosts = [m.group("host") for line in lines if (m := re.search(regex, line))]
    assert hosts.count("203.0.113.9") == len(limited), (hosts, regex)
