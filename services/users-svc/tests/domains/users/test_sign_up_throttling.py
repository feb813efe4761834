"""Sign-ups are counted per client address: past the limit, 429 with Retry-After. A new password
is hashed before the request's transaction takes its connection, so hashing never holds one."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from users_factories import PASSWORD

from common.db import Database, new_id
from common.testing import ServiceUnderTest, TokenFactory
from common.testing.plugin import empty_tables, open_client
from users_svc.domains.users.models import User
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings

USERS = "/api/v1/users"
# Enough argon2 passes (about two seconds of hashing, more on a busy machine) that a request
# made meanwhile lands while the hash runs, and gives up waiting for the pool before it ends.
SLOW_HASH = 2500
POOL_TIMEOUT_SECONDS = 0.5
PROBE_AFTER_SECONDS = 0.4


def sign_up(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "full_name": "Ada Lovelace", "password": password}


@asynccontextmanager
async def app_with(
    service: ServiceUnderTest, database_url: URL, database: Database, **settings: Any
) -> AsyncIterator[AsyncClient]:
    app = service.app(service.settings(database_url, **settings), database=database)
    async with open_client(app) as client:
        yield client


async def test_sign_ups_past_the_limit_are_429_with_retry_after(
    service: ServiceUnderTest, database_url: URL, test_database: Database, db_session: AsyncSession
) -> None:
    async with app_with(service, database_url, test_database, sign_ups_per_client=3) as client:
        allowed = [
            (await client.post(USERS, json=sign_up(f"user-{n}@example.com"))).status_code
            for n in range(3)
        ]
        refused = await client.post(USERS, json=sign_up("one-more@example.com"))

    assert allowed == [201] * 3
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert refused.json()["detail"] == "Too many sign-ups from this address. Retry later."
    assert await db_session.scalar(text("SELECT count(*) FROM users")) == 3


async def test_another_client_still_signs_up(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    settings = service.settings(database_url, sign_ups_per_client=1)
    app = service.app(settings, database=test_database)

    async def from_address(address: str, email: str) -> int:
        transport = ASGITransport(app=manager.app, client=(address, 50_000))
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            return (await client.post(USERS, json=sign_up(email))).status_code

    async with LifespanManager(app) as manager:
        first = await from_address("198.51.100.1", "a@example.com")
        again = await from_address("198.51.100.1", "b@example.com")
        other = await from_address("198.51.100.2", "c@example.com")

    assert (first, again, other) == (201, 429, 201)


async def test_invalid_sign_ups_do_not_count(
    service: ServiceUnderTest, database_url: URL, test_database: Database, db_session: AsyncSession
) -> None:
    async with app_with(service, database_url, test_database, sign_ups_per_client=2) as client:
        invalid = [
            (await client.post(USERS, json=sign_up(f"user-{n}@example.com", "short"))).status_code
            for n in range(3)
        ]
        valid = [
            (await client.post(USERS, json=sign_up(f"user-{n}@example.com"))).status_code
            for n in range(2)
        ]

    assert invalid == [422] * 3
    assert valid == [201] * 2
    assert await db_session.scalar(text("SELECT sign_ups FROM sign_ups")) == 2


@asynccontextmanager
async def one_connection_app(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> AsyncIterator[AsyncClient]:
    """The app on its own committed database, with a pool of one connection that a request
    waits for at most half a second (then 503), and slow hashing."""
    settings = service.settings(
        database_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=POOL_TIMEOUT_SECONDS,
        password_time_cost=SLOW_HASH,
    )
    try:
        async with open_client(service.app(settings)) as client:
            yield client
    finally:
        await empty_tables(engine)


async def stored_account(
    engine: AsyncEngine, settings: Settings, token_factory: TokenFactory, email: str
) -> dict[str, str]:
    """An account written straight to the database, its password hashed at the tests' cheap
    cost, and a token for it: only the request under test hashes slowly."""
    hashed = await PasswordHasher.from_settings(settings).hash(PASSWORD)
    user_id = new_id()
    async with AsyncSession(engine) as session, session.begin():
        session.add(User(id=user_id, email=email, full_name="Ada Lovelace", hashed_password=hashed))
    return token_factory.auth(user_id)


async def test_a_sign_up_holds_no_connection_while_it_hashes(
    service: ServiceUnderTest,
    database_url: URL,
    engine: AsyncEngine,
    settings: Settings,
    token_factory: TokenFactory,
) -> None:
    async with one_connection_app(service, database_url, engine) as client:
        ada = await stored_account(engine, settings, token_factory, "ada@example.com")

        signing_up = asyncio.create_task(client.post(USERS, json=sign_up("bob@example.com")))
        await asyncio.sleep(PROBE_AFTER_SECONDS)
        read = await client.get(f"{USERS}/me", headers=ada)
        hashing = not signing_up.done()
        signed_up = await signing_up

    assert hashing
    assert read.status_code == 200
    assert signed_up.status_code == 201


async def test_a_password_change_holds_no_connection_while_it_hashes(
    service: ServiceUnderTest,
    database_url: URL,
    engine: AsyncEngine,
    settings: Settings,
    token_factory: TokenFactory,
) -> None:
    async with one_connection_app(service, database_url, engine) as client:
        ada = await stored_account(engine, settings, token_factory, "ada@example.com")
        bob = await stored_account(engine, settings, token_factory, "bob@example.com")
        body = {"current_password": PASSWORD, "new_password": "a new password!"}

        changing = asyncio.create_task(client.post(f"{USERS}/me/password", json=body, headers=bob))
        await asyncio.sleep(PROBE_AFTER_SECONDS)
        read = await client.get(f"{USERS}/me", headers=ada)
        hashing = not changing.done()
        changed = await changing

    assert hashing
    assert read.status_code == 200
    assert changed.status_code == 204
