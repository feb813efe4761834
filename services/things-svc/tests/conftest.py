from functools import partial
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.testing import ServiceUnderTest, token_keys_for_tests
from things_svc.main import build_app
from things_svc.settings import Settings


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(
        name="things",
        settings_class=Settings,
        domains="things_svc.domains",
        project_dir=Path(__file__).parents[1],
        # The app trusts the tests' token key instead of fetching users-svc's.
        build_app=partial(build_app, token_keys=token_keys_for_tests()),
    )


@pytest.fixture
def alembic_config(service: ServiceUnderTest) -> Config:
    return service.alembic_config()


@pytest.fixture
def alembic_engine(empty_database_url: URL) -> AsyncEngine:
    return create_async_engine(empty_database_url, poolclass=pool.NullPool)
