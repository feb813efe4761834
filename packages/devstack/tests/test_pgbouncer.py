"""Debian's PgBouncer in front of an embedded Postgres: transaction pooling, as services get it."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack.pgbouncer import PgBouncer, PgBouncerError
from devstack.postgres import (
    EmbeddedPostgres,
    asyncpg_dsn,
    drop_database,
    recreate_database,
    scratch_dir,
)
from devstack.processes import free_port, port_is_free, started

# Debian's binaries: `make test-pgbouncer` installs them and runs these.
pytestmark = pytest.mark.pooler

POOL_SIZE = 3


@pytest.fixture
def folder() -> Iterator[Path]:
    with scratch_dir("pgbouncer-") as path:
        yield path


@pytest.fixture
def pooler(postgres: EmbeddedPostgres, folder: Path) -> Iterator[PgBouncer]:
    with started(PgBouncer(folder, upstream=postgres.url(), pool_size=POOL_SIZE)) as pooler:
        yield pooler


async def connect(pooler: PgBouncer, database: str = "postgres") -> asyncpg.Connection:
    # No statement cache: a statement never outlives its transaction through the pooler.
    return await asyncpg.connect(
        asyncpg_dsn(pooler.url(database=database)), statement_cache_size=0, timeout=5
    )


async def backends(postgres: EmbeddedPostgres) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(postgres.url()))
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await connection.close()


async def test_many_clients_share_at_most_pool_size_server_connections(
    pooler: PgBouncer, postgres: EmbeddedPostgres
) -> None:
    clients = [await connect(pooler) for _ in range(4 * POOL_SIZE)]
    try:

        async def transaction(client: asyncpg.Connection, index: int) -> int:
            async with client.transaction():
                await client.execute("SELECT pg_sleep(0.05)")
                value: int = await client.fetchval("SELECT $1::int", index)
                return value

        peak = 0

        async def watch() -> None:
            nonlocal peak
            for _ in range(20):
                peak = max(peak, await backends(postgres))
                await asyncio.sleep(0.02)

        results, _ = await asyncio.gather(
            asyncio.gather(*(transaction(c, i) for i, c in enumerate(clients))), watch()
        )
    finally:
        for client in clients:
            await client.close()

    assert results == list(range(4 * POOL_SIZE))
    assert 0 < peak <= POOL_SIZE
    pools = await asyncio.to_thread(pooler.show, "POOLS")
    assert {pool["pool_mode"] for pool in pools if pool["database"] == "postgres"} == {
        "transaction"
    }


async def test_server_connections_carry_the_services_session_timeouts(pooler: PgBouncer) -> None:
    client = await connect(pooler)
    try:
        assert await client.fetchval("SHOW statement_timeout") == "10s"
        assert await client.fetchval("SHOW idle_in_transaction_session_timeout") == "30s"
    finally:
        await client.close()


async def test_a_client_sending_session_timeouts_is_refused(pooler: PgBouncer) -> None:
    # What a service sends when it talks to Postgres directly: through the pooler it would be
    # lost, so it is refused rather than ignored.
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await asyncpg.connect(
            asyncpg_dsn(pooler.url()),
            statement_cache_size=0,
            server_settings={"statement_timeout": "1234"},
        )


async def test_a_database_made_after_the_start_is_reachable(
    pooler: PgBouncer, postgres: EmbeddedPostgres
) -> None:
    await asyncio.to_thread(recreate_database, postgres.url(), "made_later")
    try:
        client = await connect(pooler, "made_later")
        try:
            assert await client.fetchval("SELECT current_database()") == "made_later"
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(drop_database, postgres.url(), "made_later")


def test_stops_from_another_process_and_frees_its_port(
    postgres: EmbeddedPostgres, folder: Path
) -> None:
    pooler = PgBouncer(folder, upstream=postgres.url())
    pooler.start()
    pid = pooler.pid()

    # `make down` finds it by its folder alone, as another process would.
    PgBouncer(folder, upstream=postgres.url(), port=pooler.port).stop()

    assert pid is not None
    assert not pooler.is_running()
    assert port_is_free(pooler.host, pooler.port)


def test_a_port_in_use_is_refused_with_a_message(postgres: EmbeddedPostgres, folder: Path) -> None:
    port = free_port()
    with started(PgBouncer(folder / "first", upstream=postgres.url(), port=port)):
        second = PgBouncer(folder / "second", upstream=postgres.url(), port=port)
        with pytest.raises(PgBouncerError, match=f"port {port} .* already in use"):
            second.start()
        assert not second.is_running()
