"""Failed logins counted per account and per client address: past a limit, 429 and Retry-After,
the same whether or not an account has the email."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
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
        "Too many wrong passwords for this account or from this address. Retry later."
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
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    # The window's end is brought to now instead of waited for (15 minutes): the reliability
    # suite waits for a real one, across two processes.
    ada = await accounts.create()
    assert await fail(client, ada.email, LIMIT) == [401] * LIMIT
    assert (await client.post(LOGIN, json=login(ada.email, PASSWORD))).status_code == 429

    await db_session.execute(text("UPDATE login_failures SET window_ends_at = clock_timestamp()"))
    await db_session.commit()

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


async def test_an_ipv6_client_is_counted_by_its_64_bit_prefix(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    settings = service.settings(database_url, login_failures_per_client=2)
    app = service.app(settings, database=test_database)

    async def from_address(address: str, email: str) -> int:
        transport = ASGITransport(app=manager.app, client=(address, 50_000))
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            return (await client.post(LOGIN, json=login(email))).status_code

    async with LifespanManager(app) as manager:
        first = await from_address("2001:db8:1:2::1", "a@example.com")
        second = await from_address("2001:db8:1:2::ffff", "b@example.com")
        same_prefix = await from_address("2001:db8:1:2:abcd::7", "c@example.com")
        next_prefix = await from_address("2001:db8:1:3::1", "d@example.com")

    assert (first, second, same_prefix, next_prefix) == (401, 401, 429, 401)
