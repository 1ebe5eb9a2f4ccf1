"""Fixtures of the Nomad tests (`make nomad-test`): HashiCorp's HCL parser, the schema check,
the Nomad template renderer and the test certificate."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import jobspec  # noqa: E402

HASHD_JOB = REPO / "nomad" / "hashd.nomad.hcl"
EDGE_JOB = REPO / "nomad" / "hashd-edge.nomad.hcl"


def parse_many(paths):
    """HashiCorp's HCL parser (npm @cdktf/hcl2json) over several files in one process:
    {path: (JSON, None) or (None, the parser's error)}."""
    result = subprocess.run(["node", str(HERE / "hcl2json.js"), "--many", *map(str, paths)],
                            capture_output=True, text=True, timeout=300, cwd=HERE, check=True)
    out = json.loads(result.stdout)
    return {p: (out[str(p)].get("json"), out[str(p)].get("error")) for p in paths}


def parse_hcl(path):
    return parse_many([path])[path]


def check_parsed(parsed, error, overrides=None):
    """The schema check of one parse result: (errors, jobs); a syntax error comes alone."""
    if error:
        return [f"syntax: {error}"], {}
    return jobspec.check(parsed, overrides)


def validate(path, overrides=None):
    """Parse + schema check of one file: (errors, jobs)."""
    return check_parsed(*parse_hcl(path), overrides)


@pytest.fixture(scope="session")
def renderer(tmp_path_factory):
    """tests/nomad/nomad-template, built once with Debian's Go (offline: stdlib only)."""
    out = tmp_path_factory.mktemp("nomad-template") / "nomad-template"
    cache = REPO / os.environ.get("BUILD_DIR", "build") / "nomad-gocache"
    env = dict(os.environ, GOCACHE=str(cache), GOFLAGS="-mod=mod", GOPROXY="off",
               GO111MODULE="on", CGO_ENABLED="0")
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=HERE / "nomad-template", env=env,
                   check=True, timeout=300)
    # Tasks run as nobody when the tests run as root: the renderer itself runs as the tester.
    return out


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost (the name the tests connect to)."""
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "hashd.crt", d / "hashd.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture(scope="session")
def hashd_binary():
    binary = pathlib.Path(os.environ.get("HASHD_FCGI_BIN") or REPO / "build/fcgi-app/hashd-fcgi")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run `make build`")
    return binary
