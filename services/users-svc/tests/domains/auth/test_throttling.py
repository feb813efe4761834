"""Failed logins counted per account and per client address: past a limit, 429 and Retry-After,
the same whether or not an account has the email."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Accounts

from common.db import Database
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client

PROBLEM = "application/problem+json"
LOGIN = "/api/v1/auth/login"
TOKEN = "/api/v1/auth/token"
LIMIT = 20  # the default per account


def login(email: str, password: str = "wrong password") -> dict[str, str]:
    return {"email": email, "password": password}


def answer(response: Response) -> tuple[int, str | None, dict[str, Any]]:
    """What a client sees, less what differs on every request by design."""
    body = {k: v for k, v in response.json().items() if k not in {"request_id", "instance"}}
    return response.status_code, response.headers.get("retry-after"), body


async def fail(client: AsyncClient, email: str, times: int) -> list[int]:
    return [(await client.post(LOGIN, json=login(email))).status_code for _ in range(times)]


@asynccontextmanager
async def app_with(
    service: ServiceUnderTest, database_url: URL, database: Database, **settings: Any
) -> AsyncIterator[AsyncClient]:
    app = service.app(service.settings(database_url, **settings), database=database)
    async with open_client(app) as client:
        yield client


async def test_twenty_wrong_passwords_then_429_even_with_the_right_one(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()

    assert await fail(client, ada.email, LIMIT) == [401] * LIMIT
    wrong = await client.post(LOGIN, json=login(ada.email))
    right = await client.post(LOGIN, json=login(ada.email, PASSWORD))

    assert wrong.status_code == right.status_code == 429
    assert wrong.headers["content-type"] == PROBLEM
    assert 0 < int(wrong.headers["retry-after"]) <= 900
    assert wrong.json()["detail"] == (
        "Too many failed logins for this account or from this address. Retry later."
    )
    assert answer(right) == answer(wrong)


async def test_an_unknown_email_gets_the_same_answers(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    known = await fail(client, ada.email, LIMIT)
    unknown = await fail(client, "nobody@example.com", LIMIT)

    assert known == unknown == [401] * LIMIT
    limited_known = await client.post(LOGIN, json=login(ada.email))
    limited_unknown = await client.post(LOGIN, json=login("nobody@example.com"))
    assert answer(limited_known)[::2] == answer(limited_unknown)[::2]
    assert limited_unknown.status_code == 429


async def test_the_form_login_counts_with_the_json_one_and_is_limited_alike(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    await fail(client, ada.email, LIMIT - 1)
    form = {"username": ada.email, "password": "wrong password"}

    assert (await client.post(TOKEN, data=form)).status_code == 401
    assert (await client.post(TOKEN, data=form)).status_code == 429


async def test_a_successful_login_clears_the_accounts_count(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()

    assert await fail(client, ada.email, LIMIT - 1) == [401] * (LIMIT - 1)
    assert (await client.post(LOGIN, json=login(ada.email, PASSWORD))).status_code == 200
    assert await fail(client, ada.email, LIMIT) == [401] * LIMIT
    assert (await client.post(LOGIN, json=login(ada.email))).status_code == 429


async def test_after_the_window_login_works_again(
    service: ServiceUnderTest, database_url: URL, test_database: Database, accounts: Accounts
) -> None:
    ada = await accounts.create()
    async with app_with(service, database_url, test_database, login_window_seconds=3) as client:
        assert await fail(client, ada.email, LIMIT) == [401] * LIMIT
        limited = await client.post(LOGIN, json=login(ada.email, PASSWORD))
        assert limited.status_code == 429
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 3

        await asyncio.sleep(retry_after)
        assert (await client.post(LOGIN, json=login(ada.email, PASSWORD))).status_code == 200


async def test_one_client_is_limited_across_accounts(
    service: ServiceUnderTest, database_url: URL, test_database: Database, accounts: Accounts
) -> None:
    ada = await accounts.create()
    async with app_with(
        service, database_url, test_database, login_failures_per_client=5
    ) as client:
        sprayed = [
            (await client.post(LOGIN, json=login(f"guess-{n}@example.com"))).status_code
            for n in range(6)
        ]
        right = await client.post(LOGIN, json=login(ada.email, PASSWORD))

    assert sprayed == [401] * 5 + [429]
    assert right.status_code == 429


async def test_counters_hold_no_email_or_address(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    await fail(client, "someone@example.com", 2)

    rows = (await db_session.execute(text("SELECT scope, key, failures FROM login_failures"))).all()

    assert sorted((row.scope, len(row.key), row.failures) for row in rows) == [
        ("account", 32, 2),
        ("client", 32, 2),
    ]
    assert all(b"someone" not in row.key and b"127.0.0.1" not in row.key for row in rows)
