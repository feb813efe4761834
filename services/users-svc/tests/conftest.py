from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import Accounts

from common.testing import ServiceUnderTest, signing_key_for_tests

# pytest-alembic's fixtures, for this service's migrations (tests/test_migrations.py).
from common.testing.migrations import alembic_config, alembic_engine  # noqa: F401
from users_svc.main import build_app
from users_svc.settings import Settings, get_settings


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
            # Tests sign many accounts up from one client: the sign-up limit's own tests lower it.
            "sign_ups_per_client": 10_000,
            # users-svc signs with the test key, so `token_factory` tokens verify here too.
            "signing_key": signing_key_for_tests().private_pem(),
        },
        build_app=build_app,
        get_settings=get_settings,
    )


@pytest.fixture
def accounts(client: AsyncClient, db_session: AsyncSession) -> Accounts:
    return Accounts(client, db_session)
