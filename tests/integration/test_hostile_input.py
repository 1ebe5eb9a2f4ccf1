"""Hostile and malformed input against the real stack: each case is something a
client can send, and the answer is a 4xx in the JSON error shape, never a 500 (which pages
on-call through the 5xx alert) and never a silent reinterpretation. Also: a Redis failover
(the old primary answers -READONLY) recovers without a restart.

Cases that nginx itself never forwards (a body shorter than its CONTENT_LENGTH, one over the
app's own limit) are sent straight to a FastCGI socket, as any local process with access to
it could.
"""

import json
import socket
import threading

import pytest
from harness import fastcgi_client
from harness.hashd_stack import Stack, wait_for
from harness.store_servers import RedisServer

FAST_HASH = {"HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"}


def assert_client_error(r, status, code):
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert body["error"] == code, body
    assert body["err_msg"] and body["request_id"]


@pytest.fixture(scope="module")
def fast_stack():
    """One process hashing at cost 4, shared by the cases that only send requests; stopped
    (and checked for unexpected exits) when the module ends."""
    stack = Stack(processes=1, app_env=FAST_HASH).start()
    yield stack
    stack.stop()
    stack.cleanup()


def post_json(stack, path, text):
    return stack.post(path, data=text.encode(), headers={"Content-Type": "application/json"})


def test_json_nested_past_the_limit_is_400_not_500(fast_stack):
    deep = "[" * 500 + "]" * 500
    for path, field in (("/v1/hash", "password"), ("/v1/verify", "password"),
                        ("/messages", "message")):
        assert_client_error(post_json(fast_stack, path, f'{{"{field}":{deep}}}'), 400,
                            "invalid_json")
    assert_client_error(post_json(fast_stack, "/v1/hash", deep), 400, "invalid_json")


def test_lone_surrogates_are_refused_not_converted(fast_stack):
    for text in (r'{"password":"\ud800\u0041"}', r'{"password":"\udc00x"}'):
        assert_client_error(post_json(fast_stack, "/v1/hash", text), 400, "invalid_json")
    assert_client_error(post_json(fast_stack, "/messages", r'{"message":"\ud800\u0041"}'), 400,
                        "invalid_json")
    ok = post_json(fast_stack, "/v1/hash", r'{"password":"\ud83d\ude00"}')  # a real pair
    assert ok.status_code == 200, ok.text


def test_cost_must_be_a_json_integer(fast_stack):
    assert_client_error(post_json(fast_stack, "/v1/hash", '{"password":"pw","cost":"4"}'), 400,
                        "invalid_field")
    form = fast_stack.post("/v1/hash", data="password=pw&cost=4",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 200 and form.json()["cost"] == 4, form.text


def test_malformed_form_encoding_says_so(fast_stack):
    r = fast_stack.post("/v1/hash", data="password=%ZZ",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_client_error(r, 400, "invalid_encoding")


def fcgi_params(stack, path, length, content_type="application/json"):
    return {"REQUEST_METHOD": "POST", "REQUEST_URI": path, "SCRIPT_NAME": path,
            "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(length),
            "REQUEST_ID": "hostile-fcgi-test", "SERVER_PROTOCOL": "HTTP/1.1"}


def test_a_body_shorter_than_its_content_length_is_400(fast_stack):
    sock = fast_stack.run_dir / "hashd-1.sock"
    body = b'{"password":"prefix-only"}'
    status, _, payload = fastcgi_client.request(
        sock, fcgi_params(fast_stack, "/v1/hash", len(body) + 40), body)
    assert status == 400, payload
    assert json.loads(payload)["error"] == "invalid_body"
    # The same body with the right length is served: the check is about the length.
    status, _, payload = fastcgi_client.request(
        sock, fcgi_params(fast_stack, "/v1/hash", len(body)), body)
    assert status == 200, payload


def test_the_apps_413_on_a_password_route_talks_about_passwords(fast_stack):
    sock = fast_stack.run_dir / "hashd-1.sock"
    status, _, payload = fastcgi_client.request(
        sock, fcgi_params(fast_stack, "/v1/hash", 10 * 1024 * 1024), b"")
    assert status == 413, payload
    body = json.loads(payload)
    assert body["error"] == "body_too_large"
    assert "password" in body["err_msg"] and "message" not in body["err_msg"]


def test_no_secret_reaches_the_logs(fast_stack):
    """The hostile requests above carried passwords in bodies and forms: none is logged."""
    fast_stack.assert_not_logged("prefix-only")


# --- Redis failover --------------------------------------------------------------------------

class Relay:
    """A TCP relay on a loopback port that forwards each new connection to `target`: the
    stable address (a VIP, a DNS name, HAProxy) that clients of a Redis pair use. Moving
    the target is the failover; connections made before it stay with the old server, as
    established TCP connections do."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.server.close()
        for s in self.sockets:
            s.close()


def test_redis_failover_readonly_reconnects_without_a_restart(make_stack):
    primary, replica = RedisServer(), RedisServer()
    relay = None
    try:
        primary.start()
        replica.start()
        assert replica.cli("REPLICAOF", "127.0.0.1", str(primary.port)) == "OK"
        relay = Relay(primary.port)
        stack = make_stack(processes=1, app_env={
            **FAST_HASH, "HASHD_THREADS": "1",
            "HASHD_STORE": f"redis://127.0.0.1:{relay.port}/0"})
        pid = stack.pid(1)
        before = stack.post("/messages", json={"message": "before the failover"})
        assert before.status_code == 201, before.text

        # The failover, as Sentinel does it: the replica is promoted, the old primary
        # becomes its replica (read-only), the stable address moves to the new primary.
        assert replica.cli("REPLICAOF", "NO", "ONE") == "OK"
        assert primary.cli("REPLICAOF", "127.0.0.1", str(replica.port)) == "OK"
        relay.target_port = replica.port
        assert "READONLY" in (primary.cli("SET", "probe", "1") or "")

        # Writes recover on their own: a -READONLY reply drops the connection, the next
        # attempt connects through the stable address to the new primary.
        answers = []

        def write_recovered():
            r = stack.post("/messages", json={"message": "after the failover"})
            answers.append(r.status_code)
            return r.status_code == 201

        wait_for(write_recovered, 20, "POST /messages to succeed after the failover",
                 interval=0.5)
        assert answers.count(503) <= 1, answers
        digest = stack.post("/messages", json={"message": "after the failover"}).json()["digest"]
        assert replica.cli("EXISTS", f"hashd:msg:{digest}") == "1"
        assert stack.pid(1) == pid, "recovery must not need a restart"
    finally:
        if relay:
            relay.close()
        primary.cleanup()
        replica.cleanup()
