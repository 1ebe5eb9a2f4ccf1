"""testssl.sh (Debian's testssl.sh 3.0.8) against the local stack's HTTPS listener: no
finding of severity MEDIUM or above, except those the self-signed test certificate causes,
each listed below with its reason. testssl's exit code says nothing about findings, so its
JSON is read (shared/NOTES.md). About 80 s."""

import json
import subprocess

import pytest

from harness.hashd_stack import Stack

GATED = {"MEDIUM", "HIGH", "CRITICAL", "FATAL"}

# Findings a self-signed test certificate causes and a real deployment's certificate does not:
# id -> reason. Empty today: the test certificate carries subjectAltName (DNS:localhost,
# IP:127.0.0.1), a CRL distribution point and 365 days of validity, and the scan is told to
# trust it (--add-ca), which is how every client of a self-signed deployment is set up.
SELF_SIGNED_EXCEPTIONS = {}


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    stack = Stack(processes=1).start()
    out = tmp_path_factory.mktemp("testssl") / "testssl.json"
    try:
        result = subprocess.run(
            ["testssl", "--quiet", "--warnings", "batch", "--color", "0", "--nodns", "none",
             "--ip", "127.0.0.1", "--add-ca", str(stack.cert), "--jsonfile", str(out),
             "-p", "-s", "-f", "-P", "-S", "-h", "-U", f"https://localhost:{stack.https_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    finally:
        stack.stop()
    assert out.exists(), result.stdout[-3000:]
    findings = json.loads(out.read_text())
    stack.cleanup()
    return findings


def test_the_scan_ran_every_section(scan):
    ids = {f["id"] for f in scan}
    # One finding of each requested section, so a scan that stopped early cannot pass.
    for expected in ("TLS1_3", "cipherorder_TLSv1_2", "cert_subjectAltName", "HSTS_time",
                     "X-Content-Type-Options", "heartbleed", "scanTime"):
        assert expected in ids, f"testssl reported no {expected}: {sorted(ids)[:40]}"


def test_no_medium_or_worse_finding_beyond_the_listed_exceptions(scan):
    gated = [f for f in scan if f["severity"] in GATED and f["id"] not in SELF_SIGNED_EXCEPTIONS]
    assert not gated, "\n".join(f"{f['severity']} {f['id']}: {f['finding']}" for f in gated)


def test_the_certificate_findings_a_self_signed_one_used_to_cause_are_ok(scan):
    by_id = {f["id"]: f for f in scan}
    assert by_id["cert_chain_of_trust"]["severity"] == "OK", by_id["cert_chain_of_trust"]
    assert by_id["cert_crlDistributionPoints"]["finding"].startswith("http"), by_id["cert_crlDistributionPoints"]
    assert "localhost" in by_id["cert_subjectAltName"]["finding"]
