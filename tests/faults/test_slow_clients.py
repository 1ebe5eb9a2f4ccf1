"""Slow clients (slowloris) do not starve normal ones.

A bounded attack from ten loopback addresses (127.0.0.2-11, so that it is not one client
to the per-client limits, and 127.0.0.1, the normal client, is another): SLOW_HEADERS
connections that send their request headers one byte a second, and SLOW_BODIES that send
complete headers of a POST and then its body one byte a second. Meanwhile a normal client
sends hash and message requests one after another, and every one must succeed.

Why it holds: nginx is event-driven (an idle connection costs it memory, not a thread),
it buffers a whole request body before it hands the request to a FastCGI process
(fastcgi_request_buffering, the default), so a slow body never ties up a hashd worker,
and client_header_timeout (10 s, for the whole header) / client_body_timeout (10 s between
two reads) drop what is too slow. The attack is far below worker_connections (1024 per
worker here, 4096 in production); a flood beyond that is a capacity question, not this one.
The per-client limit (hashd_nginx_conn_per_client, production's 64 here) is left in force.
"""

import json
import socket
import ssl
import threading
import time

import requests

ATTACKER_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 12)]
SLOW_HEADERS = 150
SLOW_BODIES = 150
ATTACK_SECONDS = 15.0
TRICKLE_INTERVAL_S = 1.0
NORMAL_REQUESTS = 40
NORMAL_PAUSE_S = 0.25


class SlowClient:
    """One attacking connection: TLS to nginx from a given source address, then a request
    sent one byte per tick()."""

    def __init__(self, stack, source, kind, context):
        raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=30,
                                       source_address=(source, 0))
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.sock.settimeout(5)
        self.kind = kind
        self.open = True
        if kind == "headers":
            self.pending = (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                            + b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n")
        else:
            head = (b"POST /messages HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
            self.sock.sendall(head)
            self.pending = b'{"message":"' + b"b" * 3980 + b'"}'
        if kind == "headers":
            self.sock.sendall(self.pending[:20])
            self.pending = self.pending[20:]

    def tick(self):
        if not self.open or not self.pending:
            return
        try:
            self.sock.sendall(self.pending[:1])
            self.pending = self.pending[1:]
        except (OSError, ssl.SSLError):
            self.close()

    def peer_closed(self):
        """True when nginx has closed (or reset) the connection."""
        if not self.open:
            return True
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(1)
            closed = data == b""
        except ssl.SSLWantReadError:
            closed = False
        except (OSError, ssl.SSLError):
            closed = True
        finally:
            if self.open:
                self.sock.setblocking(True)
                self.sock.settimeout(5)
        if closed:
            self.close()
        return closed

    def close(self):
        if self.open:
            self.open = False
            try:
                self.sock.close()
            except OSError:
                pass


def test_slow_clients_do_not_starve_normal_clients(make_stack, counts):
    stack = make_stack(processes=2,
                       app_env={"HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"},
                       nginx={"conn_per_client": 64})
    context = ssl.create_default_context(cafile=str(stack.cert))
    attackers = []
    try:
        for i in range(SLOW_HEADERS + SLOW_BODIES):
            kind = "headers" if i < SLOW_HEADERS else "bodies"
            attackers.append(SlowClient(stack, ATTACKER_ADDRESSES[i % len(ATTACKER_ADDRESSES)],
                                        kind, context))
        stop = threading.Event()

        def trickle():
            deadline = time.monotonic() + ATTACK_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                for a in attackers:
                    a.tick()
                stop.wait(TRICKLE_INTERVAL_S)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()

        results, latencies = [], []
        session = stack.session
        for i in range(NORMAL_REQUESTS):
            started = time.monotonic()
            try:
                if i % 2 == 0:
                    r = session.post(stack.url("/v1/hash"), timeout=60,
                                     json={"password": f"normal-{i}", "cost": 4})
                    ok = r.status_code == 200
                else:
                    r = session.post(stack.url("/messages"), timeout=60,
                                     data=json.dumps({"message": f"normal client {i}"}),
                                     headers={"Content-Type": "application/json"})
                    ok = r.status_code == 201
                results.append("ok" if ok else str(r.status_code))
            except requests.RequestException as e:
                results.append(type(e).__name__)
            latencies.append(time.monotonic() - started)
            time.sleep(NORMAL_PAUSE_S)
        trickler.join(ATTACK_SECONDS + 60)
        stop.set()
        closed = {kind: sum(1 for a in attackers if a.kind == kind and a.peer_closed())
                  for kind in ("headers", "bodies")}
    finally:
        for a in attackers:
            a.close()

    counts.add("slow_header_conns", SLOW_HEADERS)
    counts.add("slow_body_conns", SLOW_BODIES)
    counts.add("attack_s", ATTACK_SECONDS)
    counts.add("closed_by_nginx", closed)
    counts.add("normal_sent", len(results))
    counts.add("normal_ok", results.count("ok"))
    counts.add("normal_errors", {k: results.count(k) for k in set(results) - {"ok"}} or "{}")
    counts.add("normal_max_ms", round(max(latencies) * 1000))
    assert results.count("ok") == NORMAL_REQUESTS, f"normal client starved: {results}"
