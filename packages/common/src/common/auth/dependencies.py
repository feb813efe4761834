"""`CurrentUser` and `CurrentClaims`: the caller, from a verified access token.

`bearer` is FastAPI's `HTTPBearer`: the docs show the scheme and the Authorize button. A service
whose routes declare it must verify tokens, or `create_app` refuses to build its app. A service
with a scheme of its own (users-svc's password flow) passes its token to `verified_claims`.
"""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common.auth.verifier import AccessClaims, NotAuthenticatedError, TokenVerifier
from common.errors import Problem

# For a router's `responses=`: every protected operation documents its 401.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or expired access token"}
}

# No token is answered by `NotAuthenticatedError` (a 401 naming the scheme), not FastAPI's 403.
bearer = HTTPBearer(
    bearerFormat="JWT", description="An access token from users-svc's login.", auto_error=False
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def verified_claims(request: Request, token: str | None) -> AccessClaims:
    """The claims of `token`, checked by the app's verifier (`create_app` made it)."""
    if not token:
        raise NotAuthenticatedError
    verifier: TokenVerifier = request.state.token_verifier
    return await verifier.verify(token)


async def current_claims(request: Request, credentials: BearerCredentials) -> AccessClaims:
    return await verified_claims(request, credentials.credentials if credentials else None)


async def current_user_id(request: Request, credentials: BearerCredentials) -> uuid.UUID:
    claims = await verified_claims(request, credentials.credentials if credentials else None)
    return claims.subject


CurrentClaims = Annotated[AccessClaims, Depends(current_claims)]
CurrentUser = Annotated[uuid.UUID, Depends(current_user_id)]
