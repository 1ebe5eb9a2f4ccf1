"""Trace correlation: the trace id a load balancer sends (W3C traceparent, Google's
X-Cloud-Trace-Context) is logged beside the request id, in Cloud Logging's trace key of the
app's JSON lines, for hashing and for store calls alike; a malformed header logs none."""

import json
import secrets

import pytest

from harness.hashd_stack import wait_for


def app_line(stack, request_id):
    """The app's request line (JSON on stderr, one file per process) for `request_id`."""
    def find():
        for path in stack.log_dir.glob("hashd-*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{") and request_id in line:
                    entry = json.loads(line)
                    if entry.get("REQUEST_ID") == request_id and entry.get("message") == "request":
                        return entry
        return None
    return wait_for(find, 10, f"the app's log line of request {request_id}")


def traceparent(trace_id):
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


@pytest.mark.parametrize("header", ["traceparent", "X-Cloud-Trace-Context"])
def test_the_trace_id_is_logged_beside_the_request_id(stack, header):
    trace_id = secrets.token_hex(16)
    value = traceparent(trace_id) if header == "traceparent" else f"{trace_id.upper()}/42;o=1"
    password, message = "trace me " + secrets.token_hex(4), "traced " + secrets.token_hex(4)
    hashed = stack.post("/v1/hash", json={"password": password, "cost": 10},
                        headers={header: value})
    assert hashed.status_code == 200, hashed.text
    stored = stack.post("/messages", json={"message": message}, headers={header: value})
    assert stored.status_code == 201, stored.text
    for response, route in [(hashed, "/v1/hash"), (stored, "/messages")]:
        entry = app_line(stack, response.headers["X-Request-Id"])
        assert entry["logging.googleapis.com/trace"] == trace_id, entry
        assert entry["ROUTE"] == route
        assert entry["severity"] == "INFO" and entry["time"].endswith("Z")
    stack.assert_not_logged(password, message)


def test_a_malformed_or_missing_trace_header_logs_no_trace(stack):
    for headers in [{}, {"traceparent": "00-zz-not-a-trace"},
                    {"X-Cloud-Trace-Context": "\"><script>/1"}]:
        r = stack.get("/healthz", headers=headers)
        assert r.status_code == 200
        entry = app_line(stack, r.headers["X-Request-Id"])
        assert "logging.googleapis.com/trace" not in entry, entry


def test_traceparent_wins_over_googles_header(stack):
    w3c, google = secrets.token_hex(16), secrets.token_hex(16)
    r = stack.get("/healthz", headers={"traceparent": traceparent(w3c),
                                       "X-Cloud-Trace-Context": f"{google}/1;o=1"})
    assert app_line(stack, r.headers["X-Request-Id"])["logging.googleapis.com/trace"] == w3c


def test_a_failed_store_call_is_logged_with_the_trace_id(make_stack):
    # A Redis store nobody listens on: the write fails, and its log line (the request's, with
    # the store's error) carries the caller's trace id.
    from harness.hashd_stack import free_port
    stack = make_stack(processes=1, app_env={"HASHD_STORE": f"redis://127.0.0.1:{free_port()}/0"},
                       ready_path="/healthz")
    trace_id = secrets.token_hex(16)
    r = stack.post("/messages", json={"message": "no store"},
                   headers={"traceparent": traceparent(trace_id)})
    assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
    entry = app_line(stack, r.headers["X-Request-Id"])
    assert entry["logging.googleapis.com/trace"] == trace_id, entry
    assert entry["ERROR"] == "store_unavailable" and entry["severity"] == "WARNING", entry
