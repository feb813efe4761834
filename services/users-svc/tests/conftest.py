from pathlib import Path

import pytest
from alembic.config import Config
from httpx import AsyncClient
from sqlalchemy import pool
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from users_factories import Accounts

from common.testing import ServiceUnderTest, signing_key_for_tests
from users_svc.main import build_app
from users_svc.settings import Settings


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(
        name="users",
        settings_class=Settings,
        domains="users_svc.domains",
        project_dir=Path(__file__).parents[1],
        settings_overrides={
            # Cheap argon2 in tests: the cost parameters are settings, the algorithm is the same.
            "password_time_cost": 1,
            "password_memory_kib": 1024,
            # users-svc signs with the test key, so `token_factory` tokens verify here too.
            "signing_key": signing_key_for_tests().private_pem(),
        },
        build_app=build_app,
    )


@pytest.fixture
def alembic_config(service: ServiceUnderTest) -> Config:
    return service.alembic_config()


@pytest.fixture
def alembic_engine(empty_database_url: URL) -> AsyncEngine:
    return create_async_engine(empty_database_url, poolclass=pool.NullPool)


@pytest.fixture
def accounts(client: AsyncClient, db_session: AsyncSession) -> Accounts:
    return Accounts(client, db_session)
