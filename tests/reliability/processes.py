"""The processes the scenarios break: services under uvicorn, migrators, and Postgres sessions."""

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from devstack.pgbouncer import PgBouncer
from devstack.postgres import asyncpg_dsn, drop_database, recreate_database
from devstack.processes import ServiceProcess, service_environment
from monorepo import Workspace

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {facts.name: facts for facts in Workspace.load(ROOT).services()}
# The grace uvicorn gives open requests on SIGTERM, as in the Dockerfiles.
GRACEFUL_SHUTDOWN_SECONDS = 20


def service_process(
    service: str, *, folder: Path, env: Mapping[str, str], access_log: bool = False
) -> ServiceProcess:
    """`service` under uvicorn on a free loopback port, in development mode, run in `folder`."""
    options = [f"--timeout-graceful-shutdown={GRACEFUL_SHUTDOWN_SECONDS}"]
    return ServiceProcess(
        service,
        SERVICES[service].app,
        cwd=folder,
        env={"ENVIRONMENT": "development", **env},
        log=folder / f"{service}.log",
        options=options if access_log else [*options, "--no-access-log"],
    )


def service_env(
    service: str, database: URL, *, issuer: str, audience: str, **settings: str
) -> dict[str, str]:
    """A service's settings for a test process: its database and migrations, the issuer and
    audience of the tokens it accepts, no broker (events stay in the outbox) unless `settings`
    names one, and `settings` (field names) on top."""
    facts = SERVICES[service]
    prefix = facts.env_prefix
    return {
        f"{prefix}NATS_URL": "",
        **service_environment(
            prefix,
            database_url=database.render_as_string(hide_password=False),
            token_issuer=issuer,
        ),
        f"{prefix}MIGRATIONS_DIR": str(facts.directory / "alembic"),
        f"{prefix}TOKEN_AUDIENCE": audience,
        **{f"{prefix}{name.upper()}": value for name, value in settings.items()},
    }


# things-svc's client secret at users-svc in these processes, and what users-svc knows of it.
THINGS_CLIENT_SECRET = secrets.token_hex(24)
SERVICE_CLIENTS = json.dumps(
    {
        "things-svc": {
            "secret_sha256": [hashlib.sha256(THINGS_CLIENT_SECRET.encode()).hexdigest()],
            "scopes": ["users:lookup"],
        }
    }
)


def users_env(database: URL, *, issuer: str, audience: str, **settings: str) -> dict[str, str]:
    """users-svc's settings for a test process, with cheap hashing; things-svc registered."""
    return service_env(
        "users-svc",
        database,
        issuer=issuer,
        audience=audience,
        password_time_cost="1",
        password_memory_kib="1024",
        service_clients=SERVICE_CLIENTS,
        **settings,
    )


def things_env(database: URL, *, users_url: str, audience: str, **settings: str) -> dict[str, str]:
    """things-svc's settings for a test process, with users-svc as its tokens' issuer and the
    service it calls with its own client secret."""
    return service_env(
        "things-svc",
        database,
        issuer=users_url,
        audience=audience,
        users_url=users_url,
        client_secret=THINGS_CLIENT_SECRET,
        **settings,
    )


@dataclass(frozen=True)
class UsersAndThings:
    users: ServiceProcess
    things: ServiceProcess
    databases: dict[str, URL]  # by "users" and "things"


@asynccontextmanager
async def users_and_things(
    server: URL,
    folder: Path,
    *,
    name: str,
    audience: str,
    access_log: bool = False,
    users_settings: Mapping[str, str] | None = None,
    things_settings: Mapping[str, str] | None = None,
) -> AsyncIterator[UsersAndThings]:
    """users-svc signing and things-svc verifying over HTTP, as processes running in `folder`,
    each on a database of `server` (`<name>_users`, `<name>_things`) made and migrated first and
    dropped afterwards; `*_settings` (field names) on top of their test settings."""
    databases = {}
    for svc in ("users", "things"):
        databases[svc] = await asyncio.to_thread(recreate_database, server, f"{name}_{svc}")
        await asyncio.to_thread(migrate, f"{svc}-svc", databases[svc])
    users = service_process("users-svc", folder=folder / "users", env={}, access_log=access_log)
    users.env.update(
        users_env(databases["users"], issuer=users.url, audience=audience, **(users_settings or {}))
    )
    things = service_process(
        "things-svc",
        folder=folder / "things",
        env=things_env(
            databases["things"], users_url=users.url, audience=audience, **(things_settings or {})
        ),
    )
    try:
        users.start()
        things.start()
        await asyncio.gather(users.wait_ready(), things.wait_ready())
        yield UsersAndThings(users=users, things=things, databases=databases)
    finally:
        users.stop()
        things.stop()
        for database in databases.values():
            assert database.database is not None
            await asyncio.to_thread(drop_database, server, database.database)


def upgrade_command(service: str, database: URL) -> subprocess.Popen[bytes]:
    """`alembic upgrade head` in the service's folder, on `database`, as a process of its own."""
    facts = SERVICES[service]
    return subprocess.Popen(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=facts.directory,
        env={
            **os.environ,
            **service_environment(
                facts.env_prefix, database_url=database.render_as_string(hide_password=False)
            ),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def migrate(service: str, database: URL) -> None:
    process = upgrade_command(service, database)
    try:
        output, _ = process.communicate(timeout=120)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed for {service}:\n{output.decode()}")


async def sessions_of(server: URL, application: str, pooler: PgBouncer | None = None) -> list[str]:
    """The state of each Postgres session the service has open: `idle`, `active`, `locked` (active,
    waiting for a lock), `idle in transaction`, ...

    Through a pooler, a server session idle in the pooler's pool belongs to nobody: the service's
    sessions are then its connections to the pooler (`idle` each, between requests) and the
    server sessions busy on its behalf.
    """
    connection = await asyncpg.connect(asyncpg_dsn(server.set(database="postgres")))
    try:
        rows = await connection.fetch(
            "SELECT CASE WHEN wait_event_type = 'Lock' THEN 'locked' ELSE coalesce(state, '') END"
            " FROM pg_stat_activity WHERE application_name = $1",
            application,
        )
    finally:
        await connection.close()
    states = [row[0] for row in rows]
    if pooler is None:
        return states
    clients = await asyncio.to_thread(pooler.show, "CLIENTS")
    connected = [c for c in clients if c["application_name"] == application]
    return [state for state in states if state != "idle"] + ["idle"] * len(connected)


async def wait_for_sessions(
    server: URL,
    application: str,
    until: Callable[[list[str]], bool],
    *,
    timeout_seconds: float = 10,
    pooler: PgBouncer | None = None,
) -> list[str]:
    """Poll the service's session states until `until(states)`; return the last states seen."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        states = await sessions_of(server, application, pooler)
        if until(states) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.05)


@asynccontextmanager
async def row_locked(database: URL, table: str, row_id: str) -> AsyncIterator[None]:
    """Hold a row lock from a session of our own: writers of that row wait, inside their
    transaction and holding their pool connection, until it is released or their statement
    times out.
    """
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        async with connection.transaction():
            await connection.execute(
                f"SELECT 1 FROM {table} WHERE id::text = $1 FOR UPDATE", row_id
            )
            yield
    finally:
        await connection.close()
