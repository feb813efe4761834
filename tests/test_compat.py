"""`make test-compat` on a copy of the repository: its one commit is the previous release (BASE),
and a revision of things-svc added to its working tree is the change. Then docs/development.md's
column renamed in three deploys, each deploy a commit checked against the one before it."""

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


def downgrade() -> None:
    {{downgrade}}
'''


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    """The copy, its previous release's worktree and environment kept from one test to the next."""
    with scratch_dir("compat-test-") as folder:
        yield copy_repository(ROOT, folder / "repo", commit=True)


def environment() -> dict[str, str]:
    """This run's environment, without what points at its own virtualenv and pytest run."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTEST_ADDOPTS"} and not key.startswith("PYTEST_XDIST")
    }


def make_test_compat(copy: Path, *, base: str = "main") -> subprocess.CompletedProcess[str]:
    command = ["make", "-s", "test-compat", "SERVICE=things-svc", f"BASE={base}"]
    return subprocess.run(
        command, cwd=copy, env=environment(), capture_output=True, text=True, timeout=900
    )


def write_revision(copy: Path, upgrade: str, downgrade: str = "pass", *, number: int = 1) -> None:
    """Revision c0ffee00000<number> after the one before it."""
    revision = f"c0ffee00000{number}"
    previous = HEAD if number == 1 else f"c0ffee00000{number - 1}"
    script = REVISION.replace("c0ffee000001", revision).replace(HEAD, previous)
    (copy / THINGS / f"alembic/versions/20261207_{revision}_change.py").write_text(
        script.format(upgrade=upgrade, downgrade=downgrade)
    )


def test_a_dropped_column_the_previous_release_reads_fails_naming_the_revision(
    copy: Path,
) -> None:
    write_revision(copy, 'op.drop_column("things", "description")')
    result = make_test_compat(copy)

    assert result.returncode != 0, result.stdout + result.stderr
    assert "column things.description does not exist" in result.stdout
    assert "revisions it has never seen: c0ffee000001 (20261207_c0ffee000001_change.py)" in (
        result.stderr
    )


def test_an_added_column_passes(copy: Path) -> None:
    write_revision(copy, 'op.add_column("things", sa.Column("colour", sa.Text(), nullable=True))')
    result = make_test_compat(copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "passes its tests on the schema with c0ffee000001" in result.stdout


MODELS = THINGS / "src/things_svc/domains/things/models.py"
SERVICE = THINGS / "src/things_svc/domains/things/service.py"
OLD_COLUMN = "    description: Mapped[str | None] = mapped_column(Text)\n"
# Deploy 1 (expand): the new column; the code writes both and reads the old one.
EXPAND_MODEL = OLD_COLUMN + "    details: Mapped[str | None] = mapped_column(Text)\n"
# Deploy 2 (backfill): the attribute reads and writes the new column; the old one stays in the
# table, so the models still match the schema, but out of the mapping: never loaded or written.
BACKFILL_MODEL = (
    '    description: Mapped[str | None] = mapped_column("details", Text)\n'
    '    old_description: Unmapped[str | None] = unmapped_column("description", Text)\n'
)
ORM_IMPORT = "from sqlalchemy.orm import Mapped, mapped_column\n"
BACKFILL_ORM_IMPORT = (
    "from sqlalchemy.orm import Mapped, Unmapped, mapped_column, unmapped_column\n"
)
# Deploy 3 (contract): the old column is gone from the models and the schema.
CONTRACT_MODEL = '    description: Mapped[str | None] = mapped_column("details", Text)\n'
EXPAND = (
    'op.add_column("things", sa.Column("details", sa.Text(), nullable=True))',
    'op.drop_column("things", "details")',
)
BACKFILL = ('op.execute("UPDATE things SET details = description WHERE details IS NULL")', "pass")
CONTRACT = (
    'op.execute("-- squawk-ignore-file ban-drop-column -- no release since the backfill reads '
    'things.description")\n    op.drop_column("things", "description")',
    'op.add_column("things", sa.Column("description", sa.Text(), nullable=True))\n'
    '    op.execute("UPDATE things SET description = details")',
)


def git(copy: Path, *args: str) -> str:
    identity = ["-c", "user.name=copy", "-c", "user.email=copy@localhost"]
    return subprocess.run(
        ["git", *identity, *args], cwd=copy, capture_output=True, text=True, check=True
    ).stdout.strip()


def replace(copy: Path, path: Path, old: str, new: str) -> None:
    text = (copy / path).read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    (copy / path).write_text(text.replace(old, new))


def deploy(
    copy: Path, number: int, upgrade: str, downgrade: str
) -> subprocess.CompletedProcess[str]:
    """The deploy's revision checked against the release before it, then committed as the next
    release. Its own migration tests pass too: its models match its revisions."""
    write_revision(copy, upgrade, downgrade, number=number)
    result = make_test_compat(copy, base=git(copy, "rev-parse", "HEAD"))
    own = [".venv/bin/python", "-m", "pytest", str(THINGS / "tests/test_migrations.py"), "-q"]
    migrations = subprocess.run(own, cwd=copy, env=environment(), capture_output=True, text=True)
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    git(copy, "add", "-A")
    git(copy, "commit", "-qm", f"deploy {number}")
    return result


def test_a_column_renamed_in_three_deploys_passes_at_each_deploy() -> None:
    with scratch_dir("compat-rename-") as folder:
        copy = copy_repository(ROOT, folder / "repo", commit=True)

        replace(copy, MODELS, OLD_COLUMN, EXPAND_MODEL)
        replace(
            copy,
            SERVICE,
            "description=data.description)",
            "description=data.description, details=data.description)",
        )
        replace(
            copy,
            SERVICE,
            "        thing.description = data.description\n",
            "        thing.description = thing.details = data.description\n",
        )
        expand = deploy(copy, 1, *EXPAND)
        assert expand.returncode == 0, expand.stdout + expand.stderr

        replace(copy, MODELS, EXPAND_MODEL, BACKFILL_MODEL)
        replace(copy, MODELS, ORM_IMPORT, BACKFILL_ORM_IMPORT)
        git(copy, "checkout", "main~1", "--", str(SERVICE))
        backfill = deploy(copy, 2, *BACKFILL)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr

        replace(copy, MODELS, BACKFILL_MODEL, CONTRACT_MODEL)
        replace(copy, MODELS, BACKFILL_ORM_IMPORT, ORM_IMPORT)
        contract = deploy(copy, 3, *CONTRACT)
        assert contract.returncode == 0, contract.stdout + contract.stderr
        assert "passes its tests on the schema with c0ffee000003" in contract.stdout
