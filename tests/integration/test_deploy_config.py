"""The nginx variables have two readers: scripts/run-local (nginx/defaults.yml) and the
Ansible nginx role (its defaults/main.yml, since a role cannot take defaults from outside
itself). This keeps the two from drifting apart: a variable added or changed in one and not
the other fails here, not on a VM."""

import pathlib
import re

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
# Where the role knowingly differs: it sizes the pool from the host's vCPUs.
ROLE_OVERRIDES = {"hashd_processes"}


def test_nginx_role_defaults_match_the_local_defaults():
    local = yaml.safe_load((REPO / "nginx" / "defaults.yml").read_text())
    role = yaml.safe_load((REPO / "ansible" / "roles" / "nginx" / "defaults" / "main.yml").read_text())
    missing = sorted(set(local) - set(role))
    assert not missing, f"the nginx role's defaults lack {missing}"
    differing = {k: (local[k], role[k]) for k in local
                 if k not in ROLE_OVERRIDES and local[k] != role[k]}
    assert not differing, f"nginx/defaults.yml and the role disagree: {differing}"


def test_every_template_variable_has_a_default():
    local = yaml.safe_load((REPO / "nginx" / "defaults.yml").read_text())
    used = set()
    for template in (REPO / "nginx").rglob("*.j2"):
        for block in re.findall(r"\{[{%](.*?)[}%]\}", template.read_text(), flags=re.S):
            used |= set(re.findall(r"\b(hashd_[a-z0-9_]+)\b", block))
    assert used, "found no template variables: the pattern is broken"
    undefined = sorted(v for v in used if v not in local)
    assert not undefined, f"templates use variables without a default: {undefined}"
