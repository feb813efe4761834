import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from alembic import command
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from common.app import create_app
from common.health import READY_TIMEOUT_SECONDS
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client
from devstack.postgres import drop_database, recreate_database

PROBLEM = "application/problem+json"
UNREACHABLE = make_url("postgresql+asyncpg://nobody:nothing@127.0.0.1:1/nowhere")


class SilentServer:
    """Accepts connections and never answers: a hung Postgres, or a network that drops packets."""

    def __init__(self) -> None:
        self.connections: list[asyncio.StreamWriter] = []

    async def hold(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[SilentServer, URL]]:
    silent = SilentServer()
    server = await asyncio.start_server(silent.hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield silent, make_url(f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{port}/hung")
    for writer in silent.connections:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def scratch_database(postgres_server: URL) -> Iterator[URL]:
    yield recreate_database(postgres_server, "test_common_health_scratch")
    drop_database(postgres_server, "test_common_health_scratch")


async def test_live_and_ready_at_head(client: AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_ready_is_503_one_revision_behind_head_and_200_after_upgrade(
    service: ServiceUnderTest, scratch_database: URL
) -> None:
    config = service.alembic_config(scratch_database)
    # Alembic's env.py runs its own event loop: give it a thread without one.
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "-1")
    app = create_app(service.settings(scratch_database), domains=service.domains)

    async with open_client(app) as client:
        behind = await client.get("/health/ready")
        await asyncio.to_thread(command.upgrade, config, "head")
        at_head = await client.get("/health/ready")

    assert behind.status_code == 503
    assert behind.headers["content-type"] == PROBLEM
    assert behind.json()["detail"] == "The database schema is not at the expected migration."
    assert at_head.status_code == 200


async def test_ready_at_a_revision_a_later_release_added(
    service: ServiceUnderTest, scratch_database: URL
) -> None:
    """The previous release keeps serving once the next one's migrations ran (make test-compat)."""
    config = service.alembic_config(scratch_database)
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_async_engine(scratch_database)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'f00dbeef0001'"))
    await engine.dispose()
    app = create_app(service.settings(scratch_database), domains=service.domains)

    async with open_client(app) as client:
        response = await client.get("/health/ready")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_ready_is_503_on_an_empty_database(
    service: ServiceUnderTest, scratch_database: URL
) -> None:
    app = create_app(service.settings(scratch_database), domains=service.domains)

    async with open_client(app) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503


async def test_unreachable_database_gives_503_not_500(service: ServiceUnderTest) -> None:
    app = create_app(service.settings(UNREACHABLE), domains=service.domains)

    async with open_client(app) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
        listing = await client.get("/api/v1/widgets")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["detail"] == "The database does not answer."
    assert listing.status_code == 503
    assert listing.headers["content-type"] == PROBLEM
    assert listing.headers["retry-after"] == "1"
    assert "nowhere" not in listing.text


async def test_a_postgresql_url_serves_and_is_logged_once_without_its_password(
    service: ServiceUnderTest, database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    # The tests' embedded server takes any password; another server, the one it was given.
    password = database_url.password or "s3cret-pass"
    given = database_url.set(drivername="postgresql", password=password)
    settings = service.settings(given)
    app = create_app(settings, domains=service.domains)

    with caplog.at_level(logging.INFO, logger="common.db"):
        async with open_client(app) as client:
            ready = await client.get("/health/ready")

    assert ready.status_code == 200
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("database: ")]
    assert logged == [f"database: {given.set(drivername='postgresql+asyncpg')}"]  # str(): ***
    assert str(password) not in caplog.text


async def test_a_refused_login_names_the_role_and_requests_get_503(
    service: ServiceUnderTest, postgres_server: URL
) -> None:
    # A role the server does not know: refused as a wrong password is (SQLSTATE class 28).
    url = postgres_server.set(username="nobody_here", password="wrong", database="nowhere")
    app = create_app(service.settings(url), domains=service.domains)

    async with open_client(app) as client:
        ready = await client.get("/health/ready")
        listing = await client.get("/api/v1/widgets")

    assert ready.status_code == 503
    assert ready.json()["detail"] == (
        "The database refused the login: authentication failed for role nobody_here."
    )
    assert listing.status_code == 503
    assert listing.headers["content-type"] == PROBLEM
    assert "nobody_here" not in listing.text


async def test_ready_answers_503_in_its_timeout_when_the_database_hangs(
    service: ServiceUnderTest, silent_server: tuple[SilentServer, URL]
) -> None:
    silent, url = silent_server
    # Without the readiness timeout, a probe would wait this long for its connection.
    app = create_app(service.settings(url, db_connect_timeout_seconds=60), domains=service.domains)

    async with open_client(app) as client:
        started = time.monotonic()
        together = await asyncio.gather(*(client.get("/health/ready") for _ in range(3)))
        answered = time.monotonic() - started
        later = await client.get("/health/ready")

    assert [response.status_code for response in [*together, later]] == [503] * 4
    assert later.json()["detail"] == "The database does not answer."
    assert answered < READY_TIMEOUT_SECONDS + 1
    # The probes share one check, still waiting on its one connection: nothing piles up.
    assert len(silent.connections) == 1
