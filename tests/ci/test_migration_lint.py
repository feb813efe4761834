"""tools/migration_lint.py, which `make lint` runs: squawk on the SQL of each Alembic revision.

Each test adds revisions after the head of a scratch copy of things-svc's Alembic directory and
lints that copy with the real command and the real squawk; the revisions docs/development.md
shows are linted, and applied to a real Postgres, the same way.
"""

import asyncio
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

import migration_lint
from common.testing.plugin import worker_id
from devstack.postgres import asyncpg_dsn, drop_database, recreate_database

from .conftest import REPO_ROOT, TOOLS

SERVICE = REPO_ROOT / "services" / "things-svc"
DEVELOPMENT_DOCS = REPO_ROOT / "docs" / "development.md"

HEADER = '''"""{name}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


'''
DOWNGRADE = """

def downgrade() -> None:
    pass
"""

# Each unsafe change, and the rule squawk reports it under.
UNSAFE = {
    "not-null-without-default": (
        'op.add_column("things", sa.Column("colour", sa.Text(), nullable=False))',
        "adding-required-field",
    ),
    "index-without-concurrently": (
        'op.create_index("ix_things_name", "things", ["name"])',
        "require-concurrent-index-creation",
    ),
    "drop-column": ('op.drop_column("things", "description")', "ban-drop-column"),
}


def scratch_service(tmp_path: Path, revisions: dict[str, str]) -> Path:
    """A copy of things-svc's migrations with more revisions after its head, in order: each
    name with the source of its upgrade() (and downgrade(), if it has one)."""
    copy = tmp_path / "things-svc"
    copy.mkdir(parents=True)
    shutil.copyfile(SERVICE / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(
        SERVICE / "alembic", copy / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    down = ScriptDirectory.from_config(Config(toml_file=copy / "pyproject.toml")).get_current_head()
    for number, (name, source) in enumerate(revisions.items(), start=1):
        revision = f"f00000000{number:03d}"
        header = HEADER.format(name=name, revision=revision, down=down)
        source += "" if "def downgrade" in source else DOWNGRADE
        (copy / "alembic" / "versions" / f"2999_{revision}_{name}.py").write_text(header + source)
        down = revision
    return copy


def upgrade(*lines: str) -> str:
    return "def upgrade() -> None:\n" + "".join(f"    {line}\n" for line in lines)


def revisions_of(service: Path) -> int:
    """How many revisions the service has (a copy where the docs' commands ran has more)."""
    return len(list((service / "alembic" / "versions").glob("*.py")))


def lint(service: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = migration_lint.main([str(service)])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("case", UNSAFE)
def test_an_unsafe_revision_fails_naming_itself_and_the_rule(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, rule = UNSAFE[case]

    service = scratch_service(tmp_path, {case: upgrade(change)})
    status, out = lint(service, capsys)

    assert status == 1
    assert rule in out
    assert f"f00000000001_{case}.py (upgrade " in out
    assert out.splitlines()[-1] == f"squawk: 1 of {revisions_of(service)} revisions to fix or waive"


@pytest.mark.parametrize("case", UNSAFE)
def test_the_same_revision_passes_with_a_justified_waiver(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, rule = UNSAFE[case]
    waiver = f'op.execute("-- squawk-ignore-file {rule} -- the test says it is safe here")'

    service = scratch_service(tmp_path, {case: upgrade(waiver, change)})
    status, out = lint(service, capsys)

    assert (status, out) == (0, f"squawk: 0 of {revisions_of(service)} revisions to fix or waive\n")


def test_a_waiver_without_its_reason_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, rule = UNSAFE["drop-column"]
    waiver = f'op.execute("-- squawk-ignore-file {rule}")'

    status, out = lint(scratch_service(tmp_path, {"drop": upgrade(waiver, change)}), capsys)

    assert status == 1
    assert f"a waiver says why after a second '--': squawk-ignore-file {rule};" in out


def test_every_revision_of_every_service_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert migration_lint.main([]) == 0
    assert capsys.readouterr().out.startswith("squawk: 0 of ")


@pytest.mark.processes
def test_the_command_make_lint_runs_fails_then_passes_with_the_waiver(tmp_path: Path) -> None:
    change, rule = UNSAFE["drop-column"]
    command = [sys.executable, str(TOOLS / "migration_lint.py")]
    unsafe = scratch_service(tmp_path / "unsafe", {"drop": upgrade(change)})
    waiver = f'op.execute("-- squawk-ignore-file {rule} -- nothing reads it any more")'
    waived = scratch_service(tmp_path / "waived", {"drop": upgrade(waiver, change)})

    failed = subprocess.run([*command, str(unsafe)], capture_output=True, text=True, check=False)
    passed = subprocess.run([*command, str(waived)], capture_output=True, text=True, check=False)

    assert failed.returncode == 1, failed.stderr
    assert rule in failed.stdout
    assert passed.returncode == 0, passed.stdout + passed.stderr


def docs_revisions() -> dict[str, str]:
    """The revisions docs/development.md shows under "Migration linting", in the order they
    would ship: the concurrent index, then the column renamed in three deploys."""
    section = DEVELOPMENT_DOCS.read_text().split("\n## Migration linting\n")[1].split("\n## ")[0]
    blocks = [
        textwrap.dedent(block)
        for _, block in re.findall(r"^( *)```python\n(.*?)^\1```", section, re.DOTALL | re.M)
        if "def upgrade()" in block  # not the models beside them
    ]
    order = {
        "index": "autocommit_block",
        "expand": "op.add_column",
        "backfill": "UPDATE",
        "contract": "op.drop_column",
    }
    assert len(blocks) == len(order)
    return {name: next(b for b in blocks if shows in b) for name, shows in order.items()}


def test_the_docs_revisions_pass_the_lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = scratch_service(tmp_path, docs_revisions())
    status, out = lint(service, capsys)

    assert (status, out) == (0, f"squawk: 0 of {revisions_of(service)} revisions to fix or waive\n")


def test_the_docs_revisions_apply_on_postgres_the_index_built_concurrently(
    tmp_path: Path, postgres_server: URL
) -> None:
    service = scratch_service(tmp_path, docs_revisions())
    database = recreate_database(postgres_server, f"test_docs_revisions_{worker_id()}")
    config = Config(toml_file=service / "pyproject.toml")
    config.attributes["database_url"] = database.render_as_string(hide_password=False)
    try:
        command.upgrade(config, "head")
        index, columns = asyncio.run(schema_of(database))
    finally:
        drop_database(postgres_server, database.database or "")

    assert index == ("ix_things_name", True)  # built, and valid
    assert "details" in columns
    assert "description" not in columns


async def schema_of(database: URL) -> tuple[tuple[str, bool], list[str]]:
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        index = await connection.fetchrow(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indexrelid = 'ix_things_name'::regclass"
        )
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'things'"
        )
        return (index[0], index[1]), [row[0] for row in columns]
    finally:
        await connection.close()
