"""Debian's PgBouncer in front of a test PostgreSQL (store_servers.PostgresServer), configured
by the store role's own templates (ansible/roles/store/templates/pgbouncer.ini.j2 and the
userlist, rendered with Jinja2 as Ansible's template module would, from the role's defaults
plus this machine's ports). Started in its own directory and stopped by PID.
"""

import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

import jinja2
import yaml

from .hashd_stack import free_port, wait_for

ROLE = pathlib.Path(__file__).resolve().parents[2] / "ansible/roles/store"


def _render(name, values):
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(ROLE / "templates")))
    return env.get_template(name).render(ansible_managed="test", **values)


class PgBouncer:
    """PgBouncer in transaction mode with pool_size server connections to postgres. port is
    where the app connects; url() is the HASHD_STORE that goes through it."""

    def __init__(self, postgres, pool_size):
        self.postgres = postgres
        self.pool_size = pool_size
        # Not pytest's tmp_path: its parents are root's only, and PgBouncer runs as nobody.
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="hashd-pgbouncer-"))
        self.directory.chmod(0o755)
        self.port = free_port()
        self.proc = None

    def url(self):
        return f"postgresql://{self.postgres.user}@127.0.0.1:{self.port}/{self.postgres.database}"

    def start(self):
        values = {k: v for k, v in yaml.safe_load((ROLE / "defaults/main.yml").read_text()).items()
                  if not isinstance(v, str) or "{{" not in v}
        values.update({
            "store_postgresql_port": self.postgres.port, "store_postgresql_user": self.postgres.user,
            "store_postgresql_password": "", "store_postgresql_database": self.postgres.database,
            "store_pgbouncer_listen": "127.0.0.1", "store_pgbouncer_port": self.port,
            "store_pgbouncer_dir": str(self.directory),
            "store_pgbouncer_socket_dir": str(self.directory),
            "store_pgbouncer_pidfile": str(self.directory / "pgbouncer.pid"),
            "store_pgbouncer_pool_size": self.pool_size,
            # The test's PostgreSQL trusts loopback (store_servers.py); the role's default is SCRAM.
            "store_pgbouncer_auth_type": "trust",
        })
        (self.directory / "pgbouncer.ini").write_text(_render("pgbouncer.ini.j2", values))
        (self.directory / "userlist.txt").write_text(_render("pgbouncer-userlist.txt.j2", values))
        user = {}
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            nobody = pwd.getpwnam("nobody")
            for path in [self.directory, *self.directory.iterdir()]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        with open(self.directory / "pgbouncer.log", "wb") as log:
            self.proc = subprocess.Popen(["/usr/sbin/pgbouncer", str(self.directory / "pgbouncer.ini")],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, **user)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"pgbouncer exited with {self.proc.returncode}:\n"
                                     + (self.directory / "pgbouncer.log").read_text(errors="replace"))
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(up, 30, "pgbouncer to listen")
        return self

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        shutil.rmtree(self.directory, ignore_errors=True)
