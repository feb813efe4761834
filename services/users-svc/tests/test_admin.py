"""`python -m users_svc.admin`: the one way to make an administrator, run where users-svc runs."""

import os
import subprocess
import sys
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from users_factories import PASSWORD

from common.settings import AppBaseSettings
from common.testing.plugin import empty_tables

SERVICE = Path(__file__).resolve().parents[1]


def run(
    command: list[str], *, database_url: URL, settings: AppBaseSettings, password: str = ""
) -> subprocess.CompletedProcess[str]:
    """The command run as an operator would, on the tests' database (through the tests' pooler,
    when there is one)."""
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "USERS_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "USERS_DB_POOLER": settings.db_pooler.value,
        "USERS_PASSWORD_TIME_COST": "1",
        "USERS_PASSWORD_MEMORY_KIB": "1024",
    }
    return subprocess.run(
        command,
        input=f"{password}\n",
        cwd=SERVICE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def logged_in(client: AsyncClient, email: str) -> dict[str, str]:
    """The Authorization header of `email` logged in with the tests' password."""
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_an_administrator_is_created_then_can_list_accounts(
    committing_client: AsyncClient,
    database_url: URL,
    engine: AsyncEngine,
    settings: AppBaseSettings,
) -> None:
    try:
        made = run(
            [sys.executable, "-m", "users_svc.admin", "--email", "Root@Example.com"],
            database_url=database_url,
            settings=settings,
            password=PASSWORD,
        )
        assert made.returncode == 0, made.stderr
        assert "root@example.com: created, administrator" in made.stdout

        headers = await logged_in(committing_client, "root@example.com")
        listed = await committing_client.get("/api/v1/users", headers=headers)
        assert listed.status_code == 200
        assert [user["email"] for user in listed.json()["items"]] == ["root@example.com"]
    finally:
        await empty_tables(engine)


async def test_an_existing_account_is_promoted_without_a_password(
    committing_client: AsyncClient,
    database_url: URL,
    engine: AsyncEngine,
    settings: AppBaseSettings,
) -> None:
    try:
        signup = {"email": "ada@example.com", "full_name": "Ada", "password": PASSWORD}
        assert (await committing_client.post("/api/v1/users", json=signup)).status_code == 201

        made = run(
            [sys.executable, "-m", "users_svc.admin", "--email", "ada@example.com"],
            database_url=database_url,
            settings=settings,
        )

        assert made.returncode == 0, made.stderr
        assert "ada@example.com: promoted, administrator" in made.stdout
        headers = await logged_in(committing_client, "ada@example.com")
        me = await committing_client.get("/api/v1/users/me", headers=headers)
        assert me.json()["is_superuser"] is True
    finally:
        await empty_tables(engine)


async def test_a_short_password_is_refused_and_nothing_is_made(
    database_url: URL, engine: AsyncEngine, settings: AppBaseSettings
) -> None:
    try:
        made = run(
            [sys.executable, "-m", "users_svc.admin", "--email", "root@example.com"],
            database_url=database_url,
            settings=settings,
            password="short",
        )

        assert made.returncode == 1
        assert "password" in made.stderr
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM users")) == 0
    finally:
        await empty_tables(engine)
