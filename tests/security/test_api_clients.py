"""API clients, deployment side (issue 21, access control): scripts/hashd-token issues a token
and prints only its digest for the inventory, and the hashd role's tokens.j2 renders
hashd_api_clients into the file the app reads (one entry a line: `token <id> <sha256> <routes>`
and `cert <id> <DN> <routes>`), leaving out expired tokens. The template is rendered with
Jinja2 exactly as the role's template module would (trim_blocks), from the YAML an operator
pastes in.
"""

import hashlib
import pathlib
import re
import subprocess

import jinja2
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/hashd-token"
TEMPLATE = REPO / "ansible/roles/hashd/templates/tokens.j2"
DEFAULTS = yaml.safe_load((REPO / "ansible/roles/hashd/defaults/main.yml").read_text())


def issue(*args):
    r = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    token, entry = r.stdout.split("\n", 1)
    return token, yaml.safe_load(entry)


def render(clients, today):
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)))
    return env.get_template(TEMPLATE.name).render(
        ansible_managed="managed", hashd_api_clients=clients, hashd_api_today=today,
        hashd_api_route_groups=DEFAULTS["hashd_api_route_groups"])


def test_a_token_is_random_well_formed_and_only_its_digest_is_printed_for_ansible():
    token, entries = issue("billing")
    assert re.fullmatch(r"hashd_billing_[A-Za-z0-9_-]{43}", token), token
    (entry,) = entries
    assert entry["id"] == "billing"
    assert entry["tokens"][0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in yaml.safe_dump(entries)
    assert issue("billing")[0] != token
    r = subprocess.run([str(SCRIPT), "--digest"], input=token + "\n", capture_output=True, text=True)
    assert r.stdout.strip() == entry["tokens"][0]["sha256"]


def test_bad_ids_are_refused():
    for bad in ("Billing", "bill_ing", "-x", "a" * 33, ""):
        r = subprocess.run([str(SCRIPT), bad], capture_output=True, text=True)
        assert r.returncode == 2 and not r.stdout, bad


def test_the_tokens_file_lists_current_tokens_and_certificates():
    old, (old_entry,) = issue("billing", "--expires", "2026-12-01")
    new, (new_entry,) = issue("billing")
    clients = [
        {"id": "billing", "routes": ["hash", "verify"],
         "tokens": old_entry["tokens"] + new_entry["tokens"]},
        {"id": "reports", "routes": ["messages"], "certs": ["CN=reports,O=Example Corp"]},
    ]
    sha_old = old_entry["tokens"][0]["sha256"]
    sha_new = new_entry["tokens"][0]["sha256"]
    # The day before the old token expires: both work (rotation overlap).
    lines = [line for line in render(clients, "2026-11-30").splitlines() if line and not line.startswith("#")]
    assert lines == [f"token billing {sha_old} hash,verify", f"token billing {sha_new} hash,verify",
                     "cert reports CN=reports,O=Example Corp messages"]
    # Its expiry day is its last; the day after, only the new one is left.
    assert f"token billing {sha_old} " in render(clients, "2026-12-01")
    text = render(clients, "2026-12-02")
    assert sha_old not in text and f"token billing {sha_new} hash,verify" in text
    assert old not in text and new not in text
