"""A Redis password with URL delimiters in it (issue 20): on GCE, hashd-gce-config reads the
password from Secret Manager and percent-encodes it into HASHD_STORE's user info
(`redis://:p%2Ba%2F...@host/0`, RFC 3986). The app must decode it before AUTH, or any
password with `+ / = @ :` leaves the store unavailable for good.

A real redis-server with `requirepass` set to such a password, started on loopback and
stopped by PID; the URL is encoded exactly as the boot script encodes it.
"""

import subprocess
import urllib.parse

import pytest

from harness.hashd_stack import Stack
from harness.store_servers import RedisServer
from test_messages import UNLIMITED_NGINX, digest_of, post

PASSWORD = "p+a/s=s@w:rd%1"


class PasswordRedis(RedisServer):
    """redis-server with requirepass; redis-cli authenticates with the raw password."""

    def _spawn(self, argv, **kwargs):
        super()._spawn([*argv, "--requirepass", PASSWORD], **kwargs)

    def cli(self, *args, db=0):
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "-n", str(db),
                                 "--no-auth-warning", "-a", PASSWORD, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return result.stdout.decode(errors="replace").strip() if result.returncode == 0 else None

    def url(self, db=0):
        # What hashd-gce-config's with_password() writes.
        return f"redis://:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="module")
def redis():
    server = PasswordRedis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def api(redis):
    stack = Stack(processes=1, app_env={"HASHD_STORE": redis.url()}, nginx=UNLIMITED_NGINX)
    stack.start()
    yield stack
    stack.stop()
    stack.cleanup()


def test_the_encoded_password_authenticates(api, redis):
    assert "%2B" in redis.url() and "%40" in redis.url()
    r = api.get("/readyz")
    assert r.status_code == 200, r.text
    message = "stored behind a password with + / = @ :"
    r = post(api, {"message": message})
    assert r.status_code == 201, r.text
    assert r.json()["digest"] == digest_of(message)
    # Redis itself holds it: the write went through AUTH with the decoded password.
    assert redis.count() == 1


def test_the_password_never_reaches_a_log(api):
    api.assert_not_logged(PASSWORD, urllib.parse.quote(PASSWORD, safe=""))
