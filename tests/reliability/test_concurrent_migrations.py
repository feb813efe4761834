"""Five `alembic upgrade head` processes at once on an empty database, several times over."""

import asyncio
import subprocess

import asyncpg
import pytest
from sqlalchemy.engine import URL

from devstack.postgres import EmbeddedPostgres, asyncpg_dsn, drop_database, recreate_database

from .conftest import Report
from .processes import migrate, upgrade_command

pytestmark = pytest.mark.reliability

MIGRATORS = 5
ROUNDS = 2


def schema_dump(postgres: EmbeddedPostgres, database: URL) -> str:
    return subprocess.run(
        [
            str(postgres.bin_dir / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--restrict-key=fixed",  # the same \restrict line in every dump
            f"--dbname={asyncpg_dsn(database)}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def version_rows(database: URL) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        return [row[0] for row in await connection.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await connection.close()


def upgrade_at_once(service: str, database: URL) -> list[tuple[int, str]]:
    processes = [upgrade_command(service, database) for _ in range(MIGRATORS)]
    results = []
    for process in processes:
        output, _ = process.communicate(timeout=180)
        results.append((process.returncode, output.decode()))
    return results


@pytest.mark.parametrize("service", ["users-svc", "things-svc"])
async def test_five_concurrent_upgrades_end_with_one_correct_schema(
    service: str, postgres: EmbeddedPostgres, report: Report
) -> None:
    server = postgres.url()
    reference = await asyncio.to_thread(recreate_database, server, "migrated_once")
    await asyncio.to_thread(migrate, service, reference)
    expected = await asyncio.to_thread(schema_dump, postgres, reference)
    expected_versions = await version_rows(reference)
    outcomes = []
    try:
        for round_number in range(ROUNDS):
            database = await asyncio.to_thread(recreate_database, server, "migrated_at_once")
            results = await asyncio.to_thread(upgrade_at_once, service, database)
            failed = [output for code, output in results if code != 0]
            assert failed == [], f"round {round_number}: {failed[0][-2000:]}"
            assert await version_rows(database) == expected_versions
            assert await asyncio.to_thread(schema_dump, postgres, database) == expected
            outcomes.append(len(results))
    finally:
        for name in ("migrated_once", "migrated_at_once"):
            await asyncio.to_thread(drop_database, server, name)
    report(
        f"concurrent upgrades ({service}): {ROUNDS} rounds of {MIGRATORS} migrators on an empty "
        f"database: all succeeded, 1 version row ({expected_versions[0][:12]}), "
        "schema identical to a single run"
    )
