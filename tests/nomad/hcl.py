"""The Nomad job files as the tests read them: HashiCorp's HCL parser (npm @cdktf/hcl2json,
tests/nomad/hcl2json.js) and the schema check of what Nomad rejects (jobspec.py)."""

import json
import pathlib
import subprocess

import jobspec

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent

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
