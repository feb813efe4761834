"""The design card's migration command, exactly as a user types it, in every form that works.

`uv run --package things-svc alembic ...` at the repository root and in the service's folder,
`uv run --directory services/things-svc alembic ...` and `make migrate SERVICE=things-svc`, each
on a fresh database named by the service's own setting. (`revision --autogenerate` writes a file:
the scaffold suite runs it in a copy of the repository.)
"""

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from common.revisions import expected_heads
from common.testing.plugin import worker_id
from devstack.postgres import asyncpg_dsn, drop_database, recreate_database

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "services" / "things-svc"
HEAD = next(iter(expected_heads(SERVICE / "alembic")))
UV = os.environ.get("UV") or shutil.which("uv") or "uv"


@pytest.fixture
def fresh_database(postgres_server: URL) -> Iterator[str]:
    name = f"test_migration_commands_{worker_id()}"
    url = recreate_database(postgres_server, name)
    yield url.render_as_string(hide_password=False)
    drop_database(postgres_server, name)


async def versions(database_url: str) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(make_url(database_url)))
    try:
        return [row[0] for row in await connection.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await connection.close()


def run(command: list[str], *, cwd: Path, database_url: str) -> str:
    env = {**os.environ, "THINGS_DATABASE_URL": database_url}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} in {cwd}:\n{output[-3000:]}"
    return output


@pytest.mark.parametrize(
    ("command", "cwd"),
    [
        ([UV, "run", "--package", "things-svc", "alembic", "upgrade", "head"], ROOT),
        ([UV, "run", "--package", "things-svc", "alembic", "upgrade", "head"], SERVICE),
        ([UV, "run", "--directory", "services/things-svc", "alembic", "upgrade", "head"], ROOT),
        (["make", "--no-print-directory", "migrate", "SERVICE=things-svc"], ROOT),
    ],
    ids=["root", "service-folder", "uv-directory", "make-migrate"],
)
def test_each_form_migrates_an_empty_database(
    command: list[str], cwd: Path, fresh_database: str
) -> None:
    run(command, cwd=cwd, database_url=fresh_database)

    assert asyncio.run(versions(fresh_database)) == [HEAD]


def test_current_check_history_and_downgrade_from_the_root(fresh_database: str) -> None:
    alembic = [UV, "run", "--package", "things-svc", "alembic"]

    run([*alembic, "upgrade", "head"], cwd=ROOT, database_url=fresh_database)
    assert "No new upgrade operations detected" in run(
        [*alembic, "check"], cwd=ROOT, database_url=fresh_database
    )
    assert "create things" in run([*alembic, "history"], cwd=ROOT, database_url=fresh_database)
    run([*alembic, "downgrade", "base"], cwd=ROOT, database_url=fresh_database)
    assert HEAD not in run([*alembic, "current"], cwd=ROOT, database_url=fresh_database)


def test_the_root_without_a_service_names_the_forms_that_work() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    for form in (
        "uv run --package <service> alembic",
        "cd services/<service> && uv run alembic",
        "uv run --directory services/<service> alembic",
        "make migrate SERVICE=<service>",
    ):
        assert form in result.stderr
    assert "things-svc, users-svc" in result.stderr


def test_autogenerate_on_a_database_behind_the_head_says_to_apply_the_revisions(
    fresh_database: str,
) -> None:
    command = [UV, "run", "--package", "things-svc", "alembic", "revision", "--autogenerate"]
    env = {**os.environ, "THINGS_DATABASE_URL": fresh_database}
    env.pop("VIRTUAL_ENV", None)
    versions = sorted((SERVICE / "alembic" / "versions").iterdir())

    result = subprocess.run(
        [*command, "-m", "add colour"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode != 0
    assert (
        f"error: the database is at no revision and the scripts at {HEAD}: apply them before "
        "autogenerating (`alembic upgrade head`, or `make migrate SERVICE=things-svc` on the "
        "stack's database)"
    ) in result.stderr.splitlines()
    assert "Target database is not up to date" in result.stderr
    assert sorted((SERVICE / "alembic" / "versions").iterdir()) == versions
