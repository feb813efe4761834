"""Passwords: the hashing limit (a bounded number of argon2 hashes at once, 503 beyond a short
wait), the blocklist of common passwords, and Unicode normalisation."""

import asyncio
import time
import unicodedata

from httpx import AsyncClient, Response
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from users_factories import PASSWORD, Accounts

from common.testing import ServiceUnderTest
from common.testing.plugin import empty_tables, open_client

PROBLEM = "application/problem+json"
USERS = "/api/v1/users"


async def log_in(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_hashes_beyond_the_limit_are_refused_with_503_not_queued(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    # The default argon2 costs (tens of milliseconds a hash), one hash at a time, a short wait.
    settings = service.settings(
        database_url,
        password_time_cost=3,
        password_memory_kib=65_536,
        password_hash_concurrency=1,
        password_hash_wait_seconds=0.05,
    )
    bodies = [
        {"email": f"user-{n}@example.com", "full_name": "User", "password": "correct horse"}
        for n in range(6)
    ]
    try:
        async with open_client(service.app(settings)) as client:
            started = time.monotonic()
            responses = await asyncio.gather(
                *(client.post("/api/v1/users", json=body) for body in bodies)
            )
            elapsed = time.monotonic() - started
    finally:
        await empty_tables(engine)

    statuses = sorted(response.status_code for response in responses)
    refused = [response for response in responses if response.status_code == 503]
    assert statuses[0] == 201
    assert set(statuses) == {201, 503}, statuses
    assert {(r.headers["content-type"], r.headers["retry-after"]) for r in refused} == {
        (PROBLEM, "1")
    }
    # Refused at once, not after the others' hashes.
    assert elapsed < 5


async def test_the_most_common_passwords_are_refused_at_signup_naming_the_rule(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # Listed ones, in another letter case, and in another Unicode form (fullwidth digits).
    for password in (
        "password123",
        "12345678",
        "Password123",
        "qwertyuiop",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
    ):
        body = {"email": "ada@example.com", "full_name": "Ada", "password": password}

        response = await client.post(USERS, json=body)

        assert response.status_code == 422, password
        assert response.headers["content-type"] == PROBLEM
        [error] = response.json()["errors"]
        assert error["loc"] == ["body", "password"]
        assert error["msg"] == (
            "Value error, this password is too common: it is one of the most used passwords"
        )
    assert await db_session.scalar(text("SELECT count(*) FROM users")) == 0


async def test_a_common_new_password_is_refused_and_the_old_one_still_works(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    change = {"current_password": PASSWORD, "new_password": "password123"}

    refused = await client.post("/api/v1/users/me/password", json=change, headers=ada.auth)

    assert refused.status_code == 422
    assert "this password is too common" in refused.json()["errors"][0]["msg"]
    assert (await log_in(client, ada.email, PASSWORD)).status_code == 200


async def test_a_password_typed_in_another_unicode_form_logs_in(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    composed = unicodedata.normalize("NFC", "crème brûlée")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    body = {"email": "ada@example.com", "full_name": "Ada", "password": composed}
    assert (await client.post(USERS, json=body)).status_code == 201

    assert (await log_in(client, "ada@example.com", decomposed)).status_code == 200
    assert (await log_in(client, "ada@example.com", "ｃｒèｍｅ ｂｒûｌéｅ")).status_code == 200
    assert (await log_in(client, "ada@example.com", "creme brulee")).status_code == 401


async def test_a_hash_made_before_normalisation_still_logs_in_and_is_replaced(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    await accounts.create()
    typed = "\ufb01ve \ufb01ngers"  # the "fi" ligature, which NFKC turns into "f" and "i"
    legacy = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024),)).hash(typed)
    await db_session.execute(text("UPDATE users SET hashed_password = :h"), {"h": legacy})
    await db_session.commit()

    assert (await log_in(client, "ada@example.com", typed)).status_code == 200

    assert await db_session.scalar(text("SELECT hashed_password FROM users")) != legacy
    assert (await log_in(client, "ada@example.com", "five fingers")).status_code == 200
