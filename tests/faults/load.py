"""A bounded concurrent client load for the fault tests.

Load(stack).start() runs `clients` threads against a stack, each with its own HTTPS session,
alternating POST /messages (a new message every time) and POST /v1/hash (cost 4), until
stop() is called, `max_requests` were sent in all, or `max_seconds` passed, whichever comes
first: a load loop is always bounded in count and in time. It records what a client saw:
the requests sent, the answers by kind, every error (by kind, with a few examples) and the
acknowledged messages (digest -> message of every 201), which the test reads back later.
"""

import collections
import hashlib
import itertools
import json
import threading
import time

import requests

REQUEST_TIMEOUT_S = 60.0  # per request; generous, a loaded 2-core machine is slow
EXAMPLES_KEPT = 5


def digest_of(message):
    return hashlib.sha256(message.encode("utf-8")).hexdigest()


class Load:
    def __init__(self, stack, clients=8, max_requests=50_000, max_seconds=900.0,
                 kinds=("message", "hash"), tag="load"):
        self.stack = stack
        self.clients = clients
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.kinds = kinds
        self.tag = tag
        self.lock = threading.Lock()
        self.sent = 0
        self.answers = collections.Counter()   # "message 201", "hash 200", ...
        self.errors = collections.Counter()    # "message 502", "hash ConnectionError", ...
        self.examples = []
        self.acknowledged = {}
        self._stop = threading.Event()
        self._threads = []
        self._serial = itertools.count()
        self.started_at = None
        self.seconds = 0.0

    def start(self):
        self.started_at = time.monotonic()
        for n in range(self.clients):
            t = threading.Thread(target=self._client, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(REQUEST_TIMEOUT_S + 10)
        self.seconds = time.monotonic() - self.started_at
        return self

    def _take_ticket(self):
        with self.lock:
            if (self._stop.is_set() or self.sent >= self.max_requests
                    or time.monotonic() - self.started_at > self.max_seconds):
                return None
            self.sent += 1
            return next(self._serial)

    def _client(self, n):
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.stack.cert)
        with session:
            for i in itertools.count():
                ticket = self._take_ticket()
                if ticket is None:
                    return
                kind = self.kinds[(n + i) % len(self.kinds)]
                self._one(session, kind, ticket)

    def _one(self, session, kind, ticket):
        message = None
        try:
            if kind == "message":
                message = f"{self.tag} message {ticket} {time.time_ns()}"
                r = session.post(self.stack.url("/messages"), data=json.dumps({"message": message}),
                                 headers={"Content-Type": "application/json"},
                                 timeout=REQUEST_TIMEOUT_S)
                ok = r.status_code == 201 and r.json().get("digest") == digest_of(message)
            else:
                r = session.post(self.stack.url("/v1/hash"),
                                 data=json.dumps({"password": f"{self.tag}-pw-{ticket}", "cost": 4}),
                                 headers={"Content-Type": "application/json"},
                                 timeout=REQUEST_TIMEOUT_S)
                ok = r.status_code == 200 and r.json().get("bcrypt", "").startswith("$2b$04$")
            label = f"{kind} {r.status_code}"
            detail = r.text[:200]
        except (requests.RequestException, ValueError) as e:
            ok, label, detail = False, f"{kind} {type(e).__name__}", str(e)[:200]
        with self.lock:
            if ok:
                self.answers[label] += 1
                if message is not None:
                    self.acknowledged[digest_of(message)] = message
            else:
                self.errors[label] += 1
                if len(self.examples) < EXAMPLES_KEPT:
                    self.examples.append(f"{label}: {detail}")

    def error_count(self):
        return sum(self.errors.values())

    def report(self, counts):
        counts.add("seconds", round(self.seconds, 1))
        counts.add("clients", self.clients)
        counts.add("sent", self.sent)
        counts.add("answered_ok", sum(self.answers.values()))
        counts.add("errors", self.error_count())
        counts.add("errors_by_kind", dict(self.errors) or "{}")
        counts.add("acknowledged", len(self.acknowledged))


def lost_messages(stack, acknowledged):
    """The acknowledged messages that cannot be read back intact: {digest: what came back}."""
    lost = {}
    session = requests.Session()
    session.trust_env = False
    session.verify = str(stack.cert)
    with session:
        for digest, message in acknowledged.items():
            try:
                r = session.get(stack.url(f"/messages/{digest}"), timeout=REQUEST_TIMEOUT_S)
                if r.status_code != 200 or r.json() != {"message": message}:
                    lost[digest] = f"{r.status_code} {r.text[:100]}"
            except (requests.RequestException, ValueError) as e:
                lost[digest] = type(e).__name__
    return lost
