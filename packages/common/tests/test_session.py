"""The request's sessions: one transaction for the writes, read-only sessions in autocommit, the
same path in tests and in production, and every connection back in its pool."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from common.app import create_app
from common.session import SessionDep
from common.testing import ServiceUnderTest
from common.testing.plugin import empty_tables, open_client, worker_id
from devstack.postgres import drop_database, recreate_database


async def codes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list(await connection.scalars(text("SELECT code FROM widgets ORDER BY code")))


async def test_a_dependency_and_the_endpoint_share_the_requests_session(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    failed = await committing_client.post(
        "/api/v1/widgets/-/shared", params={"fail": "true"}, json={"code": "lost"}
    )
    kept = await committing_client.post("/api/v1/widgets/-/shared", json={"code": "kept"})

    assert (failed.status_code, kept.status_code) == (409, 201)
    assert kept.json() == {"same_session": True}
    # Both writes of a request commit or roll back as one.
    assert await codes(engine) == ["kept-dependency", "kept-endpoint"]


async def test_a_read_session_runs_each_query_on_its_own(committing_client: AsyncClient) -> None:
    # No BEGIN and COMMIT around the reads: two queries are two transactions.
    response = await committing_client.get("/api/v1/widgets/-/snapshots")

    assert response.status_code == 200
    assert response.json() == {"transactions": 2}


async def test_a_test_app_reads_inside_the_test_transaction(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # The read-only session joins the test's transaction: it sees a row the test wrote.
    await db_session.execute(text("INSERT INTO widgets (id, code) VALUES (gen_random_uuid(), 'x')"))

    listed = await client.get("/api/v1/widgets")
    snapshots = await client.get("/api/v1/widgets/-/snapshots")

    assert [widget["code"] for widget in listed.json()["items"]] == ["x"]
    assert snapshots.json() == {"transactions": 1}


@pytest.mark.parametrize("route", ["read-only", "read-only-statement"])
async def test_tests_and_production_read_through_the_same_read_only_session(
    client: AsyncClient, committing_client: AsyncClient, engine: AsyncEngine, route: str
) -> None:
    # The tests' app and a production app (`committing_client`: its own engines) both refuse a
    # write through the read-only session: the same dependency and the same session class.
    in_test = await client.post(f"/api/v1/widgets/-/{route}", json={"code": "test"})
    in_production = await committing_client.post(
        f"/api/v1/widgets/-/{route}", json={"code": "production"}
    )

    assert (in_test.status_code, in_production.status_code) == (500, 500)
    assert in_production.headers["content-type"] == "application/problem+json"
    assert await codes(engine) == []


async def test_every_session_goes_back_to_its_pool(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    # One connection per pool and a short wait for one: a session left open would make the next
    # request wait for its connection, then fail with 503.
    settings = service.settings(
        database_url, db_pool_size=1, db_read_pool_size=1, db_pool_timeout_seconds=0.5
    )
    app = create_app(settings, domains=service.domains)
    try:
        async with open_client(app) as client:
            for round_ in range(3):
                body = {"code": f"round {round_}"}
                assert (await client.get("/api/v1/widgets/-/snapshots")).status_code == 200
                assert (await client.post("/api/v1/widgets", json=body)).status_code == 201
                # The same code twice in one request: its commit fails.
                assert (await client.post("/api/v1/widgets/twins", json=body)).status_code == 409
                assert (
                    await client.post("/api/v1/widgets/-/read-only", json=body)
                ).status_code == 500
                assert (await client.get("/api/v1/widgets?limit=1")).status_code == 200
                assert (await client.get(f"/api/v1/widgets/{uuid.uuid4()}")).status_code == 404
                assert (await client.get("/api/v1/widgets/-/crash")).status_code == 500
    finally:
        await empty_tables(engine)


async def test_a_session_on_a_route_of_its_own_commits_too(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    # Nothing but the dependency ends the session: a route added outside the domains, with no
    # special router, commits like theirs.
    app: FastAPI = create_app(service.settings(database_url), domains=service.domains)

    @app.post("/plain", status_code=201)
    async def write(session: SessionDep) -> None:
        await session.execute(
            text("INSERT INTO widgets (id, code) VALUES (gen_random_uuid(), 'p')")
        )

    try:
        async with open_client(app) as client:
            response = await client.post("/plain")

        assert response.status_code == 201
        assert await codes(engine) == ["p"]
    finally:
        await empty_tables(engine)


@pytest.fixture
async def replica_url(
    postgres_server: URL, traffic_server: URL, service: ServiceUnderTest
) -> AsyncIterator[URL]:
    """A second database of the service's schema, standing for a read replica: what it holds
    shows where a read went (replication itself is Postgres's business)."""
    name = f"test_{service.name}_{worker_id()}_replica"
    url = await asyncio.to_thread(recreate_database, postgres_server, name)
    await asyncio.to_thread(command.upgrade, service.alembic_config(url), "head")
    yield traffic_server.set(database=name)
    await asyncio.to_thread(drop_database, postgres_server, name)


async def test_read_sessions_go_to_the_replica_and_transactions_to_the_primary(
    service: ServiceUnderTest, database_url: URL, replica_url: URL, engine: AsyncEngine
) -> None:
    replica = create_async_engine(replica_url)
    try:
        async with replica.begin() as connection:
            await connection.execute(
                text("INSERT INTO widgets (id, code) VALUES (:id, 'on-the-replica')"),
                {"id": uuid.uuid4()},
            )
        settings = service.settings(
            database_url, read_database_url=replica_url.render_as_string(hide_password=False)
        )
        async with open_client(service.app(settings)) as client:
            created = await client.post("/api/v1/widgets", json={"code": "on-the-primary"})
            listed = await client.get("/api/v1/widgets")
        async with engine.connect() as connection:
            primary_codes = (await connection.scalars(text("SELECT code FROM widgets"))).all()
    finally:
        await replica.dispose()
        await empty_tables(engine)

    assert created.status_code == 201
    assert [item["code"] for item in listed.json()["items"]] == ["on-the-replica"]
    assert primary_codes == ["on-the-primary"]
