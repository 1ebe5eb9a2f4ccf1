#!/usr/bin/env python3
"""A small client of hashd's API (python3-requests), with the behaviour a caller needs.

- Overload: hashd refuses a hashing request at once with 503 when the work queued ahead of it
  would not finish in time, and says when to come back (`Retry-After-Ms`, finer than
  `Retry-After`). This client waits that long plus a random jitter (so that refused callers do
  not all return at the same instant) and tries again, a bounded number of times and within
  a bounded total time; then it gives up with Unavailable. Retrying at once instead makes
  things worse: a client that does measured less than half the throughput (bench/).
- Login: `login()` verifies the password and, when hashd says `needs_rehash` (the stored hash
  is below the current cost policy or an old variant), returns a fresh hash to store.
- Secrets: the password goes in a POST body only (never in a URL) and is never logged; log
  lines name the route, the status and the request id (quote it to the operators).

Use as a module (HashdClient) or from the command line, reading the password from stdin:
    printf '%s' "$password" | examples/client.py --url https://localhost:8443 \\
        --cacert .local/tls/localhost.crt hash
    printf '%s' "$password" | examples/client.py ... login '$2b$10$...'
"""

import argparse
import json
import logging
import random
import sys
import time

import requests

log = logging.getLogger("hashd.client")


class HashdError(Exception):
    """An answer that is not a success: the status, hashd's error code and request id."""

    def __init__(self, status, error, message, request_id):
        super().__init__(f"{status} {error}: {message} (request {request_id})")
        self.status, self.error, self.request_id = status, error, request_id


class Unavailable(HashdError):
    """Still 503 after every attempt the client allows."""


class HashdClient:
    def __init__(self, base_url, verify=True, timeout=30, max_attempts=5, max_total_wait=10.0,
                 max_jitter=0.5, session=None, sleep=time.sleep, rng=random.random):
        """max_attempts: requests per call, the first included; max_total_wait: seconds of
        waiting between them, at most; max_jitter: the random part added to each wait, as a
        fraction of it (0.5: wait between 1x and 1.5x what hashd asked)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_total_wait = max_total_wait
        self.max_jitter = max_jitter
        self.session = session or requests.Session()
        # Given with each request: a session's own `verify` loses to REQUESTS_CA_BUNDLE from
        # the environment (requests issue 3829).
        self.tls_verify = verify
        self.sleep, self.rng = sleep, rng
        self.retries = 0  # 503s retried, over the client's life (for tests and metrics)

    def hash(self, password, cost=None):
        """{"salt", "hash", "bcrypt", "cost"} of a new bcrypt hash of `password`."""
        body = {"password": password}
        if cost is not None:
            body["cost"] = cost
        return self._post("/v1/hash", body)

    def verify(self, password, stored_hash):
        """{"match": bool, "needs_rehash": bool}."""
        return self._post("/v1/verify", {"password": password, "hash": stored_hash})

    def login(self, password, stored_hash):
        """(matches, new_hash): new_hash is a fresh bcrypt string to store in place of
        `stored_hash` when the password matched and hashd says the old one needs a rehash,
        else None. Only a matching password is ever rehashed."""
        result = self.verify(password, stored_hash)
        if not result["match"]:
            return False, None
        if result["needs_rehash"]:
            return True, self.hash(password)["bcrypt"]
        return True, None

    def retry_delay(self, response):
        """Seconds to wait before retrying a 503: Retry-After-Ms (else Retry-After, else 1 s),
        plus up to max_jitter of it at random."""
        try:
            base = int(response.headers["Retry-After-Ms"]) / 1000
        except (KeyError, ValueError):
            try:
                base = float(response.headers.get("Retry-After", "1"))
            except ValueError:
                base = 1.0
        return base * (1 + self.max_jitter * self.rng())

    def _post(self, path, body):
        waited = 0.0
        for attempt in range(1, self.max_attempts + 1):
            response = self.session.post(self.base_url + path, json=body, timeout=self.timeout,
                                         verify=self.tls_verify)
            request_id = response.headers.get("X-Request-Id", "?")
            if response.status_code == 200:
                log.debug("POST %s: 200 (request %s, attempt %d)", path, request_id, attempt)
                return response.json()
            error = self._error(response)
            if response.status_code != 503:
                raise error
            delay = self.retry_delay(response)
            if attempt == self.max_attempts or waited + delay > self.max_total_wait:
                log.warning("POST %s: 503 %s (request %s); giving up after %d attempts",
                            path, error.error, request_id, attempt)
                raise Unavailable(error.status, error.error, str(error), request_id)
            log.info("POST %s: 503 %s (request %s); retrying in %.3f s", path, error.error,
                     request_id, delay)
            self.retries += 1
            self.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")

    @staticmethod
    def _error(response):
        try:
            body = response.json()
        except ValueError:
            body = {}
        return HashdError(response.status_code, body.get("error", "unknown"),
                          body.get("err_msg", response.reason),
                          body.get("request_id", response.headers.get("X-Request-Id", "?")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="https://localhost:8443")
    parser.add_argument("--cacert", help="CA or certificate to trust (default: the system's)")
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    hash_cmd = sub.add_parser("hash", help="hash the password read from stdin")
    hash_cmd.add_argument("--cost", type=int)
    login_cmd = sub.add_parser("login", help="check the password from stdin against a hash")
    login_cmd.add_argument("stored_hash")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Not argv: a command line is visible to every user of the machine (ps).
    password = sys.stdin.read().rstrip("\n")
    client = HashdClient(args.url, verify=args.cacert or True, max_attempts=args.attempts)
    try:
        if args.command == "hash":
            out = client.hash(password, args.cost)
        else:
            matches, new_hash = client.login(password, args.stored_hash)
            out = {"match": matches, "new_hash": new_hash}
    except HashdError as e:
        log.error("%s", e)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
