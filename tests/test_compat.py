"""`make test-compat` on a copy of the repository: its one commit is the previous release (BASE),
and a revision of things-svc added to its working tree is the change."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.revisions import expected_heads
from devstack.postgres import scratch_dir
from devstack.repository import copy_repository

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
THINGS = Path("services/things-svc")
HEAD = next(iter(expected_heads(ROOT / THINGS / "alembic")))
REVISION = f'''"""the change

Revision ID: c0ffee000001
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000001"
down_revision = "{HEAD}"


def upgrade() -> None:
    {{upgrade}}
'''


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    """The copy, its previous release's worktree and environment kept from one test to the next."""
    with scratch_dir("compat-test-") as folder:
        yield copy_repository(ROOT, folder / "repo", commit=True)


def make_test_compat(copy: Path, upgrade: str) -> subprocess.CompletedProcess[str]:
    """`make test-compat` on the copy with one new revision, whose upgrade() runs `upgrade`."""
    (copy / THINGS / "alembic/versions/20261207_c0ffee000001_change.py").write_text(
        REVISION.format(upgrade=upgrade)
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTEST_ADDOPTS"} and not key.startswith("PYTEST_XDIST")
    }
    command = ["make", "-s", "test-compat", "SERVICE=things-svc", "BASE=main"]
    return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=900)


def test_a_dropped_column_the_previous_release_reads_fails_naming_the_revision(
    copy: Path,
) -> None:
    result = make_test_compat(copy, 'op.drop_column("things", "description")')

    assert result.returncode != 0, result.stdout + result.stderr
    assert "column things.description does not exist" in result.stdout
    assert "revisions it has never seen: c0ffee000001 (20261207_c0ffee000001_change.py)" in (
        result.stderr
    )


def test_an_added_column_passes(copy: Path) -> None:
    result = make_test_compat(
        copy, 'op.add_column("things", sa.Column("colour", sa.Text(), nullable=True))'
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "passes its tests on the schema with c0ffee000001" in result.stdout
