"""The OpenAPI check itself: it passes what docs/openapi.yaml describes and fails what it
does not, on real responses of the stack (so a checker that passes everything cannot hide
behind a green suite)."""

import copy
import hashlib

import openapi_check


def test_described_responses_pass(stack, openapi_responses):
    before = openapi_responses.checked
    digest = stack.post("/messages", json={"message": "openapi"}).json()["digest"]
    assert stack.get(f"/messages/{digest}").status_code == 200
    assert stack.get("/messages/" + "0" * 64).status_code == 404
    assert stack.get("/v1/hash").status_code == 405
    assert stack.get("/no/such/path").status_code == 404
    assert stack.get("/multivac").status_code == 200
    assert openapi_responses.checked - before == 6


def test_undescribed_responses_fail(stack):
    checker = openapi_check.OpenApiChecker()
    spec = checker.spec
    # A status the operation does not list, a required header the response lacks, a body
    # field the schema forbids, a content type it does not describe.
    del spec["paths"]["/messages/{digest}"]["get"]["responses"]["404"]
    spec["components"]["headers"]["X-Request-Id"]["schema"]["pattern"] = "^never$"
    spec["components"]["schemas"]["Digest"]["properties"]["digest"]["pattern"] = "^x$"
    spec["paths"]["/"]["get"]["responses"]["200"]["content"] = {"application/json": {}}
    unknown = hashlib.sha256(b"never stored by anyone").hexdigest()
    for response in [stack.get(f"/messages/{unknown}"),
                     stack.post("/messages", json={"message": "openapi"}),
                     stack.get("/")]:
        checker.check(copy.copy(response))
    problems = "\n".join(checker.problems)
    assert "status 404 is not described" in problems, problems
    assert "header X-Request-Id" in problems, problems
    assert "body:" in problems and "does not match '^x$'" in problems, problems
    assert "content type 'text/html' is not described" in problems, problems
