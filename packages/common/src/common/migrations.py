"""The Alembic runner every service's `env.py` hands over to, and the schema's expected head."""

import asyncio
import logging
import zlib

from alembic import context
from sqlalchemy import Connection, MetaData, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.revisions import VERSION_TABLE, expected_heads

__all__ = ["VERSION_TABLE", "expected_heads", "run_migrations"]


def run_migrations(*, database_url: str, target_metadata: MetaData) -> None:
    """Run the migrations Alembic asked for, online or offline.

    A connection or engine handed over in `config.attributes["connection"]` (tests,
    pytest-alembic) wins over `database_url`; so does `config.attributes["database_url"]`.
    """
    config = context.config
    if not logging.getLogger().handlers:  # the alembic command line: show what runs
        logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    url = config.attributes.get("database_url", database_url)
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            version_table=VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        _run_on(connectable, target_metadata)
        return
    engine = connectable or create_async_engine(url, poolclass=pool.NullPool)
    assert isinstance(engine, AsyncEngine)
    asyncio.run(_run_async(engine, target_metadata))


async def _run_async(engine: AsyncEngine, target_metadata: MetaData) -> None:
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on, target_metadata)
    finally:
        await engine.dispose()


def _run_on(connection: Connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        version_table=VERSION_TABLE,
        # One transaction for the whole upgrade: Postgres DDL is transactional, so a failing
        # revision leaves both the schema and the version row as they were.
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        # Several migrators started at once (replicas, compose) wait for each other here
        # instead of racing to create the same tables.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(connection)}
        )
        context.run_migrations()


def _lock_key(connection: Connection) -> int:
    # The server's name for the database, not the URL's: through PgBouncer a migrator may connect
    # under an alias (`things_migrate`) while another reaches `things` directly.
    database = connection.scalar(text("SELECT current_database()")) or ""
    return zlib.crc32(f"alembic:{database}".encode())
