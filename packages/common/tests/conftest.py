import sys
from pathlib import Path

import pytest

from common.testing import ServiceUnderTest

SAMPLE_DIR = Path(__file__).parent / "sample"
# The sample service is not an installed package: make it importable for the app and Alembic.
sys.path.insert(0, str(SAMPLE_DIR))

from sample_app.settings import SampleSettings  # noqa: E402


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(
        name="common_sample",
        settings_class=SampleSettings,
        domains="sample_app.domains",
        project_dir=SAMPLE_DIR,
    )
