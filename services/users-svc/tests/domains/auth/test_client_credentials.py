"""Services' identities: the client credentials grant, and the lookup only they may call."""

import base64
import hashlib

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import Accounts

from common.service_client import ClientCredentials, ServiceClient
from common.testing import ServiceUnderTest, TokenFactory
from common.testing.plugin import BASE_URL
from users_svc.settings import RegisteredClient, Settings

TOKEN = "/api/v1/auth/token"
LOOKUP = "/api/v1/users/lookup"
SECRET = "things-svc-secret-of-these-tests"
REGISTERED = {
    "things-svc": RegisteredClient(
        secret_sha256=(hashlib.sha256(SECRET.encode()).hexdigest(),),
        scopes=frozenset({"users:lookup"}),
    ),
    "reports-svc": RegisteredClient(secret_sha256=(hashlib.sha256(b"other").hexdigest(),)),
}


@pytest.fixture
def app(service: ServiceUnderTest, settings: Settings, test_database: object) -> FastAPI:
    """users-svc with two registered services: things-svc granted `users:lookup`, reports-svc
    granted nothing."""
    registered = settings.model_copy(update={"service_clients": REGISTERED})
    return service.app(registered, database=test_database)  # type: ignore[arg-type]


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def service_token(client: AsyncClient, client_id: str, secret: str) -> str:
    answer = await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def test_a_registered_service_gets_a_token_naming_it_and_its_scopes(
    client: AsyncClient,
) -> None:
    by_basic = await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers=basic("things-svc", SECRET)
    )
    in_the_form = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "things-svc",
            "client_secret": SECRET,
            "scope": "users:lookup",
        },
    )

    for answer in (by_basic, in_the_form):
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert (body["token_type"], body["expires_in"], body["scope"]) == (
            "bearer",
            300,
            "users:lookup",
        )
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert (claims["sub"], claims["client_id"], claims["scope"]) == (
            "things-svc",
            "things-svc",
            "users:lookup",
        )


async def test_a_wrong_secret_an_unknown_client_or_a_scope_not_granted_gets_no_token(
    client: AsyncClient,
) -> None:
    grant = {"grant_type": "client_credentials"}
    wrong_secret = await client.post(TOKEN, data=grant, headers=basic("things-svc", "guess"))
    unknown = await client.post(TOKEN, data=grant, headers=basic("nobody-svc", SECRET))
    garbled = await client.post(TOKEN, data=grant, headers={"Authorization": "Basic %%%"})
    no_credentials = await client.post(TOKEN, data=grant)
    not_granted = await client.post(
        TOKEN, data={**grant, "scope": "users:admin"}, headers=basic("things-svc", SECRET)
    )

    for refused in (wrong_secret, unknown, garbled, no_credentials):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"] == "Basic"
        assert refused.headers["content-type"] == "application/problem+json"
    assert wrong_secret.json()["detail"] == unknown.json()["detail"]
    assert not_granted.status_code == 400


async def test_the_lookup_answers_a_service_granted_its_scope_and_refuses_anyone_else(
    client: AsyncClient,
    accounts: Accounts,
    db_session: AsyncSession,
    token_factory: TokenFactory,
) -> None:
    ada = await accounts.create("ada@example.com")
    await accounts.create("bob@example.com")
    deactivated = await client.post("/api/v1/users/me/deactivate", headers=ada.auth)
    assert deactivated.status_code == 204, deactivated.text
    things = {"Authorization": f"Bearer {await service_token(client, 'things-svc', SECRET)}"}
    reports = {"Authorization": f"Bearer {await service_token(client, 'reports-svc', 'other')}"}

    found = await client.post(LOOKUP, json={"email": "BOB@example.com"}, headers=things)
    inactive = await client.post(LOOKUP, json={"email": "ada@example.com"}, headers=things)
    unknown = await client.post(LOOKUP, json={"email": "eve@example.com"}, headers=things)
    without_scope = await client.post(LOOKUP, json={"email": "bob@example.com"}, headers=reports)
    bob = await accounts.log_in("bob@example.com")
    by_a_user = await client.post(LOOKUP, json={"email": "bob@example.com"}, headers=bob)
    as_a_user = await client.get("/api/v1/users/me", headers=things)

    assert found.status_code == 200, found.text
    assert found.json()["shareable"] is True
    assert inactive.json() == {"id": str(ada.id), "shareable": False}
    assert unknown.status_code == 404
    for refused in (without_scope, by_a_user):
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="users:lookup"'
        )
    assert as_a_user.status_code == 403


class CountingASGITransport(httpx.ASGITransport):
    """httpx's ASGI transport, counting the requests it hands to the app."""

    def __init__(self, app: object) -> None:
        super().__init__(app=app)  # type: ignore[arg-type]
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url.path)
        return await super().handle_async_request(request)


async def test_a_service_client_asks_for_its_token_once_and_looks_up_with_it(
    app: FastAPI, accounts: Accounts
) -> None:
    await accounts.create("bob@example.com")
    async with LifespanManager(app) as manager:
        transport = CountingASGITransport(manager.app)
        async with (
            ClientCredentials(
                f"{BASE_URL}{TOKEN}",
                client_id="things-svc",
                client_secret=SECRET,
                scopes=["users:lookup"],
                transport=transport,
            ) as credentials,
            ServiceClient("users-svc", BASE_URL, token=credentials, transport=transport) as users,
        ):
            answers = [
                await users.post(LOOKUP, json={"email": "bob@example.com"}) for _ in range(3)
            ]

    assert [answer.status_code for answer in answers] == [200] * 3
    assert transport.sent == [TOKEN, LOOKUP, LOOKUP, LOOKUP]
