"""An enqueue retried is stored once, on each backend.

POST /multivac/data is the only route that enqueues (POST /messages stores by content digest
and is idempotent by construction). Its retries come from three places: a client that lost the
answer and sends again with the same Idempotency-Key header, nginx re-sending the request to
another process (fastcgi_next_upstream non_idempotent: the same $request_id), and a load
balancer replaying it to another VM (HAProxy's retry-on, which keeps the X-Request-Id it set).
Each must leave one datum in the queue, and the retry must get the same answer as the first.
No worker runs, so what the queue holds is what was stored.
"""

import uuid

from integration.test_multivac import UPDATED, Inspector, app_env


def post(stack, datum, headers):
    return stack.session.post(stack.url("/multivac/data"), data={"data": datum},
                              headers=headers, verify=str(stack.cert), timeout=30)


def test_same_idempotency_key_or_request_id_stores_one_datum(make_stack, store):
    stack = make_stack(processes=2, app_env=app_env(store))
    inspector = Inspector(store)

    for header in ("Idempotency-Key", "X-Request-Id"):
        before = inspector.depth()
        key = uuid.uuid4().hex
        first = post(stack, f"datum under {header}", {header: key})
        again = post(stack, f"datum under {header}", {header: key})
        assert (first.status_code, first.content) == (200, UPDATED), first.text
        assert (again.status_code, again.content) == (200, UPDATED), again.text
        assert inspector.depth() == before + 1, f"{header}: a retry was stored twice"
        assert first.headers["X-Datum-Id"] == again.headers["X-Datum-Id"]

    # Without a key each post is its own datum.
    before = inspector.depth()
    a = post(stack, "no key", {})
    b = post(stack, "no key", {})
    assert inspector.depth() == before + 2
    assert a.headers["X-Datum-Id"] != b.headers["X-Datum-Id"]
