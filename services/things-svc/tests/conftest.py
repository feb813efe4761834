from collections.abc import Iterator
from pathlib import Path

import pytest
from users_provider import CLIENT_SECRET, UsersProvider

from common.testing import ServiceUnderTest

# pytest-alembic's fixtures, for this service's migrations (tests/test_migrations.py).
from common.testing.migrations import alembic_config, alembic_engine  # noqa: F401
from things_svc.main import build_app
from things_svc.settings import Settings, get_settings


@pytest.fixture(scope="session")
def users_svc() -> Iterator[UsersProvider]:
    """users-svc as things-svc calls it, for the whole run (tests/users_provider.py)."""
    provider = UsersProvider()
    provider.start()
    yield provider
    if provider.running:
        provider.stop()


@pytest.fixture(scope="session")
def service(users_svc: UsersProvider) -> ServiceUnderTest:
    return ServiceUnderTest(
        name="things",
        settings_class=Settings,
        domains="things_svc.domains",
        project_dir=Path(__file__).parents[1],
        build_app=build_app,
        get_settings=get_settings,
        settings_overrides={"users_url": users_svc.url, "client_secret": CLIENT_SECRET},
    )
