"""Accounts made through the API, as a client would make them. On pytest's `pythonpath`."""

import uuid
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PASSWORD = "correct horse"


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    email: str
    auth: dict[str, str]


class Accounts:
    """Signs users up and logs them in through the API, as a client would."""

    def __init__(self, client: AsyncClient, session: AsyncSession) -> None:
        self.client = client
        self.session = session

    async def create(self, email: str = "ada@example.com", *, admin: bool = False) -> Account:
        body = {"email": email, "full_name": "Ada Lovelace", "password": PASSWORD}
        created = await self.client.post("/api/v1/users", json=body)
        assert created.status_code == 201, created.text
        user_id = uuid.UUID(created.json()["id"])
        if admin:
            # The only way to become an administrator: nothing in the API grants it.
            await self.session.execute(
                text("UPDATE users SET is_superuser = true WHERE id = :id"), {"id": user_id}
            )
            await self.session.commit()
        return Account(id=user_id, email=email, auth=await self.log_in(email))

    async def log_in(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def users_table(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = await session.execute(text("SELECT * FROM users ORDER BY id"))
    return [tuple(row) for row in rows]
