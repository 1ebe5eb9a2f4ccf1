"""The nginx variables have one source, the Ansible nginx role's defaults
(ansible/roles/nginx/defaults/main.yml, and the pool's size in the hashd_pool role both the
nginx and hashd roles depend on), read by the roles and by nginx/render (the local stack)
alike. These keep that source complete, single, and the renderer faithful to it."""

import pathlib
import re
import subprocess
import sys

import yaml

import nginx_render

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
ROLE_DEFAULTS = ROLES / "nginx" / "defaults" / "main.yml"


def test_every_template_variable_has_a_default():
    defaults = nginx_render.load_defaults()
    used = set()
    for template in (REPO / "nginx").rglob("*.j2"):
        for block in re.findall(r"\{[{%](.*?)[}%]\}", template.read_text(), flags=re.S):
            used |= set(re.findall(r"\b(hashd_[a-z0-9_]+)\b", block))
    assert used, "found no template variables: the pattern is broken"
    undefined = sorted(v for v in used if v not in defaults)
    assert not undefined, f"templates use variables without a default: {undefined}"


def test_there_is_no_second_copy_of_the_nginx_defaults():
    assert not (REPO / "nginx" / "defaults.yml").exists()


def test_the_pool_size_is_defined_once_and_both_roles_depend_on_it():
    """hashd_processes and hashd_threads: one definition in Ansible (the hashd_pool role's
    defaults), and the two roles that use them depend on that role."""
    for name in ("hashd_processes", "hashd_threads"):
        defined = [str(p.relative_to(REPO)) for p in sorted(ROLES.glob("*/defaults/main.yml"))
                   if name in (yaml.safe_load(p.read_text()) or {})]
        assert defined == ["ansible/roles/hashd_pool/defaults/main.yml"], (name, defined)
    for role in ("hashd", "nginx"):
        meta = yaml.safe_load((ROLES / role / "meta" / "main.yml").read_text())
        assert {"role": "hashd_pool"} in meta["dependencies"], role


def test_render_takes_the_role_defaults_and_evaluates_the_pool_size(tmp_path):
    out = tmp_path / "nginx"
    subprocess.run([sys.executable, str(REPO / "nginx" / "render"), str(out)], check=True)
    site = (out / "hashd" / "site.conf").read_text()
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    assert f"rate={defaults['hashd_nginx_hash_rate']}" in site
    # hashd_processes is the role's Ansible expression, evaluated with this machine's CPUs.
    cpus = len([line for line in open("/proc/cpuinfo") if line.startswith("processor")])
    assert site.count("server unix:/run/hashd/hashd-") == 2 * cpus
