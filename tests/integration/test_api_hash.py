"""The password-hashing API end to end: client -> nginx (TLS, HTTP/2) -> hashd-fcgi.

Every hash is checked with an independent bcrypt implementation (Debian's python3-bcrypt),
and every error with the JSON shape docs/api.md documents. The passwords used here are
collected and searched for in every log of the stack when the module ends.
"""

import urllib.parse

import bcrypt
import pytest

PASSWORDS = set()


def secret(pw):
    """Registers a password the logs must never contain."""
    PASSWORDS.add(pw)
    return pw


@pytest.fixture(scope="module", autouse=True)
def no_password_in_any_log(stack):
    yield
    assert PASSWORDS, "the module registered no password to look for"
    stack.assert_not_logged(*PASSWORDS)


def assert_error(response, status, code=None):
    """The error contract: status, JSON body with err_msg/error/request_id, and the request
    id equal to the X-Request-Id header nginx sent."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"err_msg", "error", "request_id"}, body
    assert body["err_msg"].strip(), body
    assert body["request_id"] == response.headers["X-Request-Id"]
    if code is not None:
        assert body["error"] == code, body
    return body


def test_hash_returns_a_bcrypt_that_an_independent_library_accepts(stack):
    pw = secret("hunter2-integration")
    r = stack.post("/v1/hash", json={"password": pw})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cost"] == 12
    assert body["bcrypt"].startswith("$2b$12$") and len(body["bcrypt"]) == 60
    assert bytes.fromhex(body["hash"]).decode() == body["bcrypt"]
    assert bytes.fromhex(body["salt"]).decode() == body["bcrypt"][:29]
    assert bcrypt.checkpw(pw.encode(), body["bcrypt"].encode())
    assert not bcrypt.checkpw(b"hunter3", body["bcrypt"].encode())
    assert r.headers["Cache-Control"] == "no-store"
    assert len(r.headers["X-Request-Id"]) == 32


def test_hash_honours_a_cost_within_policy_and_accepts_form_bodies(stack):
    pw = secret("form p\u00e4ssword")
    r = stack.post("/v1/hash", data={"password": pw, "cost": "10"})
    assert r.status_code == 200, r.text
    assert r.json()["bcrypt"].startswith("$2b$10$")
    assert bcrypt.checkpw(pw.encode(), r.json()["bcrypt"].encode())


def test_hash_accepts_exactly_72_bytes_of_multibyte_utf8(stack):
    pw = secret("\u20ac" * 24)  # 72 bytes
    r = stack.post("/v1/hash", json={"password": pw, "cost": 10})
    assert r.status_code == 200, r.text
    assert bcrypt.checkpw(pw.encode(), r.json()["bcrypt"].encode())


@pytest.mark.parametrize("payload, code", [
    ({"password": ""}, "password_empty"),
    ({"password": "a" * 73}, "password_too_long"),
    ({"password": "\u20ac" * 25}, "password_too_long"),  # 25 chars, 75 bytes
    ({"password": "nul\u0000inside"}, "password_contains_nul"),
    ({"password": "x", "cost": 9}, "invalid_cost"),
    ({"password": "x", "cost": 15}, "invalid_cost"),
    ({"password": "x", "cost": "12; drop"}, "invalid_field"),
    ({"password": 1234}, "invalid_field"),
    ({"passwd": "x"}, "missing_field"),
])
def test_hash_rejects_invalid_input_with_a_json_400(stack, payload, code):
    if isinstance(payload.get("password"), str) and len(payload["password"]) > 3:
        secret(payload["password"])
    assert_error(stack.post("/v1/hash", json=payload), 400, code)


def test_hash_rejects_invalid_utf8_and_malformed_json(stack):
    headers = {"Content-Type": "application/json"}
    assert_error(stack.post("/v1/hash", data=b'{"password": "\xc3\x28abc"}', headers=headers),
                 400, "password_not_utf8")
    assert_error(stack.post("/v1/hash", data=b'{"password": ', headers=headers), 400,
                 "invalid_json")
    assert_error(stack.post("/v1/hash", data=b'["password"]', headers=headers), 400,
                 "invalid_json")


def test_wrong_content_type_is_415(stack):
    r = stack.post("/v1/hash", data=b"password=x", headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")


def test_unknown_route_is_404_and_wrong_method_is_405_with_allow(stack):
    assert_error(stack.get("/v2/nothing-here"), 404)
    r = stack.get("/v1/hash")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"
    r = stack.post("/healthz", json={})
    assert_error(r, 405)
    assert r.headers["Allow"] == "GET"


def test_oversized_body_is_a_json_413(stack):
    r = stack.post("/v1/hash", data=b"{" + b" " * (2 << 20) + b"}",
                   headers={"Content-Type": "application/json"})
    assert_error(r, 413)


def test_legacy_get_returns_the_original_body(stack):
    pw = secret("legacy p@ss w\u00f6rd")
    for path in (f"/gethash/{urllib.parse.quote(pw, safe='')}/",
                 f"/gethash/{urllib.parse.quote(pw, safe='')}"):
        r = stack.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"salt", "hash"}
        full = bytes.fromhex(body["hash"])
        setting = bytes.fromhex(body["salt"])
        assert len(setting) == 29 and len(full) == 60
        assert setting.startswith(b"$2b$12$") and full.startswith(setting)
        assert bcrypt.checkpw(pw.encode(), full)
        assert r.headers["Cache-Control"] == "no-store"
        assert "Deprecation" in r.headers
    assert stack.access_entry(r.headers["X-Request-Id"])["path"] == "/gethash/[redacted]/"


def test_legacy_get_can_be_switched_off(make_stack):
    s = make_stack(processes=1, app_env={"HASHD_LEGACY_GET": "0"})
    r = s.get("/gethash/" + secret("switched-off-pw") + "/")
    body = assert_error(r, 410, "legacy_endpoint_disabled")
    assert "/v1/hash" in body["err_msg"]
    s.assert_not_logged(*PASSWORDS)


def test_verify_matches_and_reports_rehash(stack):
    pw = secret("verify-me-please")
    ours = stack.post("/v1/hash", json={"password": pw, "cost": 10}).json()
    theirs = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(12)).decode()  # other implementation
    legacy = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(12, prefix=b"2a")).decode()

    def verify(password, hash_):
        r = stack.post("/v1/verify", json={"password": password, "hash": hash_})
        assert r.status_code == 200, r.text
        return r.json()

    assert verify(pw, theirs) == {"match": True, "needs_rehash": False}
    assert verify(pw, ours["bcrypt"]) == {"match": True, "needs_rehash": True}  # cost 10 < 12
    assert verify(pw, ours["hash"])["match"] is True  # the hex form
    assert verify(pw, legacy) == {"match": True, "needs_rehash": True}  # $2a$
    assert verify(pw + "x", theirs)["match"] is False


def test_verify_rejects_non_bcrypt_and_over_policy_hashes(stack):
    assert_error(stack.post("/v1/verify", json={"password": "x", "hash": "md5:abc"}), 400,
                 "invalid_hash")
    expensive = "$2b$20$" + "C" * 53
    assert_error(stack.post("/v1/verify", json={"password": "x", "hash": expensive}), 400,
                 "hash_cost_too_high")
    assert_error(stack.post("/v1/verify", json={"password": "x"}), 400, "missing_field")


def test_health_and_readiness(stack):
    r = stack.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = stack.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"


def test_every_request_is_in_the_app_log_under_its_request_id(stack):
    pw = secret("correlate-this-one")
    r = stack.post("/v1/hash", json={"password": pw, "cost": 10})
    rid = r.headers["X-Request-Id"]
    assert r.status_code == 200
    stack.access_entry(rid)  # nginx logged it under the same id
    assert stack.app_log_mentions(rid)


def _engine_passwords():
    """Passwords for the engine's edges, as clients send them (UTF-8): ASCII, 8-bit bytes
    (2- and 3-byte sequences), exactly 72 bytes, and one byte."""
    return [
        secret("engine-ascii-password"),
        secret("p\u00e4ssw\u00f6rd-\u00fc\u00df"),
        secret("\u20ac" * 24),  # 72 bytes of 3-byte sequences
        secret("e" * 72),
        "1",  # one byte: too common a string to look for in the logs
        secret("\u00ff\u00ff\u00a3-2a-corner"),
    ]


def _wrong(pw):
    """The password with its last character changed (same length or shorter: within 72)."""
    return pw[:-1] + ("y" if pw[-1] != "y" else "z")


def test_a_burst_of_hashes_and_verifications_agrees_with_pyca_bcrypt(make_stack):
    """One process, one hashing thread, the interleaved engine (the default): a concurrent
    burst of hashes and verifications of one cost queues and is computed in batches. Every hash
    the service made verifies with pyca bcrypt, and the service verifies pyca's $2a$, $2b$
    and $2y$ hashes (and refuses the wrong password) in the same burst."""
    from concurrent.futures import ThreadPoolExecutor

    s = make_stack(processes=1, app_env={"HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})
    passwords = _engine_passwords()
    theirs = []
    for i, pw in enumerate(passwords):
        prefix = [b"2a", b"2b"][i % 2]
        salt = bcrypt.gensalt(6, prefix=prefix)
        if i % 3 == 2:
            salt = b"$2y$" + salt[4:]
        theirs.append((pw, bcrypt.hashpw(pw.encode(), salt).decode()))

    def hash_(pw):
        r = s.post("/v1/hash", json={"password": pw, "cost": 6})
        assert r.status_code == 200, r.text
        return pw, r.json()["bcrypt"]

    def verify(pw, hash_text):
        r = s.post("/v1/verify", json={"password": pw, "hash": hash_text})
        assert r.status_code == 200, r.text
        return r.json()["match"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        hashed = [pool.submit(hash_, pw) for pw in passwords * 2]
        matches = [pool.submit(verify, pw, h) for pw, h in theirs]
        mismatches = [pool.submit(verify, _wrong(pw), h) for pw, h in theirs]
        ours = [f.result() for f in hashed]
        assert all(f.result() is True for f in matches)
        assert all(f.result() is False for f in mismatches)
    for pw, h in ours:
        assert h.startswith("$2b$06$")
        assert bcrypt.checkpw(pw.encode(), h.encode()), (len(pw.encode()), h)
        assert not bcrypt.checkpw(_wrong(pw).encode(), h.encode())
    s.assert_not_logged(*PASSWORDS)


def test_libxcrypt_alone_serves_the_same_hashes(make_stack):
    """HASHD_BCRYPT_ENGINE=libxcrypt: the operator's switch back to one hash at a time."""
    s = make_stack(processes=1, app_env={"HASHD_BCRYPT_ENGINE": "libxcrypt",
                                         "HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"})
    for pw in _engine_passwords()[:3]:
        r = s.post("/v1/hash", json={"password": pw, "cost": 5})
        assert r.status_code == 200, r.text
        assert bcrypt.checkpw(pw.encode(), r.json()["bcrypt"].encode())
    s.assert_not_logged(*PASSWORDS)
