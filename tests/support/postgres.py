"""A throwaway PostgreSQL cluster for tests: initdb into a temporary folder, pg_ctl on a free port.

Where PostgreSQL is not installed the tests that need it are skipped with the reason; CI sets
BOT_REQUIRE_POSTGRES=1, which turns that skip into a failure so the PostgreSQL tests always run there.
As root (CI), the server runs as the `postgres` user, which owns the temporary folder.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_ENV = "BOT_REQUIRE_POSTGRES"
BIN_ENV = "BOT_POSTGRES_BIN"


def find_bin_dir() -> Path | None:
    """$BOT_POSTGRES_BIN, else PostgreSQL 15 where Debian puts it, else the newest installed, else PATH."""
    candidates = [os.environ.get(BIN_ENV, ""), "/usr/lib/postgresql/15/bin"]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    on_path = shutil.which("pg_ctl")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when CI requires PostgreSQL."""
    if os.environ.get(REQUIRE_ENV, "").strip() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the PostgreSQL tests must run here)", pytrace=False)
    pytest.skip(f"{reason}; install PostgreSQL (or set {BIN_ENV}) to run these tests")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """One server in its own temporary folder; `url(db)` for a database, `create_database()` for a new one."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_user: str | None = "postgres" if os.geteuid() == 0 else None
        # As root, the server's user must reach the folder: $TMPDIR may be private to root, /tmp never is.
        base = "/tmp" if self.as_user and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="bot-pg-", dir=base))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._names = itertools.count(1)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}\n{done.stderr}\n{self._log_tail()}")
        return done

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return ""

    def init(self) -> PostgresCluster:
        self.socket_dir.mkdir()
        if self.as_user:
            # tempfile makes the folder 0700 for root: the server's user must own it.
            user = pwd.getpwnam(self.as_user)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self, *, durable: bool = False) -> PostgresCluster:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            # A test cluster never survives a crash, and fsync would dominate its time (benchmarks keep it).
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, dbname: str = "postgres") -> str:
        """Over TCP on 127.0.0.1, as a bot would connect."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def admin_sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{next(self._names)}"
        self.admin_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_ready(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> PostgresCluster:
    """A started cluster, or skip/fail (see `unavailable`)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL not found (no initdb and pg_ctl in /usr/lib/postgresql/*/bin or on PATH)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root but there is no `postgres` user to run the server as")
        if not shutil.which("runuser"):
            unavailable("running as root but `runuser` is missing")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[dev]')")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init()
        for _ in range(2):
            try:
                return cluster.start(durable=durable)
            except RuntimeError:
                # Parallel workers each pick a free port: another may bind ours between the look and the start.
                if "already in use" not in cluster._log_tail():
                    raise
                cluster.port = _free_port()
        return cluster.start(durable=durable)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        cluster.destroy()
        unavailable(f"could not start a PostgreSQL test cluster: {error}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway cluster per test session (per xdist worker: each its own folder and port), deleted at the end."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
