"""`python -m users_svc.admin`: the one way to make an administrator, run where users-svc runs."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from users_factories import PASSWORD

from common.settings import AppBaseSettings
from common.testing.plugin import empty_tables

SERVICE = Path(__file__).resolve().parents[1]

# `admin(email, password=..., force=...)`: the command's run, its output and its exit status.
AdminCommand = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
async def admin(
    database_url: URL, settings: AppBaseSettings, engine: AsyncEngine
) -> AsyncIterator[AdminCommand]:
    """`python -m users_svc.admin --email <email>` run as an operator would, on the tests'
    database (through the tests' pooler, when there is one), typing `password` at its prompt.
    What it makes is committed: every table is emptied afterwards."""
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "USERS_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "USERS_DB_POOLER": settings.db_pooler.value,
        "USERS_PASSWORD_TIME_COST": "1",
        "USERS_PASSWORD_MEMORY_KIB": "1024",
    }

    def run(
        email: str, *, password: str = "", force: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "users_svc.admin", "--email", email, *["--force"][: int(force)]],
            input=f"{password}\n",
            cwd=SERVICE,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        yield run
    finally:
        await empty_tables(engine)


async def logged_in(client: AsyncClient, email: str) -> dict[str, str]:
    """The Authorization header of `email` logged in with the tests' password."""
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_an_administrator_is_created_then_can_list_accounts(
    committing_client: AsyncClient, admin: AdminCommand
) -> None:
    made = admin("Root@Example.com", password=PASSWORD)

    assert made.returncode == 0, made.stderr
    assert "root@example.com: created, administrator" in made.stdout
    headers = await logged_in(committing_client, "root@example.com")
    listed = await committing_client.get("/api/v1/users", headers=headers)
    assert listed.status_code == 200
    assert [user["email"] for user in listed.json()["items"]] == ["root@example.com"]


async def is_superuser(client: AsyncClient, email: str) -> bool:
    me = await client.get("/api/v1/users/me", headers=await logged_in(client, email))
    return bool(me.json()["is_superuser"])


async def test_an_existing_account_is_promoted_only_with_its_password(
    committing_client: AsyncClient, admin: AdminCommand
) -> None:
    # Emails are never verified: anyone may have signed up with the address to be promoted.
    signup = {"email": "boss@example.com", "full_name": "Boss", "password": PASSWORD}
    assert (await committing_client.post("/api/v1/users", json=signup)).status_code == 201

    refused = admin("boss@example.com", password="the operator's guess")
    nothing = admin("boss@example.com")

    for run in (refused, nothing):
        assert run.returncode == 1
        assert "Nothing changed" in run.stderr
    assert await is_superuser(committing_client, "boss@example.com") is False

    made = admin("boss@example.com", password=PASSWORD)

    assert made.returncode == 0, made.stderr
    assert "boss@example.com: promoted, administrator" in made.stdout
    assert await is_superuser(committing_client, "boss@example.com") is True


async def test_force_promotes_without_the_password_with_a_warning_printed_and_logged(
    committing_client: AsyncClient, admin: AdminCommand
) -> None:
    signup = {"email": "ada@example.com", "full_name": "Ada", "password": PASSWORD}
    assert (await committing_client.post("/api/v1/users", json=signup)).status_code == 201

    made = admin("ada@example.com", force=True)

    assert made.returncode == 0, made.stderr
    assert "ada@example.com: promoted, administrator" in made.stdout
    printed, logged = (
        [line for line in made.stderr.splitlines() if marker in line]
        for marker in ("WARNING: ada@example.com was promoted without its password", "WARNING [")
    )
    assert printed
    assert len(logged) == 1
    assert (
        "users_svc.admin: ada@example.com promoted to administrator without its password"
        in (logged[0])
    )
    assert await is_superuser(committing_client, "ada@example.com") is True


async def test_a_short_password_is_refused_and_nothing_is_made(
    admin: AdminCommand, engine: AsyncEngine
) -> None:
    made = admin("root@example.com", password="short")

    assert made.returncode == 1
    assert "password" in made.stderr
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM users")) == 0
