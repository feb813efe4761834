import asyncio
import uuid
from datetime import datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from users_factories import PASSWORD, Accounts

PROBLEM = "application/problem+json"
USERS = "/api/v1/users"
ME = f"{USERS}/me"


def signup(email: str = "ada@example.com", **overrides: Any) -> dict[str, Any]:
    return {"email": email, "full_name": "Ada Lovelace", "password": PASSWORD, **overrides}


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM users")) or 0)


async def test_signup_creates_a_user_without_exposing_the_password(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post(USERS, json=signup("Ada@Example.com"))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "is_active",
        "is_superuser",
        "created_at",
        "updated_at",
    }
    assert body["email"] == "ada@example.com"
    assert (body["is_active"], body["is_superuser"]) == (True, False)
    row = (await db_session.execute(text("SELECT email, hashed_password FROM users"))).one()
    assert row.email == "ada@example.com"
    assert row.hashed_password.startswith("$argon2id$")
    assert PASSWORD not in row.hashed_password


async def test_any_address_of_the_email_syntax_names_an_account(client: AsyncClient) -> None:
    # Nothing is ever sent to it: reserved test domains are addresses like any other.
    for email in ("ada@lovelace.test", "#grace@hopper.example"):
        response = await client.post(USERS, json=signup(email))
        assert response.status_code == 201, response.text

    for email in ("ada@", "ada lovelace@example.com", "Ada <ada@example.com>", "a@localhost"):
        response = await client.post(USERS, json=signup(email))
        assert response.status_code == 422, email


async def test_email_is_unique_in_any_letter_case(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    first = await client.post(USERS, json=signup("grace@example.com"))
    again = await client.post(USERS, json=signup("GRACE@example.COM"))

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["detail"] == "A user with this email already exists."
    assert await count_users(db_session) == 1


async def test_concurrent_signups_with_one_email_create_one_user(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(
        *(
            committing_client.post(
                USERS, json=signup("race@example.com" if i % 2 else "RACE@Example.com")
            )
            for i in range(50)
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 49
    assert all(r.headers["content-type"] == PROBLEM for r in responses if r.status_code == 409)
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM users")) == 1


async def test_invalid_signups_are_422_and_write_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    invalid = [
        signup("not-an-email"),
        signup(password="short"),
        signup(full_name=""),
        signup(full_name="Ada\x00"),
        signup(is_superuser=True),
        signup(hashed_password="$argon2id$forged"),
        {"email": "x@example.com"},
    ]
    for body in invalid:
        response = await client.post(USERS, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM

    malformed = await client.post(
        USERS, content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert await count_users(db_session) == 0


async def test_me_is_the_caller(client: AsyncClient, accounts: Accounts) -> None:
    ada = await accounts.create("ada@example.com")
    await accounts.create("grace@example.com")

    response = await client.get(ME, headers=ada.auth)

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["email"]) == (str(ada.id), ada.email)


async def test_update_me_changes_only_given_fields(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    old_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))

    response = await client.patch(ME, json={"full_name": "Countess Lovelace"}, headers=ada.auth)

    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "Countess Lovelace"
    assert body["email"] == ada.email
    assert await db_session.scalar(text("SELECT hashed_password FROM users")) == old_hash


async def test_update_me_to_a_taken_email_is_409(client: AsyncClient, accounts: Accounts) -> None:
    await accounts.create("taken@example.com")
    other = await accounts.create("other@example.com")

    response = await client.patch(ME, json={"email": "TAKEN@example.com"}, headers=other.auth)

    assert response.status_code == 409


async def test_update_me_rejects_null_and_protected_fields(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()

    for body in ({"full_name": None}, {"password": "new password!"}, {"is_superuser": True}):
        response = await client.patch(ME, json=body, headers=ada.auth)
        assert response.status_code == 422, body

    row = (await db_session.execute(text("SELECT full_name, is_superuser FROM users"))).one()
    assert (row.full_name, row.is_superuser) == ("Ada Lovelace", False)


async def test_update_moves_updated_at(committing_client: AsyncClient) -> None:
    created = (await committing_client.post(USERS, json=signup())).json()
    login = {"email": "ada@example.com", "password": PASSWORD}
    token = (await committing_client.post("/api/v1/auth/login", json=login)).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}

    updated = (await committing_client.patch(ME, json={"full_name": "A. L."}, headers=auth)).json()

    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


async def test_password_change_needs_the_current_password(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    old_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))
    url = f"{ME}/password"

    wrong = await client.post(
        url, json={"current_password": "guess", "new_password": "new password!"}, headers=ada.auth
    )
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "The current password is not correct."
    assert await db_session.scalar(text("SELECT hashed_password FROM users")) == old_hash

    right = await client.post(
        url, json={"current_password": PASSWORD, "new_password": "new password!"}, headers=ada.auth
    )
    assert right.status_code == 204
    old_login = {"email": ada.email, "password": PASSWORD}
    assert (await client.post("/api/v1/auth/login", json=old_login)).status_code == 401
    assert await accounts.log_in(ada.email, "new password!")


async def test_deactivating_yourself_ends_your_tokens_and_logins(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()

    response = await client.post(f"{ME}/deactivate", headers=ada.auth)

    assert response.status_code == 204
    assert await db_session.scalar(text("SELECT is_active FROM users")) is False
    after = await client.get(ME, headers=ada.auth)
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # Changes are refused the same way, and change nothing.
    renamed = await client.patch(ME, json={"full_name": "Still Here"}, headers=ada.auth)
    assert renamed.status_code == 401
    assert await db_session.scalar(text("SELECT full_name FROM users")) != "Still Here"
    login = await client.post("/api/v1/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert login.status_code == 403


async def test_only_admins_list_users(client: AsyncClient, accounts: Accounts) -> None:
    admin = await accounts.create("admin@example.com", admin=True)
    user = await accounts.create("user@example.com")

    refused = await client.get(USERS, headers=user.auth)
    listed = await client.get(USERS, params={"limit": 1, "offset": 1}, headers=admin.auth)

    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert listed.status_code == 200
    assert [u["email"] for u in listed.json()["items"]] == ["user@example.com"]


async def test_list_limit_is_capped(client: AsyncClient, accounts: Accounts) -> None:
    admin = await accounts.create(admin=True)
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}):
        assert (await client.get(USERS, params=params, headers=admin.auth)).status_code == 422


async def test_admin_reads_deactivates_and_reactivates_a_user(
    client: AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.create("admin@example.com", admin=True)
    user = await accounts.create("user@example.com")

    read = await client.get(f"{USERS}/{user.id}", headers=admin.auth)
    deactivated = await client.post(f"{USERS}/{user.id}/deactivate", headers=admin.auth)
    token_after = await client.get(ME, headers=user.auth)
    reactivated = await client.post(f"{USERS}/{user.id}/activate", headers=admin.auth)

    assert read.json()["email"] == "user@example.com"
    assert deactivated.json()["is_active"] is False
    assert token_after.status_code == 401
    assert reactivated.json()["is_active"] is True
    assert (await client.get(ME, headers=user.auth)).status_code == 200


async def test_admin_on_an_unknown_or_malformed_id(client: AsyncClient, accounts: Accounts) -> None:
    admin = await accounts.create(admin=True)

    missing = await client.get(f"{USERS}/{uuid.uuid4()}", headers=admin.auth)
    malformed = await client.get(f"{USERS}/not-a-uuid", headers=admin.auth)

    assert missing.status_code == 404
    assert missing.json()["detail"] == "No user with this id."
    assert malformed.status_code == 422
