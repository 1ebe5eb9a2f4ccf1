#!/usr/bin/python3
"""Bounded open-loop load for the cluster suite, run inside the client namespace.

Open loop: request i is sent at start + i / rate whatever happened to the ones before (a
closed loop would slow down exactly when the group is in trouble and hide the errors).
Bounded: at most rate x duration requests, and the run ends by duration + timeout.
Each request opens its own TLS connection, as many independent clients would, from one
of the given source addresses in turn (the load balancer bans per source address).

Modes:
  hash      POST /v1/hash {"password": <unique>}           (200 expected)
  messages  POST /messages {"message": <unique>}           (201 expected; each
            acknowledged message and its digest is written to --acked)
  mixed     alternately hash and messages
  verify    GET /messages/<digest> for every line of --acked, 20 a second: every
            acknowledged message must read back whole (200 and the same text); a 503 for
            load is asked again up to 5 times

Prints one JSON object: sent, ok, errors by kind ("messages 503 store_unavailable", "hash
conn ConnectionResetError", ...), the seconds (from start) of the first and last error of each
kind, and the achieved rate. Exit status 0 whatever the errors: judging is the caller's.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import ssl
import threading
import time


def one_request(args, context, source, method, path, body, token=None):
    """Returns (status or None, error code or exception name, response body text)."""
    conn = http.client.HTTPSConnection(args.host, args.port, context=context,
                                       timeout=args.timeout, source_address=(source, 0))
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if args.forwarded_for:
            headers["X-Forwarded-For"] = args.forwarded_for
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        code = ""
        if response.status >= 400:
            try:
                code = json.loads(text).get("error", "")
            except ValueError:
                code = "non-json"
        return response.status, code, text
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        return None, type(e).__name__, ""
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--cafile", required=True)
    p.add_argument("--sources", default="", help="comma-separated source addresses, used in turn")
    p.add_argument("--tokens", default="",
                   help="comma-separated API tokens, token i sent from source i (never printed)")
    p.add_argument("--mode", choices=["hash", "messages", "mixed", "verify"], default="hash")
    p.add_argument("--rate", type=float, default=10.0, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    p.add_argument("--threads", type=int, default=48)
    p.add_argument("--tag", default="load", help="prefix of passwords and messages (unique per run)")
    p.add_argument("--acked", help="messages mode: file to append 'digest message' lines to; verify: file to read")
    p.add_argument("--forwarded-for", help="an X-Forwarded-For header to send (a forged one)")
    p.add_argument("--stop-file", help="stop sending (early) once this file exists")
    args = p.parse_args()

    context = ssl.create_default_context(cafile=args.cafile)
    # The LB's certificate names localhost and its address; the client dials the address.
    context.check_hostname = False
    sources = [s for s in args.sources.split(",") if s] or ["0.0.0.0"]
    tokens = [t for t in args.tokens.split(",") if t]
    if tokens and len(tokens) != len(sources):
        p.error("--tokens needs one token per source")

    plan = []  # (method, path, body, message-or-None)
    if args.mode == "verify":
        with open(args.acked) as f:
            for line in f:
                digest, message = line.rstrip("\n").split(" ", 1)
                plan.append(("GET", "/messages/" + digest, None, message))
    else:
        count = int(args.rate * args.duration)
        for i in range(count):
            kind = args.mode if args.mode != "mixed" else ("hash" if i % 2 == 0 else "messages")
            if kind == "hash":
                plan.append(("POST", "/v1/hash", json.dumps({"password": f"{args.tag}-{i}"}), None))
            else:
                msg = f"{args.tag}-message-{i}"
                plan.append(("POST", "/messages", json.dumps({"message": msg}), msg))

    lock = threading.Lock()
    counts = {}
    first, last = {}, {}
    ok = 0
    late = 0
    acked = open(args.acked, "a") if args.acked and args.mode != "verify" else None
    start = time.monotonic()

    def run(i, method, path, body, message):
        nonlocal ok
        source = i % len(sources)
        token = tokens[source] if tokens else None
        status, code, text = one_request(args, context, sources[source], method, path, body, token)
        # A read-back checks durability, not capacity: a refusal for load is asked again
        # after its Retry-After (a few times at most), as a well-behaved client would.
        for _ in range(5 if args.mode == "verify" else 0):
            if status != 503 or code not in ("overloaded", "lb_no_backend"):
                break
            time.sleep(1)
            status, code, text = one_request(args, context, sources[source], method, path, body, token)
        t = round(time.monotonic() - start, 2)
        good = False
        if args.mode == "verify":
            good = status == 200 and json.loads(text).get("message") == message
        elif status in (200, 201):
            good = True
            if method == "POST" and path == "/messages" and status == 201:
                with lock:
                    acked.write(json.loads(text)["digest"] + " " + message + "\n")
        with lock:
            if good:
                ok += 1
            else:
                route = "hash" if path == "/v1/hash" else "messages"
                kind = f"{route} {status} {code}".strip() if status is not None else f"{route} conn {code}"
                if args.mode == "verify" and status == 200:
                    kind = "messages 200 wrong-message"
                counts[kind] = counts.get(kind, 0) + 1
                first.setdefault(kind, t)
                last[kind] = t

    rate = args.rate if args.mode != "verify" else 20.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
        for i, (method, path, body, message) in enumerate(plan):
            if args.stop_file and i % 10 == 0 and os.path.exists(args.stop_file):
                plan = plan[:i]
                break
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 0.5:
                late += 1
            pool.submit(run, i, method, path, body, message)
    elapsed = time.monotonic() - start
    if acked:
        acked.close()
    print(json.dumps({
        "mode": args.mode, "sent": len(plan), "ok": ok, "errors": sum(counts.values()),
        "by_kind": counts, "first_error_s": first, "last_error_s": last,
        "sent_late_over_0.5s": late, "seconds": round(elapsed, 1),
        "rate": round(len(plan) / elapsed, 1) if elapsed else 0,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
