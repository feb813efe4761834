"""The stack's databases: each service's database and role, its migrations, and the checks that
answer two mistakes in one line before anything runs: a revision graph Alembic cannot read, and a
login the server refuses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.revisions import applied_revisions, expected_heads, revision_graph_problem
from common.settings import DATABASE_SCHEME, PLAIN_DATABASE_SCHEMES
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn
from stack_services import ROOT, Service, StackError

INIT_SCRIPT = ROOT / "infra" / "postgres" / "10-service-databases.sh"

Say = Callable[[str], None]
# What a service's settings read to reach its database (and the rest of the stack).
EnvFor = Callable[[Service], dict[str, str]]


def create_databases(postgres: EmbeddedPostgres, services: Sequence[Service]) -> None:
    """Each service's database and login role, made when missing, the role's password set."""
    # The very script the postgres image runs in Docker, pointed at the embedded server.
    env = {
        **os.environ,
        "PATH": f"{postgres.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGPASSWORD": postgres.password or "",
        "POSTGRES_USER": "postgres",
        "SERVICE_DATABASES": " ".join(s.database for s in services),
        **{f"{s.database.upper()}_DB_PASSWORD": s.password for s in services},
    }
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(f"creating the service databases failed:\n{result.stderr.strip()}")


def migrate(
    postgres: EmbeddedPostgres, services: Sequence[Service], *, env_for: EnvFor, say: Say
) -> list[Service]:
    """Every service's database at the head of its migrations; those that were behind."""
    for service in services:
        check_revisions(service)

    async def current_revisions() -> dict[Service, frozenset[str]]:
        revisions = {}
        for service in services:
            url = postgres.url(database=service.database)
            engine = create_async_engine(url, poolclass=NullPool)
            try:
                async with engine.connect() as connection:
                    revisions[service] = await applied_revisions(connection)
            finally:
                await engine.dispose()
        return revisions

    # A database already at the head of its scripts needs no Alembic run (a few seconds of
    # imports each); the others migrate side by side, each in its own database.
    current = asyncio.run(current_revisions())
    behind = [s for s in services if current[s] != expected_heads(s.directory / "alembic")]
    for service in services:
        if service not in behind:
            say(f"{service.name}: migrations up to date")
    running = {
        service: subprocess.Popen(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=service.directory,
            env={**os.environ, **env_for(service)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for service in behind
    }
    failed = []
    for service, process in running.items():
        output = process.communicate()[0]
        if process.returncode != 0:
            tail = "\n".join(f"  {line}" for line in output.strip().splitlines()[-15:])
            failed.append(f"migrations of {service.name} failed:\n{tail}")
        else:
            say(f"{service.name}: migrations applied")
    if failed:
        raise StackError("\n".join(failed))
    return behind


def check_revisions(service: Service) -> None:
    """Refuse a revision graph Alembic cannot read, in one line naming the file and the revision,
    with Alembic's own error below it."""
    problem = revision_graph_problem(service.directory / "alembic")
    if problem is None:
        return
    try:
        from alembic.script import ScriptDirectory

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ScriptDirectory(str(service.directory / "alembic")).get_current_head()
        alembic_error = "(none)"
    except Exception:
        alembic_error = traceback.format_exc().strip()
    raise StackError(f"{service.name}: {problem}\n\nAlembic's own error:\n{alembic_error}")


def check_login(service: Service, database_url: str, *, source: str) -> None:
    """Refuse, in one line naming the role and the database, a URL whose login the server refuses
    (a wrong password, a role or a database that does not exist); `source` says where it was set.
    A server that does not answer is left for the command to report."""
    url = make_url(database_url)
    if url.drivername not in (DATABASE_SCHEME, *PLAIN_DATABASE_SCHEMES):
        return  # the service refuses it, in one line

    async def log_in() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
        await connection.close()

    try:
        asyncio.run(log_in())
    except (
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
    ) as exc:
        raise StackError(
            f"{service.name} cannot log in to database {url.database} on {url.host}:{url.port} "
            f"as role {url.username}: {exc} ({source})"
        ) from None
    except Exception:  # anything else is for the command itself to report
        return
