"""The throttling counters whose window has ended are deleted by the service's background work,
whether or not another failure comes; the live ones stay."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing import ServiceUnderTest
from common.testing.plugin import empty_tables, open_client

ENDED = "clock_timestamp() - interval '1 second'"
LIVE = "clock_timestamp() + interval '1 hour'"


def pruned(table: str) -> float:
    return REGISTRY.get_sample_value("auth_counters_pruned_total", {"table": table}) or 0.0


async def keys(engine: AsyncEngine, table: str) -> list[bytes]:
    async with engine.connect() as connection:
        return list((await connection.scalars(text(f"SELECT key FROM {table} ORDER BY key"))).all())


@pytest.fixture
async def counters(engine: AsyncEngine) -> AsyncIterator[None]:
    """Two counters of each table, one ended and one live, committed where the app's own
    engine sees them."""
    async with engine.begin() as connection:
        for scope, key, ends in (("account", b"a" * 32, ENDED), ("client", b"b" * 32, LIVE)):
            await connection.execute(
                text(
                    "INSERT INTO login_failures (scope, key, failures, window_ends_at) "
                    f"VALUES (:scope, :key, 3, {ends})"
                ),
                {"scope": scope, "key": key},
            )
        for key, ends in ((b"c" * 32, ENDED), (b"d" * 32, LIVE)):
            await connection.execute(
                text(
                    f"INSERT INTO sign_ups (key, sign_ups, window_ends_at) VALUES (:key, 2, {ends})"
                ),
                {"key": key},
            )
    try:
        yield
    finally:
        await empty_tables(engine)


@pytest.mark.usefixtures("counters")
async def test_ended_counters_are_pruned_and_live_ones_stay(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    before = pruned("login_failures"), pruned("sign_ups")
    app = service.app(service.settings(database_url, counters_prune_seconds=0.05))

    async with open_client(app):
        async with asyncio.timeout(10):
            while (
                len(await keys(engine, "login_failures")) + len(await keys(engine, "sign_ups")) > 2
            ):
                await asyncio.sleep(0.05)

    assert await keys(engine, "login_failures") == [b"b" * 32]
    assert await keys(engine, "sign_ups") == [b"d" * 32]
    assert (pruned("login_failures"), pruned("sign_ups")) == (before[0] + 1, before[1] + 1)


@pytest.mark.usefixtures("counters")
async def test_nothing_is_pruned_before_its_turn(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    app = service.app(service.settings(database_url, counters_prune_seconds=3600))

    async with open_client(app):
        await asyncio.sleep(0.2)

    assert await keys(engine, "login_failures") == [b"a" * 32, b"b" * 32]
