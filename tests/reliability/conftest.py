"""The reliability suite's stage: its own Postgres, users-svc, and a fresh things-svc per test.

Postgres is an embedded server on a free loopback port in a scratch folder, owned by this suite
alone, so the tests can stop, restart and kill it. With `TEST_DATABASE_POOLER=pgbouncer` the
services reach it through a PgBouncer (transaction mode) of the suite's own, with their pooler
setting on; the migrations and the scenarios' own probes (row locks, `pg_stat_activity`) go to
Postgres directly, as a deployment's migrators and a DBA's session would. Each scenario prints a
one-line summary of its figures; they are repeated at the end of the run with the suite's wall
time.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from devstack.pgbouncer import PgBouncer
from devstack.postgres import (
    EmbeddedPostgres,
    drop_database,
    recreate_database,
    scratch_dir,
    test_database_pooler,
)
from devstack.processes import ServiceProcess, started

from .processes import migrate, service_process, things_env, users_env

AUDIENCE = "reliability-api"
PASSWORD = "correct horse battery"
FIGURES = pytest.StashKey[list[str]]()
STARTED = pytest.StashKey[float]()

Report = Callable[[str], None]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []
    config.stash[STARTED] = time.monotonic()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = terminalreporter.config.stash.get(FIGURES, [])
    if not figures:
        return
    terminalreporter.section("reliability figures")
    for line in figures:
        terminalreporter.write_line(line)
    elapsed = time.monotonic() - terminalreporter.config.stash[STARTED]
    terminalreporter.write_line(f"wall time of the run: {elapsed:.1f} s")


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """Print a scenario's one-line summary now, and again in the run's final summary."""

    def write(line: str) -> None:
        print(line)
        request.config.stash[FIGURES].append(line)

    return write


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with scratch_dir("reliability-") as path:
        yield path


@pytest.fixture(scope="session")
def postgres(workdir: Path) -> Iterator[EmbeddedPostgres]:
    with started(EmbeddedPostgres(workdir / "pgdata")) as server:
        yield server


@pytest.fixture(scope="session")
def pooler(postgres: EmbeddedPostgres, workdir: Path) -> Iterator[PgBouncer | None]:
    """The PgBouncer between the services and Postgres, when the run asks for one."""
    if test_database_pooler() is None:
        yield None
        return
    with started(PgBouncer(workdir / "pgbouncer", upstream=postgres.url())) as pgbouncer:
        yield pgbouncer


def served(database: URL, pooler: PgBouncer | None) -> tuple[URL, dict[str, str]]:
    """The URL a service is given for `database`, and the settings that go with it."""
    if pooler is None:
        return database, {}
    return pooler.url(database=str(database.database)), {"db_pooler": "pgbouncer"}


@pytest.fixture(autouse=True)
def postgres_running(postgres: EmbeddedPostgres) -> Iterator[None]:
    """Every scenario starts, and leaves, with Postgres up, whatever the last one did to it."""
    if not postgres.is_running():
        postgres.start()
    yield
    if not postgres.is_running():
        postgres.start()


@dataclass(frozen=True)
class Users:
    process: ServiceProcess
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
async def users(
    postgres: EmbeddedPostgres, pooler: PgBouncer | None, workdir: Path
) -> AsyncIterator[Users]:
    """users-svc on its own database, with one signed-up user whose token the scenarios use."""
    database = await asyncio.to_thread(recreate_database, postgres.url(), "users")
    await asyncio.to_thread(migrate, "users-svc", database)
    url, settings = served(database, pooler)
    process = service_process("users-svc", folder=workdir / "users", env={})
    process.env.update(users_env(url, issuer=process.url, audience=AUDIENCE, **settings))
    process.start()
    try:
        await process.wait_ready()
        yield Users(process=process, token=await sign_up_and_log_in(process.url, "load@x.io"))
    finally:
        process.stop()


async def sign_up_and_log_in(users_url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=users_url, timeout=10) as client:
        signup = {"email": email, "full_name": "Load", "password": PASSWORD}
        created = await client.post("/api/v1/users", json=signup)
        assert created.status_code == 201, created.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])


@dataclass(frozen=True)
class Things:
    process: ServiceProcess
    database: URL  # directly on Postgres: the scenarios' own probes
    headers: dict[str, str]
    pooler: PgBouncer | None

    @property
    def url(self) -> str:
        return self.process.url


ThingsStarter = Callable[..., AbstractAsyncContextManager[Things]]


@pytest.fixture
def start_things(
    postgres: EmbeddedPostgres, pooler: PgBouncer | None, users: Users, workdir: Path
) -> ThingsStarter:
    """Start a things-svc process on a fresh migrated database; keyword arguments are settings
    (environment variables) that replace the defaults."""

    @asynccontextmanager
    async def start(**settings: str) -> AsyncIterator[Things]:
        name = f"things_{uuid.uuid4().hex[:8]}"
        database = await asyncio.to_thread(recreate_database, postgres.url(), name)
        await asyncio.to_thread(migrate, "things-svc", database)
        url, pooled = served(database, pooler)
        env = things_env(url, users_url=users.process.url, audience=AUDIENCE, **pooled)
        process = service_process("things-svc", folder=workdir / name, env={**env, **settings})
        process.start()
        try:
            await process.wait_ready()
            yield Things(process=process, database=database, headers=users.headers, pooler=pooler)
        finally:
            process.stop()
            if not postgres.is_running():
                postgres.start()
            await asyncio.to_thread(drop_database, postgres.url(), name)

    return start


@pytest.fixture
async def things(start_things: ThingsStarter) -> AsyncIterator[Things]:
    """A things-svc process with the default settings, on a fresh migrated database."""
    async with start_things() as things:
        yield things
