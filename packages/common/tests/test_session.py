"""The request's database handles: where reads run, and that every handle goes back to its pool."""

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL

from common.app import create_app
from common.session import SessionDep
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client


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
    service: ServiceUnderTest, database_url: URL
) -> None:
    # One connection per pool and a short wait for one: a handle left open would make the next
    # request wait for it, then fail with 503.
    settings = service.settings(database_url, db_pool_size=1, db_pool_timeout_seconds=0.5)
    app = create_app(settings, domains=service.domains)
    async with open_client(app) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/widgets/-/snapshots")).status_code == 200
            assert (await client.get("/api/v1/widgets?limit=1")).status_code == 200
            assert (await client.get(f"/api/v1/widgets/{uuid.uuid4()}")).status_code == 404
            crash = await client.get("/api/v1/widgets/-/crash")
            assert crash.status_code == 500


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
