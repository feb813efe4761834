"""`CurrentUser` and `CurrentClaims`: the caller, from a verified access token.

Each is one dependency that is also the bearer security scheme: the docs show the scheme and the
Authorize button, and a request resolves one dependency instead of a chain of three (FastAPI's
per-dependency overhead was a tenth of a cached-token request).
"""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from common.auth.revocations import RevokedSubjects
from common.auth.verifier import (
    AccessClaims,
    InvalidTokenError,
    NotAuthenticatedError,
    TokenVerifier,
)
from common.errors import Problem

# For a router's `responses=`: every protected operation documents its 401.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or expired access token"}
}


def token_verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("this app verifies no tokens: give create_app a token_verifier")
    return verifier


async def authenticate(request: Request) -> AccessClaims:
    """The claims of the request's `Authorization: Bearer <token>`, verified."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticatedError
    claims = await token_verifier_of(request).verify(token)
    # Only in an app made with `create_app(..., revocations=True)`.
    revoked: RevokedSubjects | None = getattr(request.state, "revoked_subjects", None)
    if revoked is not None and claims.subject in revoked:
        # The same answer as any refused token: a deactivated account is not told apart.
        raise InvalidTokenError
    return claims


class _BearerScheme(SecurityBase):
    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT", description="An access token from users-svc's login."
        )
        self.scheme_name = "HTTPBearer"


class _BearerClaims(_BearerScheme):
    async def __call__(self, request: Request) -> AccessClaims:
        return await authenticate(request)


class _BearerSubject(_BearerScheme):
    async def __call__(self, request: Request) -> uuid.UUID:
        claims = await authenticate(request)
        return claims.subject


current_claims = _BearerClaims()
CurrentClaims = Annotated[AccessClaims, Depends(current_claims)]

current_user_id = _BearerSubject()
CurrentUser = Annotated[uuid.UUID, Depends(current_user_id)]
