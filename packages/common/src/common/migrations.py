"""The Alembic runner every service's `env.py` hands over to, and the schema's expected head.

Two mistakes are answered in one line before Alembic's own error: a revision graph Alembic cannot
read (common.revisions), and an autogenerate against a database that is not at the head.
"""

import asyncio
import logging
import sys
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, MetaData, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.revisions import VERSION_TABLE, expected_heads, revision_graph_problem

__all__ = ["LOCK_TIMEOUT", "VERSION_TABLE", "expected_heads", "run_migrations"]

# A DDL statement waiting for a lock (behind a long transaction) makes every later query on the
# table wait behind it: after this long the migration fails, to be run again, instead of the
# service stalling. Set in every migration transaction, and so in the SQL squawk lints
# (require-lock-timeout); a revision that needs longer sets its own (`SET LOCAL lock_timeout`).
LOCK_TIMEOUT = "2s"
SET_LOCK_TIMEOUT = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"


def run_migrations(*, database_url: str, target_metadata: MetaData) -> None:
    """Run the migrations Alembic asked for, online or offline.

    A connection or engine handed over in `config.attributes["connection"]` (tests,
    pytest-alembic) wins over `database_url`; so does `config.attributes["database_url"]`.
    """
    config = context.config
    if not logging.getLogger().handlers:  # the alembic command line: show what runs
        logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    url = config.attributes.get("database_url", database_url)
    problem = revision_graph_problem(Path(context.script.dir))
    if problem is not None:
        # The one line that says what to fix; Alembic's own error follows it.
        print(f"error: {problem}", file=sys.stderr, flush=True)
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            version_table=VERSION_TABLE,
        )
        with context.begin_transaction():
            context.execute(SET_LOCK_TIMEOUT)
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
        on_version_apply=_set_lock_timeout_again,
    )
    if getattr(context.config.cmd_opts, "autogenerate", False):
        _say_so_when_behind()
    with context.begin_transaction():
        # Several migrators started at once (replicas, compose) wait for each other here
        # instead of racing to create the same tables.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(connection)}
        )
        # After the advisory lock: a migrator waits for another as long as that one runs.
        connection.execute(text(SET_LOCK_TIMEOUT))
        context.run_migrations()


def _set_lock_timeout_again(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    # A revision with an autocommit block (CREATE INDEX CONCURRENTLY) ends the transaction the
    # first SET LOCAL was made in: the revisions after it get theirs here.
    ctx.execute(SET_LOCK_TIMEOUT)


def _say_so_when_behind() -> None:
    """Autogenerate compares the models with a database at the head of the scripts: one behind
    would have Alembic stop at "Target database is not up to date" without saying what to do."""
    current = sorted(context.get_context().get_current_heads())
    heads = sorted(context.script.get_heads())
    if current != heads:
        service = Path(context.script.dir).resolve().parent.name
        print(
            f"error: the database is at {', '.join(current) or 'no revision'} and the scripts at "
            f"{', '.join(heads)}: apply them before autogenerating (`alembic upgrade head`, or "
            f"`make migrate SERVICE={service}` on the stack's database)",
            file=sys.stderr,
            flush=True,
        )


def _lock_key(connection: Connection) -> int:
    # The server's name for the database, not the URL's: through PgBouncer a migrator may connect
    # under an alias (`things_migrate`) while another reaches `things` directly.
    database = connection.scalar(text("SELECT current_database()")) or ""
    return zlib.crc32(f"alembic:{database}".encode())
