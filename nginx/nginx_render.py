"""hashd's nginx configuration renderer: the one module behind nginx/render (the command),
nomad/generate (the Nomad job's nginx templates) and scripts/run-local (the local stack).

Variables come from the hashd_* entries of the Ansible nginx role's defaults
(ansible/roles/nginx/defaults/main.yml and the pool's size in ansible/roles/hashd_pool,
their one source, with the reasoning of each), then
each vars file, then the overrides (`--set NAME=VALUE` takes VALUE as YAML, so
`hashd_processes=4` is a number). A name missing from the defaults is an error
(RenderError): a typo must not silently keep a default. A default that is an Ansible
expression ("{{ ... }}") is evaluated here with Jinja2 and this machine's facts (only
`ansible_facts.processor_vcpus`), unless an override replaced it. The output is nginx.conf
plus hashd/, the layout nginx expects (relative includes resolve against nginx.conf's
directory).

The Ansible nginx role renders the same *.j2 files with its template module; this module
uses the same Jinja2 settings (trim_blocks on, lstrip_blocks off) so both produce the
same bytes.
"""

import os
import pathlib

import jinja2
import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROLES = HERE.parent / "ansible" / "roles"
# The nginx role's defaults, and those of the hashd_pool role it depends on (the pool's size).
DEFAULTS_FILES = [ROLES / "hashd_pool" / "defaults" / "main.yml", ROLES / "nginx" / "defaults" / "main.yml"]
DEFAULTS = DEFAULTS_FILES[-1]


class RenderError(ValueError):
    """A variable the defaults do not name, or an override that is not NAME=VALUE."""


def load_defaults():
    """The template variables (hashd_*) of the nginx role's defaults; the role's own
    settings (nginx_*) are Ansible's business."""
    values = {}
    for path in DEFAULTS_FILES:
        role = yaml.safe_load(path.read_text())
        values.update({name: value for name, value in role.items() if name.startswith("hashd_")})
    return values


def evaluate_expressions(values):
    """Renders the defaults that are Ansible expressions, as Ansible would on this machine."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    context = {**values, "ansible_facts": {"processor_vcpus": os.cpu_count() or 2}}
    for name, value in values.items():
        if isinstance(value, str) and "{{" in value:
            values[name] = yaml.safe_load(env.from_string(value).render(**context))
    return values


def load_vars(var_files=(), sets=(), overrides=None):
    """The defaults, then each YAML vars file, then the mapping `overrides`, then each
    "NAME=VALUE" of `sets`, with the Ansible expressions evaluated. Raises RenderError for a
    name the defaults do not have."""
    values = load_defaults()
    layers = []
    for path in var_files:
        layers.append((str(path), yaml.safe_load(pathlib.Path(path).read_text()) or {}))
    if overrides:
        layers.append(("overrides", overrides))
    for item in sets:
        name, sep, raw = item.partition("=")
        if not sep:
            raise RenderError(f"--set wants NAME=VALUE, got {item!r}")
        layers.append(("--set", {name: yaml.safe_load(raw)}))
    for origin, mapping in layers:
        for name, value in mapping.items():
            if name not in values:
                raise RenderError(f"{origin}: unknown variable {name!r} "
                                  f"(see {DEFAULTS.relative_to(HERE.parent)})")
            values[name] = value
    return evaluate_expressions(values)


def render(out_dir, values):
    """Writes nginx.conf and hashd/ under out_dir from the templates beside this module."""
    out_dir = pathlib.Path(out_dir)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    templates = [HERE / "nginx.conf.j2"] + sorted((HERE / "hashd").rglob("*.j2"))
    for template in templates:
        rel = template.relative_to(HERE)
        target = out_dir / str(rel)[: -len(".j2")]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(rel.as_posix()).render(**values))
