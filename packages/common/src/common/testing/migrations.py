"""pytest-alembic's two fixtures for the service the `service` fixture describes.

A service's `tests/conftest.py` imports them: fixtures a conftest holds override
pytest-alembic's defaults, which would look for an alembic.ini and use SQLite.
"""

import pytest
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.testing.service import ServiceUnderTest


@pytest.fixture
def alembic_config(service: ServiceUnderTest) -> Config:
    """The service's own migrations, as `alembic` runs them from its folder."""
    return service.alembic_config()


@pytest.fixture
def alembic_engine(empty_database_url: URL) -> AsyncEngine:
    """A database with no schema at all, for each migration test."""
    return create_async_engine(empty_database_url, poolclass=pool.NullPool)
