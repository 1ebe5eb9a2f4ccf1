"""Fixtures of the Nomad tests (`make nomad-test`): the Nomad template renderer, the test
certificate and the app binary (the parser and schema check are in hcl.py)."""

import os
import pathlib
import subprocess

import pytest

# tests/nomad's own modules; pytest puts this folder (no __init__.py) on the path.
from hcl import HERE, REPO


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
