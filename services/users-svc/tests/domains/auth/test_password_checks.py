"""Every password check is throttled as a login is: a password change and an erasure count their
wrong current passwords with the failed logins, and past the limit answer 429 with Retry-After.
Wrong passwords in a row, across windows, lock the account until an administrator unlocks it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Account, Accounts

from common.db import Database
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
PASSWORD_CHANGE = f"{ME}/password"
LIMIT = 20  # the default per account
LOCKED = "This account is locked after too many wrong passwords in a row. An administrator can "


@asynccontextmanager
async def app_with(
    service: ServiceUnderTest, database_url: URL, database: Database, **settings: Any
) -> AsyncIterator[AsyncClient]:
    app = service.app(service.settings(database_url, **settings), database=database)
    async with open_client(app) as client:
        yield client


async def change_password(client: AsyncClient, ada: Account, current: str) -> Response:
    body = {"current_password": current, "new_password": "a new password!"}
    return await client.post(PASSWORD_CHANGE, json=body, headers=ada.auth)


async def erase_me(client: AsyncClient, ada: Account, password: str) -> Response:
    return await client.request("DELETE", ME, json={"password": password}, headers=ada.auth)


async def log_in(client: AsyncClient, email: str, password: str = "wrong password") -> Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_wrong_current_passwords_of_a_password_change_reach_the_login_limit(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    old_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))

    wrong = [(await change_password(client, ada, "guess")).status_code for _ in range(LIMIT)]
    throttled = await change_password(client, ada, "guess")
    right = await change_password(client, ada, PASSWORD)
    login = await log_in(client, ada.email, PASSWORD)

    assert wrong == [403] * LIMIT
    assert throttled.status_code == right.status_code == login.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert 0 < int(throttled.headers["retry-after"]) <= 900
    assert await db_session.scalar(text("SELECT hashed_password FROM users")) == old_hash


async def test_erasures_and_logins_share_one_count(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    half = LIMIT // 2

    logins = [(await log_in(client, ada.email)).status_code for _ in range(half)]
    erasures = [(await erase_me(client, ada, "guess")).status_code for _ in range(LIMIT - half)]
    throttled = await erase_me(client, ada, PASSWORD)

    assert logins == [401] * half
    assert erasures == [403] * (LIMIT - half)
    assert throttled.status_code == 429
    assert "retry-after" in throttled.headers
    assert await db_session.scalar(text("SELECT count(*) FROM users")) == 1


async def test_a_password_change_is_limited_per_client_across_accounts(
    service: ServiceUnderTest, database_url: URL, test_database: Database, accounts: Accounts
) -> None:
    ada = await accounts.create("ada@example.com")
    bob = await accounts.create("bob@example.com")
    async with app_with(
        service, database_url, test_database, login_failures_per_client=3
    ) as client:
        ada_wrong = [(await change_password(client, ada, "guess")).status_code for _ in range(3)]
        bob_right = await change_password(client, bob, PASSWORD)

    assert ada_wrong == [403] * 3
    assert bob_right.status_code == 429


async def test_a_right_current_password_clears_the_accounts_count(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    assert [(await log_in(client, ada.email)).status_code for _ in range(LIMIT - 1)] == [401] * (
        LIMIT - 1
    )

    assert (await change_password(client, ada, PASSWORD)).status_code == 204
    assert (await log_in(client, ada.email, "a new password!")).status_code == 200


async def test_wrong_passwords_in_a_row_lock_the_account_across_windows(
    service: ServiceUnderTest,
    database_url: URL,
    test_database: Database,
    db_session: AsyncSession,
    accounts: Accounts,
) -> None:
    ada = await accounts.create()
    async with app_with(
        service, database_url, test_database, password_failures_before_lock=3
    ) as client:
        wrong = [(await log_in(client, ada.email)).status_code for _ in range(3)]
        # The window ends; the lock does not.
        await db_session.execute(
            text("UPDATE login_failures SET window_ends_at = clock_timestamp()")
        )
        await db_session.commit()
        login = await log_in(client, ada.email, PASSWORD)
        change = await change_password(client, ada, PASSWORD)
        erasure = await erase_me(client, ada, PASSWORD)

    assert wrong == [401] * 3
    assert login.status_code == change.status_code == erasure.status_code == 423
    assert login.headers["content-type"] == "application/problem+json"
    assert login.json()["detail"].startswith(LOCKED)
    assert await db_session.scalar(text("SELECT count(*) FROM users")) == 1


async def test_a_right_password_starts_the_count_in_a_row_again(
    service: ServiceUnderTest, database_url: URL, test_database: Database, accounts: Accounts
) -> None:
    ada = await accounts.create()
    async with app_with(
        service, database_url, test_database, password_failures_before_lock=3
    ) as client:
        first = [(await log_in(client, ada.email)).status_code for _ in range(2)]
        right = await log_in(client, ada.email, PASSWORD)
        second = [(await change_password(client, ada, "guess")).status_code for _ in range(2)]
        still = await log_in(client, ada.email, PASSWORD)

    assert (first, right.status_code, second, still.status_code) == ([401] * 2, 200, [403] * 2, 200)


async def test_an_administrator_unlocks_a_locked_account(
    service: ServiceUnderTest, database_url: URL, test_database: Database, accounts: Accounts
) -> None:
    admin = await accounts.create("admin@example.com", admin=True)
    ada = await accounts.create()
    async with app_with(
        service, database_url, test_database, password_failures_before_lock=2
    ) as client:
        assert [(await log_in(client, ada.email)).status_code for _ in range(2)] == [401] * 2
        assert (await log_in(client, ada.email, PASSWORD)).status_code == 423

        by_ada = await client.post(f"/api/v1/users/{ada.id}/unlock", headers=ada.auth)
        unlocked = await client.post(f"/api/v1/users/{ada.id}/unlock", headers=admin.auth)
        login = await log_in(client, ada.email, PASSWORD)

    assert by_ada.status_code == 403
    assert unlocked.status_code == 200
    assert unlocked.json()["id"] == str(ada.id)
    assert login.status_code == 200


async def test_unlocking_an_unknown_account_is_404(client: AsyncClient, accounts: Accounts) -> None:
    admin = await accounts.create("admin@example.com", admin=True)

    unknown = await client.post(
        "/api/v1/users/00000000-0000-7000-8000-000000000000/unlock", headers=admin.auth
    )

    assert unknown.status_code == 404
