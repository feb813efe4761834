import uuid
from pathlib import Path
from typing import Any

import jwt
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Accounts

from common.auth import SigningKey
from common.db import Database
from common.settings import AppBaseSettings
from common.testing import ServiceUnderTest, TokenFactory, signing_key_for_tests
from common.testing.plugin import open_client

PROBLEM = "application/problem+json"
LOGIN = "/api/v1/auth/login"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"
JWKS = "/.well-known/jwks.json"


def comparable(response: Response) -> tuple[int, dict[str, str], dict[str, Any]]:
    """What a client can see of an answer, less what differs on every request by design."""
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    body = {k: v for k, v in response.json().items() if k != "request_id"}
    return response.status_code, headers, body


async def test_form_login_answers_an_access_token(
    client: AsyncClient, accounts: Accounts, settings: AppBaseSettings
) -> None:
    ada = await accounts.create("ada@example.com")

    response = await client.post(TOKEN, data={"username": "ADA@example.com", "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 900)
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"], header["kid"]) == (
        "EdDSA",
        "at+jwt",
        signing_key_for_tests().kid,
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "exp", "iat", "jti"}
    assert claims["sub"] == str(ada.id)
    assert (claims["iss"], claims["aud"]) == ("http://127.0.0.1:8001", "api")
    assert claims["exp"] - claims["iat"] <= 15 * 60
    me = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == str(ada.id)


async def test_every_login_has_its_own_token_id(client: AsyncClient, accounts: Accounts) -> None:
    ada = await accounts.create()
    first, second = await accounts.log_in(ada.email), await accounts.log_in(ada.email)

    def jti(auth: dict[str, str]) -> str:
        token = auth["Authorization"].removeprefix("Bearer ")
        return str(jwt.decode(token, options={"verify_signature": False})["jti"])

    assert jti(first) != jti(second)


async def test_unknown_email_and_wrong_password_look_the_same(
    client: AsyncClient, accounts: Accounts
) -> None:
    await accounts.create("ada@example.com")

    unknown = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = await client.post(LOGIN, json={"email": "ada@example.com", "password": "guess!!!"})
    form_unknown = await client.post(TOKEN, data={"username": "nobody", "password": PASSWORD})
    form_wrong = await client.post(TOKEN, data={"username": "ada@example.com", "password": "x"})

    assert unknown.status_code == 401
    assert unknown.headers["content-type"] == PROBLEM
    assert unknown.headers["www-authenticate"] == "Bearer"
    assert unknown.json()["detail"] == "Incorrect email or password."
    assert comparable(unknown) == comparable(wrong)
    assert comparable(form_unknown)[:2] == comparable(form_wrong)[:2] == comparable(unknown)[:2]


async def test_deactivated_account_cannot_log_in(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create()
    await db_session.execute(text("UPDATE users SET is_active = false"))
    await db_session.commit()

    right = await client.post(LOGIN, json={"email": ada.email, "password": PASSWORD})
    wrong = await client.post(LOGIN, json={"email": ada.email, "password": "guess!!!"})

    assert right.status_code == 403
    assert right.json()["detail"] == "This account is deactivated."
    # Without the password, nothing tells a deactivated account from any other.
    assert wrong.status_code == 401


async def test_login_rehashes_a_password_hashed_with_older_costs(
    service: ServiceUnderTest,
    test_database: Database,
    db_session: AsyncSession,
    database_url: Any,
    accounts: Accounts,
) -> None:
    await accounts.create()
    old_hash = str(await db_session.scalar(text("SELECT hashed_password FROM users")))
    stronger = service.settings(database_url, password_time_cost=2)
    app: FastAPI = service.app(stronger, database=test_database)

    async with open_client(app) as stronger_client:
        login = {"email": "ada@example.com", "password": PASSWORD}
        response = await stronger_client.post(LOGIN, json=login)

    assert response.status_code == 200
    new_hash = str(await db_session.scalar(text("SELECT hashed_password FROM users")))
    assert new_hash != old_hash
    assert ",t=1," in old_hash
    assert ",t=2," in new_hash


async def test_login_body_is_validated(client: AsyncClient) -> None:
    response = await client.post(LOGIN, json={"email": "ada@example.com"})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_jwks_publishes_the_signing_key(client: AsyncClient) -> None:
    response = await client.get(JWKS)

    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    assert response.json() == {"keys": [signing_key_for_tests().public_jwk]}
    assert "d" not in response.json()["keys"][0]


async def test_rotation_publishes_the_previous_key_and_its_tokens_still_verify(
    service: ServiceUnderTest,
    test_database: Database,
    database_url: Any,
    accounts: Accounts,
    token_factory: TokenFactory,
    tmp_path: Path,
) -> None:
    # The test key becomes the previous key; a new key signs.
    ada = await accounts.create()
    previous_file = tmp_path / "previous.pem"
    previous_file.write_text(signing_key_for_tests().private_pem())
    new_key = SigningKey.generate()
    rotated = service.settings(
        database_url, signing_key=new_key.private_pem(), previous_key_files=[previous_file]
    )
    app = service.app(rotated, database=test_database)

    async with open_client(app) as rotated_client:
        jwks = (await rotated_client.get(JWKS)).json()
        old_token = await rotated_client.get(ME, headers=token_factory.auth(ada.id))
        login = {"email": ada.email, "password": PASSWORD}
        fresh = (await rotated_client.post(LOGIN, json=login)).json()["access_token"]
        unknown = await rotated_client.get(
            ME, headers=token_factory.auth(ada.id, key=SigningKey.generate())
        )

    assert [key["kid"] for key in jwks["keys"]] == [new_key.kid, signing_key_for_tests().kid]
    assert jwt.get_unverified_header(fresh)["kid"] == new_key.kid
    assert old_token.status_code == 200
    assert unknown.status_code == 401


async def test_docs_authorize_with_the_password_flow(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == TOKEN
    assert schema["paths"]["/api/v1/users/me"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]


async def test_token_of_an_account_that_does_not_exist_is_refused(
    client: AsyncClient, token_factory: TokenFactory
) -> None:
    response = await client.get(ME, headers=token_factory.auth(uuid.uuid4()))

    assert response.status_code == 401


async def test_form_login_takes_only_the_password_grant_and_its_fields(
    client: AsyncClient, accounts: Accounts
) -> None:
    ada = await accounts.create()
    form = {"username": ada.email, "password": PASSWORD}

    oauth2 = await client.post(TOKEN, data={**form, "grant_type": "password", "scope": ""})
    refused = [
        await client.post(TOKEN, data={**form, "grant_type": "implicit"}),
        await client.post(TOKEN, data={**form, "is_superuser": "true"}),
        await client.post(TOKEN, data={"username": "", "password": PASSWORD}),
        await client.post(TOKEN, data={"username": "a\x00b", "password": PASSWORD}),
        await client.post(TOKEN, data={"password": PASSWORD}),
    ]
    # A user's email and password are not a service's credentials.
    as_a_service = await client.post(TOKEN, data={**form, "grant_type": "client_credentials"})

    assert oauth2.status_code == 200
    assert as_a_service.status_code == 401
    assert [response.status_code for response in refused] == [422] * 5
    assert {response.headers["content-type"] for response in refused} == {PROBLEM}
