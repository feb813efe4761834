from collections.abc import Iterator

import pytest

from devstack.postgres import EmbeddedPostgres, scratch_dir
from devstack.processes import started


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    """An embedded server of the test module's own, which its tests may stop, kill and restart."""
    with scratch_dir() as folder, started(EmbeddedPostgres(folder / "pgdata")) as server:
        yield server
