from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.testing import ServiceUnderTest
from users_svc.settings import Settings


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(
        name="users",
        settings_class=Settings,
        domains="users_svc.domains",
        project_dir=Path(__file__).parents[1],
        # Cheap argon2 in tests: the cost parameters are settings, the algorithm is the same.
        settings_overrides={"password_time_cost": 1, "password_memory_kib": 1024},
    )


@pytest.fixture
def alembic_config(service: ServiceUnderTest) -> Config:
    return service.alembic_config()


@pytest.fixture
def alembic_engine(empty_database_url: URL) -> AsyncEngine:
    return create_async_engine(empty_database_url, poolclass=pool.NullPool)
