"""`CurrentUser`: the caller's user id, from a verified access token."""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common.auth.verifier import AccessClaims, NotAuthenticatedError, TokenVerifier
from common.errors import Problem

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="An access token from users-svc's login.",
)

# For a router's `responses=`: every protected operation documents its 401.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or expired access token"}
}


def token_verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("this app verifies no tokens: its settings must be TokenSettings")
    return verifier


async def authenticate(request: Request, token: str | None) -> AccessClaims:
    """Verify the token a security scheme extracted (None when the request carried none)."""
    if not token:
        raise NotAuthenticatedError
    return await token_verifier_of(request).verify(token)


async def current_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> AccessClaims:
    return await authenticate(request, credentials.credentials if credentials else None)


CurrentClaims = Annotated[AccessClaims, Depends(current_claims)]


async def current_user_id(claims: CurrentClaims) -> uuid.UUID:
    return claims.subject


CurrentUser = Annotated[uuid.UUID, Depends(current_user_id)]
