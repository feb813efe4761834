"""The embedded server as its users see it: it starts, keeps its data, stops, crashes, refuses."""

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from sqlalchemy.engine import URL

from devstack.postgres import (
    DISPOSABLE_SERVER_SETTINGS,
    TEST_DATABASE_DIRECT_URL_ENV,
    TEST_DATABASE_POOLER_ENV,
    TEST_DATABASE_URL_ENV,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    asyncpg_dsn,
    scratch_dir,
    server_url,
)
from devstack.processes import free_port, is_alive, port_is_free


@pytest.fixture
def data_root() -> Iterator[Path]:
    with scratch_dir() as path:
        yield path


async def query(postgres: EmbeddedPostgres | URL, sql: str) -> object:
    url = postgres.url() if isinstance(postgres, EmbeddedPostgres) else postgres
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def test_serves_postgres_18_on_its_loopback_port(postgres: EmbeddedPostgres) -> None:
    assert postgres.is_running()
    assert not port_is_free("127.0.0.1", postgres.port)
    assert await query(postgres, "SHOW server_version_num") >= "180000"  # type: ignore[operator]
    assert await query(postgres, "SHOW unix_socket_directories") == ""


async def test_keeps_committed_data_across_stop_and_start(postgres: EmbeddedPostgres) -> None:
    await query(postgres, "CREATE TABLE kept AS SELECT 42 AS answer")
    pid = postgres.pid()

    postgres.stop()
    assert not postgres.is_running()
    assert pid is not None
    assert not is_alive(pid)
    assert port_is_free("127.0.0.1", postgres.port)
    postgres.start()

    assert await query(postgres, "SELECT answer FROM kept") == 42


async def test_kill_is_a_crash_it_recovers_from(postgres: EmbeddedPostgres) -> None:
    await query(postgres, "CREATE TABLE survivor AS SELECT 'committed' AS state")
    postmaster = psutil.Process(postgres.pid())
    backends = postmaster.children(recursive=True)

    postgres.kill()

    assert not postgres.is_running()
    assert not [p for p in [postmaster, *backends] if is_alive(p.pid)]
    assert postgres.lock_file.exists()  # a crash leaves the lock file behind
    postgres.start()
    assert await query(postgres, "SELECT state FROM survivor") == "committed"


async def test_keeps_data_safe_from_a_crash_of_the_machine(postgres: EmbeddedPostgres) -> None:
    # `make up`'s server (and the benchmark's): Postgres's defaults, every commit on disk.
    for name in DISPOSABLE_SERVER_SETTINGS:
        assert await query(postgres, f"SHOW {name}") == "on", name


async def test_the_tests_own_server_trades_durability_for_speed(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server `make test` starts when no TEST_DATABASE_URL names one: rebuilt by every run.
    for variable in (TEST_DATABASE_URL_ENV, TEST_DATABASE_POOLER_ENV, TEST_DATABASE_DIRECT_URL_ENV):
        monkeypatch.delenv(variable, raising=False)
    # It applies its settings with an event loop of its own: give it a thread without one.
    url = await asyncio.to_thread(server_url, request.config.rootpath / ".local" / "test-postgres")

    for name, value in DISPOSABLE_SERVER_SETTINGS.items():
        assert await query(url, f"SHOW {name}") == value, name


def test_refuses_to_start_twice(postgres: EmbeddedPostgres) -> None:
    with pytest.raises(EmbeddedPostgresError, match="already runs"):
        postgres.start()


def test_refuses_a_port_in_use(data_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        postgres = EmbeddedPostgres(data_root / "pgdata", port=taken.getsockname()[1])

        with pytest.raises(EmbeddedPostgresError, match="already in use"):
            postgres.start()

    assert not postgres.is_running()


def test_refuses_a_lock_file_naming_another_live_process(data_root: Path) -> None:
    postgres = EmbeddedPostgres(data_root / "pgdata", port=free_port())
    postgres.data_dir.mkdir()
    postgres.lock_file.write_text(f"{os.getpid()}\n{postgres.data_dir}\n")

    with pytest.raises(EmbeddedPostgresError, match="stale lock file") as error:
        postgres.start()

    assert str(postgres.lock_file) in str(error.value)
    assert not postgres.is_running()


async def test_with_a_password_every_login_is_checked_also_on_a_trusting_data_folder(
    data_root: Path,
) -> None:
    # A data folder made without passwords (as every `make up` made one before they were checked).
    trusting = EmbeddedPostgres(data_root / "pgdata", port=free_port())
    trusting.start()
    await query(trusting, "CREATE ROLE users LOGIN PASSWORD 'users'")
    trusting.stop()
    postgres = EmbeddedPostgres(data_root / "pgdata", port=trusting.port, password="pg-pass")
    postgres.start()
    try:
        assert await query(postgres, "SELECT current_user") == "postgres"
        users = postgres.url(user="users", password="users")
        assert await query(users, "SELECT current_user") == "users"
        for refused in (
            postgres.url(password="wrong"),
            postgres.url(user="users", password="wrong"),
            postgres.url(user="nobody", password="users"),
        ):
            with pytest.raises(asyncpg.InvalidPasswordError):
                await query(refused, "SELECT 1")
    finally:
        postgres.stop()
