import asyncio
import uuid
from datetime import datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

PROBLEM = "application/problem+json"
USERS = "/api/v1/users"


def signup(email: str = "ada@example.com", **overrides: Any) -> dict[str, Any]:
    return {"email": email, "full_name": "Ada Lovelace", "password": "correct horse", **overrides}


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM users")) or 0)


async def test_signup_creates_a_user_without_exposing_the_password(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post(USERS, json=signup("Ada@Example.com"))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "is_active", "created_at", "updated_at"}
    assert body["email"] == "ada@example.com"
    assert body["is_active"] is True
    row = (await db_session.execute(text("SELECT email, hashed_password FROM users"))).one()
    assert row.email == "ada@example.com"
    assert row.hashed_password.startswith("$argon2id$")
    assert "correct horse" not in row.hashed_password


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


async def test_get_user(client: AsyncClient) -> None:
    created = (await client.post(USERS, json=signup())).json()

    response = await client.get(f"{USERS}/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_unknown_user_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{USERS}/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "No user with this id."


async def test_malformed_id_is_422(client: AsyncClient) -> None:
    response = await client.get(f"{USERS}/not-a-uuid")

    assert response.status_code == 422


async def test_invalid_signups_are_422_and_write_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    invalid = [
        signup("not-an-email"),
        signup(password="short"),
        signup(full_name=""),
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


async def test_list_is_paginated_oldest_first(client: AsyncClient) -> None:
    for i in range(3):
        assert (await client.post(USERS, json=signup(f"user{i}@example.com"))).status_code == 201

    first = (await client.get(USERS, params={"limit": 2})).json()
    second = (await client.get(USERS, params={"limit": 2, "offset": 2})).json()

    assert [u["email"] for u in first["items"]] == ["user0@example.com", "user1@example.com"]
    assert [u["email"] for u in second["items"]] == ["user2@example.com"]
    assert (first["limit"], first["offset"]) == (2, 0)


async def test_list_limit_is_capped(client: AsyncClient) -> None:
    assert (await client.get(USERS, params={"limit": 101})).status_code == 422
    assert (await client.get(USERS, params={"limit": 0})).status_code == 422
    assert (await client.get(USERS, params={"offset": -1})).status_code == 422


async def test_update_changes_only_given_fields(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    created = (await client.post(USERS, json=signup())).json()
    old_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))

    response = await client.patch(
        f"{USERS}/{created['id']}", json={"full_name": "Countess Lovelace"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "Countess Lovelace"
    assert body["email"] == created["email"]
    assert await db_session.scalar(text("SELECT hashed_password FROM users")) == old_hash


async def test_update_password_rehashes(client: AsyncClient, db_session: AsyncSession) -> None:
    created = (await client.post(USERS, json=signup())).json()
    old_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))

    response = await client.patch(f"{USERS}/{created['id']}", json={"password": "new password!"})

    assert response.status_code == 200
    new_hash = await db_session.scalar(text("SELECT hashed_password FROM users"))
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")


async def test_update_to_a_taken_email_is_409(client: AsyncClient) -> None:
    await client.post(USERS, json=signup("taken@example.com"))
    other = (await client.post(USERS, json=signup("other@example.com"))).json()

    response = await client.patch(f"{USERS}/{other['id']}", json={"email": "TAKEN@example.com"})

    assert response.status_code == 409


async def test_update_rejects_null_and_unknown_fields(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    created = (await client.post(USERS, json=signup())).json()

    for body in ({"full_name": None}, {"is_active": False}, {"id": str(uuid.uuid4())}):
        response = await client.patch(f"{USERS}/{created['id']}", json=body)
        assert response.status_code == 422, body

    row = (await db_session.execute(text("SELECT full_name, is_active FROM users"))).one()
    assert (row.full_name, row.is_active) == ("Ada Lovelace", True)


async def test_update_moves_updated_at(committing_client: AsyncClient) -> None:
    created = (await committing_client.post(USERS, json=signup())).json()
    user = f"{USERS}/{created['id']}"

    updated = (await committing_client.patch(user, json={"full_name": "A. L."})).json()

    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


async def test_delete_removes_the_user(client: AsyncClient, db_session: AsyncSession) -> None:
    created = (await client.post(USERS, json=signup())).json()

    response = await client.delete(f"{USERS}/{created['id']}")

    assert response.status_code == 204
    assert (await client.get(f"{USERS}/{created['id']}")).status_code == 404
    assert await count_users(db_session) == 0
    assert (await client.delete(f"{USERS}/{created['id']}")).status_code == 404
