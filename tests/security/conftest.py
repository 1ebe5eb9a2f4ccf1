"""The security suite (`make security-test`): the TLS scanner against the real local stack,
and the lint gates on what is deployed (Ansible roles, the .deb, the systemd units). It
reuses the test harness's stack (tests/harness/hashd_stack.py)."""
