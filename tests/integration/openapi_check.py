"""Every response the integration suite gets from the stack is checked against docs/openapi.yaml.

The fixture `openapi_responses` (autouse, conftest.py) wraps requests' Session.send for the
duration of each test: every response from an HTTPS URL on localhost (the stacks' nginx;
Prometheus, exporters and store servers listen on 127.0.0.1 and are not the API) is looked
up in the document by path and method and must match it:

  - the status is one the operation lists (a path or method no operation describes: one of
    the document's `x-hashd-other-requests`);
  - the content type is one the response describes (parameters such as charset aside);
  - the body validates against the response's JSON Schema (Draft 2020-12, which OpenAPI
    3.1 schemas are), for JSON and text bodies alike;
  - every header the response marks `required` is there, and every described header that
    is present matches its schema.

Problems are collected rather than raised inside send() (a test's worker threads would
swallow them) and fail the test at teardown, naming request and problem. The plain-HTTP
listener (a 301 redirector), raw http.client requests (test_nginx_paths) and HTTP/2 via
httpx are outside this net.
"""

import json
import pathlib
import re
import threading
import urllib.parse

import jsonschema
import requests
import yaml

SPEC_PATH = pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


class OpenApiChecker:
    def __init__(self, spec_path=SPEC_PATH):
        self.spec = yaml.safe_load(spec_path.read_text())
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=self.spec)
        self.paths = []  # (compiled pattern, template, path item), literal paths first
        for template, item in self.spec["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self.paths.append((re.compile(pattern + r"\Z"), template, item))
        self.paths.sort(key=lambda p: "{" in p[1])
        self.lock = threading.Lock()
        self.problems = []
        self.checked = 0

    def _deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def _validate(self, instance, schema):
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        return [e.message for e in validator.iter_errors(instance)]

    def operation(self, method, path):
        """(description of what was matched, responses) for a request."""
        for pattern, template, item in self.paths:
            if pattern.match(path):
                op = item.get(method.lower())
                if op is not None:
                    return f"{method} {template}", op["responses"]
                return f"{method} {template} (method not described)", self.spec["x-hashd-other-requests"]
        return f"{method} {path} (path not described)", self.spec["x-hashd-other-requests"]

    def problems_of(self, response):
        request = response.request
        path = urllib.parse.urlsplit(request.url).path
        where, responses = self.operation(request.method, path)
        status = str(response.status_code)
        if status not in responses:
            return [f"{where}: status {status} is not described (described: {sorted(responses)})"]
        described = self._deref(responses[status])
        problems = []
        for name, header in described.get("headers", {}).items():
            header = self._deref(header)
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"{where} {status}: required header {name} missing")
                continue
            problems += [f"{where} {status}: header {name}: {m}"
                         for m in self._validate(value, header.get("schema", {}))]
        content = described.get("content")
        if content is None:
            return problems
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type not in content:
            return problems + [f"{where} {status}: content type {media_type!r} is not described "
                               f"(described: {sorted(content)})"]
        schema = content[media_type].get("schema", {})
        if media_type == "application/json":
            try:
                body = json.loads(response.content)
            except ValueError as e:
                return problems + [f"{where} {status}: body is not JSON ({e})"]
        else:
            body = response.text
        problems += [f"{where} {status}: body: {m}" for m in self._validate(body, schema)]
        return problems

    def check(self, response):
        try:
            problems = self.problems_of(response)
        except Exception as e:  # a checker bug must not pass silently either
            problems = [f"openapi_check failed on this response: {e!r}"]
        with self.lock:
            self.checked += 1
            for p in problems:
                self.problems.append(f"{response.request.method} {response.request.url}: {p}")


def is_api_url(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" and parts.hostname == "localhost"


_checker = None


def checker():
    """One checker for the session (the document is parsed once)."""
    global _checker
    if _checker is None:
        _checker = OpenApiChecker()
    return _checker


def install(monkeypatch, c):
    """Wraps requests.Session.send so that each API response is checked by `c`."""
    original = requests.Session.send

    def send(session, request, **kwargs):
        response = original(session, request, **kwargs)
        if is_api_url(request.url):
            # The body is read now (stream=False is requests' default; a streaming caller
            # would lose its stream, so those are left alone).
            if not kwargs.get("stream"):
                c.check(response)
        return response

    monkeypatch.setattr(requests.Session, "send", send)
