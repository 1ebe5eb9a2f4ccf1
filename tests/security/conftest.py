"""The security suite (`make security-test`): the TLS scanner against the real local stack,
and the lint gates on what is deployed (Ansible roles, the .deb, the systemd units). It
reuses the integration tests' stack (tests/integration/hashd_stack.py)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
