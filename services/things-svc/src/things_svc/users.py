"""users-svc, as things-svc calls it: its account lookup, with things-svc's own token.

The requests and answers are typed here from users-svc's committed OpenAPI document
(services/users-svc/openapi.json); `tests/test_users_contract.py` checks each call against that
document, so a change on users-svc's side that breaks a call fails things-svc's tests.
"""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from common.service_client import ClientCredentials, DependencyUnavailableError, ServiceClient
from things_svc.settings import Settings

logger = logging.getLogger(__name__)

USERS_SVC = "users-svc"
TOKEN_PATH = "/api/v1/auth/token"
LOOKUP_PATH = "/api/v1/users/lookup"
LOOKUP_SCOPE = "users:lookup"


class UserLookup(BaseModel):
    """users-svc's `UserLookup`: the request of `POST /api/v1/users/lookup`."""

    model_config = ConfigDict(extra="forbid")

    email: str


class UserReference(BaseModel):
    """users-svc's `UserReference`: its answer, 200."""

    id: uuid.UUID
    shareable: bool


class UsersClient:
    def __init__(self, calls: ServiceClient) -> None:
        self._calls = calls

    async def look_up(self, email: str) -> UserReference | None:
        """The account with this email; None when users-svc has none (or refuses the email as
        one). users-svc down, or refusing things-svc's token, raises `DependencyUnavailableError`
        (503)."""
        response = await self._calls.post(LOOKUP_PATH, json=UserLookup(email=email).model_dump())
        if response.status_code in {404, 422}:
            return None
        if response.status_code != 200:
            # A 401 or 403 means things-svc's credentials or scopes are wrong: an operator's
            # problem, told in the logs; the user gets the 503 of any failing dependency.
            logger.error(
                "users-svc answered the lookup %s: %s", response.status_code, response.text
            )
            raise DependencyUnavailableError(USERS_SVC, retry_after_seconds=5)
        return UserReference.model_validate_json(response.content)


@asynccontextmanager
async def calling_users(settings: Settings) -> AsyncIterator[UsersClient]:
    """The client for the app's lifetime: things-svc's token, asked of users-svc's token
    endpoint with its client id and secret, and the calls that carry it."""
    secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
    async with (
        ClientCredentials(
            f"{settings.users_url}{TOKEN_PATH}",
            client_id=settings.client_id,
            client_secret=secret,
            scopes=[LOOKUP_SCOPE],
            issuer=USERS_SVC,
        ) as credentials,
        ServiceClient(USERS_SVC, settings.users_url, token=credentials) as calls,
    ):
        yield UsersClient(calls)


async def users_client(request: Request) -> UsersClient:
    users: UsersClient = request.state.users
    return users


UsersDep = Annotated[UsersClient, Depends(users_client)]
