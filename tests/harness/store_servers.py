"""Throwaway message-store servers for the integration tests: a redis-server and a PostgreSQL
cluster, each in its own temporary directory, listening only on a free loopback port, started
and stopped by PID (never the system services).

Both keep their data directory across stop()/start() and kill()/start(), so a test can take
the store away mid-run and bring the same data back. Both run with their strictest
durability settings (Redis: AOF with appendfsync always; PostgreSQL: fsync and
synchronous_commit on, the defaults), so "acknowledged means stored" can be checked across
a kill -9 of the server itself.

PostgreSQL refuses to run as root: as root, the cluster belongs to and runs as `nobody`.
"""

import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile

from .hashd_stack import free_port, wait_for

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


def _children(pid):
    """PIDs whose parent is pid (from /proc)."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class StoreServer:
    """Common life cycle: start() spawns the server and waits until it answers, stop()
    shuts it down cleanly by PID, kill() sends SIGKILL, cleanup() removes its directory."""

    name = "?"

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix=f"hashd-{self.name}-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.proc = None
        self.log = self.root / "server.log"

    def _spawn(self, argv, **kwargs):
        self._log_file = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True, **kwargs)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            return self.ping()
        wait_for(ready, START_TIMEOUT_S, f"{self.name} on port {self.port}", interval=0.1)

    def _end(self, signum):
        if not self.running():
            return
        if signum == signal.SIGKILL:
            # The server and its children at once, as a crash of the host would. (PostgreSQL
            # backends are session leaders of their own: killpg would miss them, and one
            # outliving the postmaster keeps the cluster from starting again.)
            children = _children(self.proc.pid)
            for pid in [self.proc.pid, *children]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: not any(_alive(pid) for pid in children), STOP_TIMEOUT_S,
                     f"the processes of {self.name} to die")
        else:
            os.kill(self.proc.pid, signum)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop on signal {signum}")
        finally:
            self._log_file.close()

    def kill(self):
        """SIGKILL: the server dies without flushing anything more."""
        self._end(signal.SIGKILL)

    def cleanup(self):
        if self.running():
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(StoreServer):
    name = "redis"

    def start(self):
        self._spawn([
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--protected-mode", "yes", "--unixsocket", "", "--daemonize", "no",
            "--dir", str(self.root), "--save", "",
            # The documented production settings: AOF, never evict. "always" here so that a
            # kill -9 of Redis itself loses no acknowledged message.
            "--appendonly", "yes", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction",
            "--logfile", "",
        ])
        self._wait_ready()
        return self

    def stop(self):
        """SIGTERM: Redis closes its clients, syncs the AOF and exits."""
        self._end(signal.SIGTERM)

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cli(self, *args, db=0):
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
                                 "-n", str(db), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return result.stdout.decode(errors="replace").strip() if result.returncode == 0 else None

    def ping(self):
        return self.cli("PING") == "PONG"

    def count(self, db=0):
        return int(self.cli("DBSIZE", db=db))


class PostgresServer(StoreServer):
    name = "postgresql"
    database = "hashd"
    user = "hashd"

    def __init__(self):
        super().__init__()
        self.data = self.root / "data"
        # Sessions the server accepts; a test of the connection budget changes it between a
        # stop() and a start(). No sessions are reserved for superusers (the test's hashd is
        # one), so max_connections is exactly what the app may open.
        self.max_connections = 200
        self._as = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        self._initialized = False

    def _run(self, argv):
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120, cwd=self.root, **self._as)

    def start(self):
        if not self._initialized:
            self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user,
                       "-A", "trust", "-E", "UTF8", "--locale", "C", "--no-sync"])
            self._initialized = True
        self._spawn([
            str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            # The defaults, stated: a commit returns after its WAL is flushed.
            "-c", "fsync=on", "-c", "synchronous_commit=on",
            "-c", f"max_connections={self.max_connections}",
            "-c", "superuser_reserved_connections=0",
        ], cwd=self.root, **self._as)
        self._wait_ready()
        if self.psql("SELECT 1 FROM pg_database WHERE datname = 'hashd'", db="postgres") != "1":
            self.psql("CREATE DATABASE hashd", db="postgres")
        return self

    def stop(self):
        """SIGINT: PostgreSQL's fast shutdown (disconnects clients, checkpoints, exits).
        SIGTERM would wait for hashd's long-lived connections to close by themselves."""
        self._end(signal.SIGINT)

    def url(self):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def psql(self, sql, db=None):
        result = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", self.user, "-d", db or self.database, "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip()

    def ping(self):
        return self.psql("SELECT 1", db="postgres") == "1"

    def count(self):
        return int(self.psql("SELECT count(*) FROM hashd_messages"))

    def client_sessions(self):
        """The app's sessions on the server (client backends of user hashd), not counting the
        psql that asks. Client backends only: the server was initialised with hashd as its
        superuser, so the logical replication launcher is a "hashd" session too."""
        return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'hashd'"
                             " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"))


class LmdbDirectory:
    """The LMDB "server": a directory. Nothing to start or stop; inspected with mdb_stat
    (Debian's lmdb-utils)."""

    name = "lmdb"

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="hashd-lmdb-"))
        self.root.chmod(0o755)
        self.path = self.root / "messages"  # hashd creates it

    def url(self):
        return f"lmdb:{self.path}"

    def count(self):
        result = subprocess.run(["mdb_stat", "-e", str(self.path)], stdout=subprocess.PIPE,
                                check=True, timeout=30, text=True)
        for line in result.stdout.splitlines():
            if line.strip().startswith("Entries:"):
                return int(line.split()[-1])
        raise AssertionError(f"unexpected mdb_stat output: {result.stdout}")

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def open_store(kind):
    """A started store of the given kind ("lmdb", "redis", "postgresql"); the caller
    cleans it up."""
    if kind == "lmdb":
        return LmdbDirectory()
    server = RedisServer() if kind == "redis" else PostgresServer()
    try:
        return server.start()
    except BaseException:
        server.cleanup()
        raise
