"""Your sessions: listed, and ended one by one."""

from httpx import AsyncClient
from users_factories import PASSWORD, Accounts

SESSIONS = "/api/v1/users/me/sessions"


async def log_in(client: AsyncClient, email: str, agent: str) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD}
    response = await client.post("/api/v1/auth/login", json=body, headers={"user-agent": agent})
    assert response.status_code == 200
    tokens: dict[str, str] = response.json()
    return tokens


async def test_your_sessions_newest_first_and_only_yours(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create("ada@example.com")
    bob = await accounts.create("bob@example.com")
    await log_in(client, ada.email, "phone")
    await log_in(client, ada.email, "laptop")
    await log_in(client, bob.email, "bob's")

    response = await client.get(SESSIONS, headers=ada.auth)

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["user_agent"] for item in items] == ["laptop", "phone", "python-httpx/0.28.1"]
    assert set(items[0]) == {"id", "created_at", "refreshed_at", "expires_at", "user_agent"}
    paged = await client.get(SESSIONS, params={"limit": 1, "offset": 1}, headers=ada.auth)
    assert [item["user_agent"] for item in paged.json()["items"]] == ["phone"]


async def test_ending_a_session_refuses_its_refresh_token_only(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    phone = await log_in(client, ada.email, "phone")
    laptop = await log_in(client, ada.email, "laptop")
    listed = (await client.get(SESSIONS, headers=ada.auth)).json()["items"]
    phone_id = next(item["id"] for item in listed if item["user_agent"] == "phone")

    ended = await client.delete(f"{SESSIONS}/{phone_id}", headers=ada.auth)
    again = await client.delete(f"{SESSIONS}/{phone_id}", headers=ada.auth)

    assert (ended.status_code, again.status_code) == (204, 404)
    assert again.json()["detail"] == "You have no session with this id."
    refresh = "/api/v1/auth/refresh"
    assert (
        await client.post(refresh, json={"refresh_token": phone["refresh_token"]})
    ).status_code == 401
    assert (
        await client.post(refresh, json={"refresh_token": laptop["refresh_token"]})
    ).status_code == 200
