"""The store role's PgBouncer option (issue 21, finding 11): hashd behind Debian's PgBouncer
in transaction mode, configured by the role's own template (ansible/roles/store/templates/
pgbouncer.ini.j2, rendered with Jinja2 as the template module would, from the role's
defaults plus this machine's ports), works as on PostgreSQL directly: messages stored and
read back, the MultiVAC queue (its SKIP LOCKED transactions) processed by a worker, while
the app's many sessions share a pool of two server connections. Real PostgreSQL, real
PgBouncer, the real app; both servers started and stopped by PID.
"""

import concurrent.futures
import hashlib
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

from harness.hashd_stack import wait_for
from harness.store_servers import open_store

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible/roles/store"
POOL_SIZE = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(name, values):
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(ROLE / "templates")))
    return env.get_template(name).render(ansible_managed="test", **values)


def start_pgbouncer(directory, postgres):
    values = {k: v for k, v in yaml.safe_load((ROLE / "defaults/main.yml").read_text()).items()
              if not isinstance(v, str) or "{{" not in v}
    values.update({
        "store_postgresql_port": postgres.port, "store_postgresql_user": postgres.user,
        "store_postgresql_password": "", "store_postgresql_database": postgres.database,
        "store_pgbouncer_listen": "127.0.0.1", "store_pgbouncer_port": free_port(),
        "store_pgbouncer_dir": str(directory), "store_pgbouncer_socket_dir": str(directory),
        "store_pgbouncer_pidfile": str(directory / "pgbouncer.pid"),
        "store_pgbouncer_pool_size": POOL_SIZE,
        # The test's PostgreSQL trusts loopback (store_servers.py); the role's default is SCRAM.
        "store_pgbouncer_auth_type": "trust",
    })
    (directory / "pgbouncer.ini").write_text(render("pgbouncer.ini.j2", values))
    (directory / "userlist.txt").write_text(render("pgbouncer-userlist.txt.j2", values))
    user = {}
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        nobody = pwd.getpwnam("nobody")
        for path in [directory, *directory.iterdir()]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    log = open(directory / "pgbouncer.log", "wb")
    proc = subprocess.Popen(["/usr/sbin/pgbouncer", str(directory / "pgbouncer.ini")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, **user)
    port = values["store_pgbouncer_port"]

    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(up, 30, "pgbouncer to listen")
    return proc, port


# Named prepared statements are per server session, so under transaction pooling (PgBouncer
# 1.18, Debian 12, has no protocol-level prepared statements; they came in 1.21) they met other
# sessions' server connections ("prepared statement "hashd_put" already exists") and /readyz
# stayed 503. The app now sends unnamed statements (PQsendQueryParams), which this proves.
def test_hashd_works_through_pgbouncer_in_transaction_mode(make_stack):
    postgres = open_store("postgresql")
    # Not pytest's tmp_path: its parents are root's only, and PgBouncer runs as nobody.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="hashd-pgbouncer-"))
    directory.chmod(0o755)
    bouncer = None
    try:
        bouncer, port = start_pgbouncer(directory, postgres)
        store = f"postgresql://{postgres.user}@127.0.0.1:{port}/{postgres.database}"
        stack = make_stack(processes=2, workers=1,
                           app_env={"HASHD_STORE": store, "HASHD_ACCEPT_THREADS": "2"})
        messages = [f"through pgbouncer {i}" for i in range(40)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda m: stack.post("/messages", json={"message": m}).status_code,
                                     messages))
        assert statuses == [201] * len(messages)
        for m in messages[:5]:
            digest = hashlib.sha256(m.encode()).hexdigest()
            assert stack.get(f"/messages/{digest}").json() == {"message": m}
        for i in range(5):
            assert stack.post("/multivac/data", data={"data": f"datum {i}"}).status_code == 200
        wait_for(lambda: stack.get("/multivac").content == b"datum 0", 120, "the worker to process")
        assert postgres.count() == len(messages)
        # Client backends only: the test's server was initialised with hashd as its superuser,
        # so the logical replication launcher is a "hashd" session too.
        servers = int(postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'hashd'"
                                    " AND backend_type = 'client backend'"
                                    " AND pid <> pg_backend_pid()"))
        print(f"\npgbouncer: app sessions = 2 processes x 2 accept threads + 1 worker, "
              f"PostgreSQL server sessions = {servers} (pool {POOL_SIZE})")
        assert servers <= POOL_SIZE
    finally:
        if bouncer is not None:
            os.killpg(bouncer.pid, signal.SIGTERM)
            bouncer.wait(30)
        postgres.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
