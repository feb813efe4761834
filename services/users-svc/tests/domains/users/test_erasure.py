"""Erasure: an account deleted with what users-svc holds about it; its email is free again."""

import uuid

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Accounts, users_table

ME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"


async def rows_about(session: AsyncSession, user_id: uuid.UUID, email: str) -> list[str]:
    """Every table's rows that name the user or hold the email, as text."""
    tables = await session.scalars(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    found = []
    for table in tables.all():
        rows = await session.execute(text(f'SELECT t::text FROM "{table}" t'))
        found += [f"{table}: {row}" for (row,) in rows if str(user_id) in row or email in row]
    return found


async def only_the_deletion_event_remains(
    session: AsyncSession, user_id: uuid.UUID, email: str
) -> bool:
    """Nothing names the user but the `user.deleted` event that tells the other services to
    erase what they hold (its id, never its email); the relay publishes it."""
    found = await rows_about(session, user_id, email)
    return len(found) == 1 and "user.deleted" in found[0] and email not in found[0]


async def test_erasing_your_account_needs_the_password_and_leaves_nothing(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create("ada@example.com")
    await accounts.create("grace@example.com")
    login = await client.post(LOGIN, json={"email": ada.email, "password": PASSWORD})
    refresh_token = login.json()["refresh_token"]

    wrong = await client.request("DELETE", ME, json={"password": "guess!!!"}, headers=ada.auth)
    assert wrong.status_code == 403
    assert await rows_about(db_session, ada.id, ada.email) != []

    erased = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=ada.auth)

    assert erased.status_code == 204
    assert await only_the_deletion_event_remains(db_session, ada.id, ada.email)
    assert [row[1] for row in await users_table(db_session)] == ["grace@example.com"]
    assert (await client.get(ME, headers=ada.auth)).status_code == 401
    again = await client.post(LOGIN, json={"email": ada.email, "password": PASSWORD})
    assert again.status_code == 401
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 401


async def test_an_erased_email_can_sign_up_again_as_a_new_account(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    await client.request("DELETE", ME, json={"password": PASSWORD}, headers=ada.auth)

    again = await accounts.create()

    assert again.id != ada.id
    assert (await client.get(ME, headers=ada.auth)).status_code == 401
    assert (await client.get(ME, headers=again.auth)).json()["id"] == str(again.id)


async def test_an_admin_erases_an_account(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    admin = await accounts.create("admin@example.com", admin=True)
    ada = await accounts.create("ada@example.com")

    erased = await client.delete(f"/api/v1/users/{ada.id}", headers=admin.auth)
    missing = await client.delete(f"/api/v1/users/{ada.id}", headers=admin.auth)

    assert (erased.status_code, missing.status_code) == (204, 404)
    assert await only_the_deletion_event_remains(db_session, ada.id, ada.email)
    assert (await client.get(ME, headers=ada.auth)).status_code == 401
