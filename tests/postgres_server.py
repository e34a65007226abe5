"""A real PostgreSQL for tests: Debian's `postgresql` package, a throwaway cluster (initdb, pg_ctl)
in a temp dir on a free 127.0.0.1 port, never the package's own cluster. Set up like RDS: the
database is owned by a master role that may create roles but is not a superuser, and every role
but the superuser logs in over TCP with a password (scram-sha-256).

    from tests.postgres_server import postgres_fixture  # noqa: F401  (the `postgres` fixture)

    def test_something(postgres):
        postgres.psql("SELECT 1", user=postgres.master, password=postgres.master_password)
        with postgres.connect(postgres.superuser) as connection: ...

One server per test module (`postgres` is module-scoped). PostgreSQL refuses to run as root, so
as root (as CI runs) the server runs as the `postgres` system user the package creates. Without
the binaries the tests skip; with PLEXICHAT_REQUIRE_POSTGRES=1 (set by .ci/run) they fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from components.data.database import DB_NAME, USERNAME
from tests.tools import free_port, missing

HOST = "127.0.0.1"
SUPERUSER = "postgres"
MAINTENANCE_DATABASE = "postgres"
"""What initdb creates besides the templates: where the superuser connects to create the database."""
SYSTEM_USER = "postgres"
"""Who runs the server when the tests run as root: the user Debian's package creates."""
STARTUP_TIMEOUT_SECONDS = 30
HBA = f"local all {SUPERUSER} trust\nhost all all {HOST}/32 scram-sha-256\n"
"""The superuser through the socket without a password; everyone else as on RDS."""
SETTINGS = {
    "listen_addresses": HOST,
    # A throwaway cluster: durability costs seconds and buys nothing here.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass(frozen=True)
class PostgresServer:
    port: int
    database: str
    master: str
    """Owns `database`, may create roles (CREATEROLE, CREATEDB), is not a superuser: RDS's master user."""
    master_password: str
    socket_dir: Path
    bin_dir: Path
    host: str = HOST
    superuser: str = SUPERUSER
    """Through the socket only, without a password: for what RDS would not let the master do."""

    def psql(
        self,
        sql: str,
        user: str,
        password: str | None = None,
        variables: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `sql` (a script: psql meta-commands work) with the package's psql, as `user`,
        stopping at the first error; unaligned tuples-only output. `variables` are psql's `-v`."""
        command = [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        command += [f"--dbname={self.conninfo(user)}"]
        for name, value in (variables or {}).items():
            command += ["-v", f"{name}={value}"]
        env = {**os.environ, "PGPASSWORD": password or "", "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run(command, input=sql, capture_output=True, text=True, env=env, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"psql as {user} exited with {done.returncode}:\n{done.stderr}")
        return done

    def connect(self, user: str, password: str | None = None) -> psycopg.Connection:
        """A psycopg connection to the database as `user`, in autocommit (close it, or use `with`)."""
        return psycopg.connect(self.conninfo(user), password=password, autocommit=True, connect_timeout=10)

    def conninfo(self, user: str) -> str:
        host = self.socket_dir if user == self.superuser else self.host
        return f"host={host} port={self.port} dbname={self.database} user={user}"

    def url(self, user: str, password: str, driver: str = "postgresql+psycopg") -> str:
        """An SQLAlchemy URL (Alembic's `sqlalchemy.url`)."""
        return f"{driver}://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{self.database}"


def _bin_dir() -> Path:
    """The newest of Debian's /usr/lib/postgresql/<major>/bin, else wherever PATH has initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        missing(
            "PostgreSQL (initdb, pg_ctl, psql)",
            "PLEXICHAT_REQUIRE_POSTGRES",
            "apt-get install postgresql; .ci/run does",
        )
    bin_dir = Path(initdb).resolve().parent
    for tool in ("pg_ctl", "psql"):
        if not (bin_dir / tool).exists():
            missing(f"{tool} (beside {initdb})", "PLEXICHAT_REQUIRE_POSTGRES", "apt-get install postgresql")
    return bin_dir


def _server_user() -> pwd.struct_passwd | None:
    """Who to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        missing(
            f"the {SYSTEM_USER} system user (PostgreSQL will not run as root)",
            "PLEXICHAT_REQUIRE_POSTGRES",
            "apt-get install postgresql creates it",
        )


class _Cluster:
    """initdb and pg_ctl on one data directory, run as the server's user."""

    def __init__(self, bin_dir: Path, workdir: Path, user: pwd.struct_passwd | None) -> None:
        self.bin_dir, self.workdir, self.user = bin_dir, workdir, user
        self.data, self.log = workdir / "data", workdir / "server.log"

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin_dir / tool), *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_SECONDS + 30,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            extra_groups=[] if self.user else None,  # not root's groups
        )
        if done.returncode != 0:
            server_log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise AssertionError(f"{tool} {shlex.join(args)} exited with {done.returncode}:\n{done.stderr}{server_log}")

    def init(self) -> None:
        self.run("initdb", "--no-sync", "--encoding=UTF8", "--locale=C", f"--username={SUPERUSER}", str(self.data))
        hba = self.data / "pg_hba.conf"
        hba.write_text(HBA)
        if self.user:
            os.chown(hba, self.user.pw_uid, self.user.pw_gid)

    def start(self, port: int) -> None:
        settings = {**SETTINGS, "port": str(port), "unix_socket_directories": str(self.workdir)}
        # pg_ctl hands -o to the server through a shell.
        options = shlex.join(arg for name, value in settings.items() for arg in ("-c", f"{name}={value}"))
        self.run(
            "pg_ctl",
            "start",
            "--wait",
            f"--timeout={STARTUP_TIMEOUT_SECONDS}",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
        )

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "--wait", "-m", "fast", "-D", str(self.data))


@contextlib.contextmanager
def running_postgres(database: str, master: str) -> Iterator[PostgresServer]:
    """A fresh cluster with `database` owned by the non-superuser `master`; stopped and deleted on exit."""
    bin_dir, user = _bin_dir(), _server_user()
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="postgres-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if user:
            os.chown(workdir, user.pw_uid, user.pw_gid)
        cluster = _Cluster(bin_dir, workdir, user)
        cluster.init()
        port = free_port()
        cluster.start(port)
        stack.callback(cluster.stop)
        server = PostgresServer(port, MAINTENANCE_DATABASE, master, secrets.token_hex(16), workdir, bin_dir)
        server.psql(
            f"CREATE ROLE {master} LOGIN CREATEROLE CREATEDB PASSWORD :'password';\n"
            f"CREATE DATABASE {database} OWNER {master};\n",
            user=SUPERUSER,
            variables={"password": server.master_password},
        )
        yield dataclasses.replace(server, database=database)


@pytest.fixture(scope="module", name="postgres")
def postgres_fixture() -> Iterator[PostgresServer]:
    """A server for the test module, laid out as the RDS primary: its `db_name` database owned by
    its master user. Import `postgres_fixture` into the test module; tests ask for `postgres`."""
    with running_postgres(DB_NAME, USERNAME) as server:
        yield server
