from functools import partial
from pathlib import Path

import pytest

from common.testing import ServiceUnderTest, token_keys_for_tests

# pytest-alembic's fixtures, for this service's migrations (tests/test_migrations.py).
from common.testing.migrations import alembic_config, alembic_engine  # noqa: F401
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
