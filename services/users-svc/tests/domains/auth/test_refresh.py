"""Sessions: refresh tokens that rotate on every use, end on reuse, logout, or expiry."""

import hashlib
import logging
import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Accounts

PROBLEM = "application/problem+json"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


async def log_in(client: AsyncClient, email: str, **headers: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    response = await client.post(LOGIN, json=body, headers=headers)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def refresh(client: AsyncClient, refresh_token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def sessions_of(session: AsyncSession, user_id: uuid.UUID) -> int:
    statement = text("SELECT count(*) FROM login_sessions WHERE user_id = :id")
    return int(await session.scalar(statement, {"id": user_id}) or 0)


async def test_a_login_starts_a_session_stored_as_a_hash(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()

    tokens = await log_in(client, ada.email, **{"user-agent": "pytest/1.0"})

    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 900)
    assert tokens["refresh_expires_in"] == 30 * 86_400
    row = (
        await db_session.execute(
            text("SELECT id, token_hash, user_agent FROM login_sessions ORDER BY id DESC LIMIT 1")
        )
    ).one()
    assert row.token_hash == hashlib.sha256(tokens["refresh_token"].encode()).digest()
    assert row.user_agent == "pytest/1.0"
    assert tokens["refresh_token"].encode() not in b"".join(str(value).encode() for value in row)


async def test_refresh_rotates_the_token_and_the_new_one_works(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    first = await log_in(client, ada.email)

    second = await refresh(client, first["refresh_token"])
    third = await refresh(client, second.json()["refresh_token"])

    assert second.status_code == third.status_code == 200
    tokens = {first["refresh_token"], second.json()["refresh_token"], third.json()["refresh_token"]}
    assert len(tokens) == 3
    assert (await client.get(ME, headers=bearer(third.json()))).json()["id"] == str(ada.id)
    # The session's end is fixed at login: refreshing does not extend it.
    assert third.json()["refresh_expires_in"] <= first["refresh_expires_in"]


async def test_a_spent_token_sent_again_ends_the_session_for_both(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    other_device = await log_in(client, ada.email)
    stolen = await log_in(client, ada.email)
    rotated = await refresh(client, stolen["refresh_token"])
    assert rotated.status_code == 200

    reused = await refresh(client, stolen["refresh_token"])
    newest = await refresh(client, rotated.json()["refresh_token"])

    assert reused.status_code == newest.status_code == 401
    assert reused.headers["content-type"] == PROBLEM
    assert reused.json()["detail"] == newest.json()["detail"]
    # Only that session ended: the account's other sessions go on.
    assert (await refresh(client, other_device["refresh_token"])).status_code == 200
    assert await sessions_of(db_session, ada.id) == 2  # accounts.create's login, other_device


async def test_a_refresh_with_the_session_id_and_a_made_up_secret_changes_nothing(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    tokens = await log_in(client, ada.email)
    session_id, _, secret = tokens["refresh_token"].partition(".")

    forged = await refresh(client, f"{session_id}.{secret[::-1]}")

    assert forged.status_code == 401
    assert forged.headers["content-type"] == PROBLEM
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_logout_ends_the_session_and_answers_204_for_any_token(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    tokens = await log_in(client, ada.email)

    ended = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    again = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    garbage = await client.post(LOGOUT, json={"refresh_token": "garbage"})

    assert ended.status_code == again.status_code == garbage.status_code == 204
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401


async def test_logout_with_the_session_id_and_a_wrong_secret_changes_nothing(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    tokens = await log_in(client, ada.email)
    session_id, _, secret = tokens["refresh_token"].partition(".")

    forged = await client.post(LOGOUT, json={"refresh_token": f"{session_id}.{secret[::-1]}"})

    assert forged.status_code == 204
    assert forged.content == b""
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_a_reused_token_is_logged_at_warning_without_its_session_id(
    client: AsyncClient, accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    ada = await accounts.create()
    stolen = await log_in(client, ada.email)
    assert (await refresh(client, stolen["refresh_token"])).status_code == 200
    session_id = stolen["refresh_token"].partition(".")[0]

    with caplog.at_level(logging.DEBUG):
        assert (await refresh(client, stolen["refresh_token"])).status_code == 401

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("refresh token reused" in r.getMessage() for r in warnings)
    for record in warnings:
        message = record.getMessage()
        assert session_id not in message
        assert str(uuid.UUID(hex=session_id)) not in message


async def test_every_answer_with_tokens_is_not_to_be_stored(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    login = await client.post(LOGIN, json={"email": ada.email, "password": PASSWORD})
    form = await client.post(
        "/api/v1/auth/token", data={"username": ada.email, "password": PASSWORD}
    )
    refreshed = await refresh(client, login.json()["refresh_token"])

    for response in (login, form, refreshed):
        assert response.status_code == 200, response.request.url
        assert "access_token" in response.json()
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["pragma"] == "no-cache", response.request.url


async def test_a_password_change_ends_every_session(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    phone, laptop = await log_in(client, ada.email), await log_in(client, ada.email)
    change = {"current_password": PASSWORD, "new_password": "new password!"}

    changed = await client.post(f"{ME}/password", json=change, headers=bearer(phone))

    assert changed.status_code == 204
    assert (await refresh(client, phone["refresh_token"])).status_code == 401
    assert (await refresh(client, laptop["refresh_token"])).status_code == 401
    assert await sessions_of(db_session, ada.id) == 0


async def test_deactivation_ends_every_session_by_the_user_or_an_admin(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    admin = await accounts.create("admin@example.com", admin=True)
    ada, bob = await accounts.create("ada@example.com"), await accounts.create("bob@example.com")
    adas, bobs = await log_in(client, ada.email), await log_in(client, bob.email)

    by_herself = await client.post(f"{ME}/deactivate", headers=bearer(adas))
    by_admin = await client.post(f"/api/v1/users/{bob.id}/deactivate", headers=admin.auth)

    assert (by_herself.status_code, by_admin.status_code) == (204, 200)
    for tokens in (adas, bobs):
        assert (await refresh(client, tokens["refresh_token"])).status_code == 401
    assert await sessions_of(db_session, ada.id) == await sessions_of(db_session, bob.id) == 0
    # Reactivated, the account logs in again; the old sessions stay ended.
    await client.post(f"/api/v1/users/{bob.id}/activate", headers=admin.auth)
    assert (await refresh(client, bobs["refresh_token"])).status_code == 401
    assert await log_in(client, bob.email)


async def test_an_expired_session_is_refused_and_ended(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    tokens = await log_in(client, ada.email)
    digest = hashlib.sha256(tokens["refresh_token"].encode()).digest()
    expire = (
        "UPDATE login_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = :h"
    )
    await db_session.execute(text(expire), {"h": digest})
    await db_session.commit()

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    assert await sessions_of(db_session, ada.id) == 1  # only accounts.create's login is left


async def test_malformed_and_unknown_refresh_tokens_are_401(client: AsyncClient) -> None:
    for token in ("garbage", f"{uuid.uuid4().hex}.secret", f"{uuid.uuid4().hex}.", "a" * 200):
        response = await refresh(client, token)
        assert response.status_code == 401, token
        assert response.headers["content-type"] == PROBLEM


async def test_a_login_beyond_the_sessions_limit_ends_the_oldest(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()  # its first session, then 21 more: 22 for a limit of 20
    logins = [await log_in(client, ada.email) for _ in range(21)]

    assert await sessions_of(db_session, ada.id) == 20
    assert (await refresh(client, logins[0]["refresh_token"])).status_code == 401
    assert (await refresh(client, logins[1]["refresh_token"])).status_code == 200
