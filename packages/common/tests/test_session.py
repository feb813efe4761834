"""The request's database handles: one transaction for the writes, where reads run, and that
every handle goes back to its pool."""

import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.app import create_app
from common.session import SessionDep
from common.testing import ServiceUnderTest
from common.testing.plugin import empty_tables, open_client


async def codes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list(await connection.scalars(text("SELECT code FROM widgets ORDER BY code")))


async def test_a_core_write_commits_with_the_request(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    response = await committing_client.post("/api/v1/widgets/-/core", json={"code": "core"})

    assert response.status_code == 201
    assert response.json()["code"] == "core"
    assert await codes(engine) == ["core"]


async def test_a_core_write_whose_commit_fails_never_answers_2xx(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    # The unique constraint is checked at COMMIT: the second INSERT passes, its commit fails.
    first = await committing_client.post("/api/v1/widgets/-/core", json={"code": "twin"})
    second = await committing_client.post("/api/v1/widgets/-/core", json={"code": "twin"})

    assert (first.status_code, second.status_code) == (201, 409)
    assert second.headers["content-type"] == "application/problem+json"
    assert await codes(engine) == ["twin"]


@pytest.mark.parametrize("order", ["session-then-connection", "connection-then-session"])
async def test_the_session_and_the_write_connection_share_one_transaction(
    committing_client: AsyncClient, engine: AsyncEngine, order: str
) -> None:
    failed = await committing_client.post(
        f"/api/v1/widgets/-/{order}", params={"fail": "true"}, json={"code": "lost"}
    )
    kept = await committing_client.post(f"/api/v1/widgets/-/{order}", json={"code": "kept"})

    assert (failed.status_code, kept.status_code) == (409, 201)
    # Each handle sees the other's uncommitted write: one transaction, committed or not as one.
    assert kept.json() == {"seen_by_connection": 1, "seen_by_session": 2}
    assert await codes(engine) == ["kept-core", "kept-orm"]


async def test_a_test_app_writes_core_inside_the_test_transaction(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post("/api/v1/widgets/-/core", json={"code": "seen"})

    assert response.status_code == 201
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 1


async def test_a_read_connection_runs_each_statement_on_its_own(
    committing_client: AsyncClient,
) -> None:
    # No BEGIN and COMMIT around a read: two statements are two transactions.
    response = await committing_client.get("/api/v1/widgets/-/snapshots")

    assert response.status_code == 200
    assert response.json() == {"transactions": 2}


async def test_a_test_app_reads_inside_the_test_transaction(client: AsyncClient) -> None:
    # The tests' apps read through the request's session, so they see what the test wrote.
    response = await client.get("/api/v1/widgets/-/snapshots")

    assert response.status_code == 200
    assert response.json() == {"transactions": 1}


async def test_every_handle_goes_back_to_its_pool(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    # One connection per pool and a short wait for one: a handle left open would make the next
    # request wait for it, then fail with 503.
    settings = service.settings(database_url, db_pool_size=1, db_pool_timeout_seconds=0.5)
    app = create_app(settings, domains=service.domains)
    try:
        async with open_client(app) as client:
            for round_ in range(3):
                core = {"code": f"round {round_}"}
                assert (await client.get("/api/v1/widgets/-/snapshots")).status_code == 200
                assert (await client.post("/api/v1/widgets/-/core", json=core)).status_code == 201
                # The same code again: its commit fails.
                assert (await client.post("/api/v1/widgets/-/core", json=core)).status_code == 409
                assert (await client.get("/api/v1/widgets?limit=1")).status_code == 200
                assert (await client.get(f"/api/v1/widgets/{uuid.uuid4()}")).status_code == 404
                assert (await client.get("/api/v1/widgets/-/crash")).status_code == 500
    finally:
        await empty_tables(engine)


async def test_a_session_outside_a_transaction_route_is_refused(
    service: ServiceUnderTest, database_url: URL
) -> None:
    # Its session would never commit: the request fails instead of losing its writes silently.
    app: FastAPI = create_app(service.settings(database_url), domains=service.domains)

    @app.post("/plain")
    async def write_without_commit(session: SessionDep) -> None:
        await session.execute(text("SELECT 1"))

    async with open_client(app) as client:
        response = await client.post("/plain")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
