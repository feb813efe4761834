import asyncio
from collections.abc import Iterator

import pytest
from alembic import command
from httpx import AsyncClient
from sqlalchemy.engine import URL, make_url

from common.app import create_app
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client
from common.testing.postgres import drop_database, recreate_database

PROBLEM = "application/problem+json"
UNREACHABLE = make_url("postgresql+asyncpg://nobody:nothing@127.0.0.1:1/nowhere")


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
