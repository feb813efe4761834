"""The migration runner is atomic: a failing revision leaves schema and version as they were.

Run on a copy of the sample service's Alembic directory with two extra revisions: one that
works and one after it that fails halfway through.
"""

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from devstack.postgres import asyncpg_dsn

SAMPLE_ALEMBIC = Path(__file__).parent / "sample" / "alembic"

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
"""


def add_revision(alembic_dir: Path, revision: str, down: str, body: str) -> None:
    source = REVISION.format(revision=revision, down=down, body=body)
    (alembic_dir / "versions" / f"{revision}_extra.py").write_text(source)


def alembic_config(alembic_dir: Path, database_url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))
    config.attributes["database_url"] = database_url.render_as_string(hide_password=False)
    return config


async def schema_of(database_url: URL) -> tuple[list[str], list[tuple[str, str]]]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        versions = []
        if await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            versions = [row[0] for row in await connection.fetch("SELECT * FROM alembic_version")]
        columns = await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
            "ORDER BY table_name, column_name"
        )
        return versions, [(row[0], row[1]) for row in columns]
    finally:
        await connection.close()


@pytest.fixture
def alembic_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "alembic"
    shutil.copytree(SAMPLE_ALEMBIC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_failing_revision_leaves_schema_and_version_unchanged(
    alembic_dir: Path, empty_database_url: URL
) -> None:
    config = alembic_config(alembic_dir, empty_database_url)
    command.upgrade(config, "head")
    before = asyncio.run(schema_of(empty_database_url))
    assert before[0] == ["0002"]
    add_revision(
        alembic_dir,
        "0003",
        "0002",
        '    op.add_column("widgets", sa.Column("colour", sa.String(20)))\n'
        '    op.create_table("gadgets", sa.Column("id", sa.Integer, primary_key=True))',
    )
    add_revision(
        alembic_dir,
        "0004",
        "0003",
        '    op.add_column("widgets", sa.Column("size", sa.Integer))\n'
        '    op.execute("SELECT 1 / 0")',
    )

    with pytest.raises(Exception, match="division by zero"):
        command.upgrade(config, "head")

    # Neither the revision that worked nor the first half of the failing one stayed.
    assert asyncio.run(schema_of(empty_database_url)) == before


def test_a_failing_first_upgrade_leaves_an_empty_database(
    alembic_dir: Path, empty_database_url: URL
) -> None:
    add_revision(alembic_dir, "0003", "0002", '    op.execute("SELECT 1 / 0")')

    with pytest.raises(Exception, match="division by zero"):
        command.upgrade(alembic_config(alembic_dir, empty_database_url), "head")

    assert asyncio.run(schema_of(empty_database_url)) == ([], [])


def test_a_missing_down_revision_is_one_line_before_alembics_error(
    alembic_dir: Path,
    empty_database_url: URL,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_revision(alembic_dir, "0003", down="f903a9d01171", body="    pass")
    monkeypatch.chdir(alembic_dir.parent)

    # Alembic warns, then fails: its full error, which the one line comes before.
    with (
        pytest.warns(UserWarning, match="f903a9d01171"),
        pytest.raises(KeyError, match="f903a9d01171"),
    ):
        command.upgrade(alembic_config(alembic_dir, empty_database_url), "head")

    assert capfd.readouterr().err.splitlines()[0] == (
        "error: alembic/versions/0003_extra.py: revision 0003 has down_revision "
        "'f903a9d01171', which no script in alembic/versions declares: set it to the revision "
        "this one follows"
    )
