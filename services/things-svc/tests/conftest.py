from pathlib import Path

import pytest

from common.testing import ServiceUnderTest

# pytest-alembic's fixtures, for this service's migrations (tests/test_migrations.py).
from common.testing.migrations import alembic_config, alembic_engine  # noqa: F401
from things_svc.main import build_app
from things_svc.settings import Settings, get_settings


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(
        name="things",
        settings_class=Settings,
        domains="things_svc.domains",
        project_dir=Path(__file__).parents[1],
        build_app=build_app,
        get_settings=get_settings,
    )
