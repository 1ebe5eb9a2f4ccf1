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
import pathlib
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


# --- Slow big bodies (issue 21, finding 8) -------------------------------------------------
#
# nginx allocates a request's body buffer from its Content-Length, up to
# client_body_buffer_size, and keeps it until the body is complete or client_body_timeout
# (10 s between two reads) ends it. So a client that announces a large body, sends most of
# it and then trickles the rest holds that much of nginx's memory per connection for as long
# as it likes. The limits are per route (nginx/hashd/site.conf.j2): the hashing routes take a
# few KiB (a password is at most 72 bytes), only /messages and /multivac/data take large
# bodies, and those a few at a time per client (hashd_nginx_body_conn_per_client). Measured:
# the resident memory (RSS, and PSS) of nginx's workers from /proc, before and while the
# slow connections hold their bodies.

BIG_BODY = 399 * 1024  # announced: under the old 400k limit on every route
PUSHED = 390 * 1024  # sent at once; the rest trickles
HASH_CONNECTIONS = 200
HASH_ADDRESSES = [f"127.0.1.{i}" for i in range(1, 41)]  # 5 each: within the hash burst
MESSAGE_CONNECTIONS = 60  # from one address: within its connection limit (64)
HOLD_S = 6.0
# An idle TLS connection with a small request costs nginx a few tens of KiB; a held body
# buffer costs its size. Bounds per connection, far below the 390 KiB a buffer would hold.
OVERHEAD_PER_CONNECTION = 64 * 1024
# What one client may hold in large bodies at once: the production default of
# hashd_nginx_body_conn_per_client (ansible/roles/nginx/defaults/main.yml), about 3 MiB.
MESSAGE_BODIES_PER_CLIENT = 8


def nginx_worker_memory(stack):
    """(RSS, PSS) in bytes summed over nginx's worker processes (the master holds no
    connection)."""
    master = stack.nginx_pid()
    rss = pss = 0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != master:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss


class BigBodyClient:
    """A POST announcing BIG_BODY bytes, PUSHED of them sent at once, the rest one byte per
    tick(). status() says what nginx answered before the body was complete (413, 429), or
    "reset" when it closed the connection first (after a 413, nginx's lingering close may
    reset a sender that keeps sending), or "" while it is still waiting for the body."""

    def __init__(self, stack, source, path, context):
        raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=30,
                                       source_address=(source, 0))
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.sock.settimeout(5)
        self.open = True
        self.reset = False
        self.answer = b""
        head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Type: application/json\r\nContent-Length: {BIG_BODY}\r\n\r\n").encode()
        self.pending = b'{"message":"' + b"m" * (BIG_BODY - 14) + b'"}'
        try:
            self.sock.sendall(head + self.pending[:PUSHED])
            self.pending = self.pending[PUSHED:]
        except (OSError, ssl.SSLError):
            self.close(reset=True)

    def tick(self):
        if not self.open:
            return
        try:
            self.sock.sendall(self.pending[:1])
            self.pending = self.pending[1:]
        except (OSError, ssl.SSLError):
            self.close(reset=True)

    def status(self):
        if self.open:
            self.sock.setblocking(False)
            try:
                while True:
                    data = self.sock.recv(4096)
                    if not data:
                        self.reset = True
                        break
                    self.answer += data
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                self.reset = True
            finally:
                self.sock.setblocking(True)
        head = self.answer.split(b"\r\n", 1)[0].split()
        if len(head) > 1:
            return head[1].decode()
        return "reset" if self.reset else ""

    def close(self, reset=False):
        self.reset = self.reset or reset
        if self.open:
            self.open = False
            try:
                self.sock.close()
            except OSError:
                pass


def hold_big_bodies(stack, paths_and_sources):
    """Opens one BigBodyClient per (path, source), trickles for HOLD_S, then returns
    (memory before, memory while held, statuses)."""
    context = ssl.create_default_context(cafile=str(stack.cert))
    before = nginx_worker_memory(stack)
    clients = []
    try:
        for path, source in paths_and_sources:
            clients.append(BigBodyClient(stack, source, path, context))
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            for c in clients:
                c.tick()
            time.sleep(1.0)
        held = nginx_worker_memory(stack)
        statuses = [c.status() for c in clients]
    finally:
        for c in clients:
            c.close()
    return before, held, statuses


def test_slow_big_bodies_on_hashing_routes_hold_no_memory(make_stack, counts):
    stack = make_stack(processes=1, app_env={"HASHD_COST_MIN": "4", "HASHD_COST_DEFAULT": "4"},
                       nginx={"conn_per_client": 64})
    targets = [("/v1/hash" if i % 2 == 0 else "/v1/verify", HASH_ADDRESSES[i % len(HASH_ADDRESSES)])
               for i in range(HASH_CONNECTIONS)]
    (rss0, pss0), (rss1, pss1), statuses = hold_big_bodies(stack, targets)
    growth = rss1 - rss0
    counts.add("connections", HASH_CONNECTIONS)
    counts.add("announced_kib", BIG_BODY // 1024)
    counts.add("answered", {s or "waiting": statuses.count(s) for s in set(statuses)})
    counts.add("nginx_rss_mib", f"{rss0 / 2**20:.1f}->{rss1 / 2**20:.1f}")
    counts.add("nginx_pss_mib", f"{pss0 / 2**20:.1f}->{pss1 / 2**20:.1f}")
    counts.add("growth_per_conn_kib", round(growth / HASH_CONNECTIONS / 1024, 1))
    # A password request is a few hundred bytes: nginx refuses the announced body at once
    # (413, or the connection reset by its lingering close), and holds none.
    assert statuses.count("") == 0, statuses
    assert statuses.count("413") + statuses.count("reset") == HASH_CONNECTIONS, statuses
    assert growth <= HASH_CONNECTIONS * OVERHEAD_PER_CONNECTION, \
        f"nginx workers grew {growth / 2**20:.1f} MiB for {HASH_CONNECTIONS} slow hashing requests"


def test_slow_big_bodies_on_messages_are_few_per_client(make_stack, counts):
    stack = make_stack(processes=1, nginx={"conn_per_client": 64})
    per_client = MESSAGE_BODIES_PER_CLIENT
    targets = [("/messages", "127.0.0.2")] * MESSAGE_CONNECTIONS
    (rss0, pss0), (rss1, pss1), statuses = hold_big_bodies(stack, targets)
    growth = rss1 - rss0
    held = statuses.count("")
    counts.add("connections", MESSAGE_CONNECTIONS)
    counts.add("body_conn_per_client", per_client)
    counts.add("answered", {s or "waiting": statuses.count(s) for s in set(statuses)})
    counts.add("nginx_rss_mib", f"{rss0 / 2**20:.1f}->{rss1 / 2**20:.1f}")
    counts.add("nginx_pss_mib", f"{pss0 / 2**20:.1f}->{pss1 / 2**20:.1f}")
    counts.add("growth_mib", round(growth / 2**20, 1))
    # A message body is allowed (up to 400 KiB), but only a few of one client's at a time;
    # the others are refused (JSON 429) before any buffer is allocated.
    assert held <= per_client, statuses
    assert statuses.count("429") + statuses.count("reset") == MESSAGE_CONNECTIONS - held, statuses
    bound = held * (400 * 1024 + OVERHEAD_PER_CONNECTION) + MESSAGE_CONNECTIONS * OVERHEAD_PER_CONNECTION
    assert growth <= bound, f"nginx workers grew {growth / 2**20:.1f} MiB (bound {bound / 2**20:.1f} MiB)"
