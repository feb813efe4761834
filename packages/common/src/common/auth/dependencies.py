"""`CurrentUser` and `CurrentClaims`: the caller, from a verified access token; `CurrentService`
and `Security(current_service, scopes=[...])`: a service calling with its own token.

`bearer` is FastAPI's `HTTPBearer`: the docs show the scheme and the Authorize button. A service
whose routes declare it must verify tokens, or `create_app` refuses to build its app. A service
with a scheme of its own (users-svc's password flow) passes its token to `verified_claims`.
"""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from common.auth.verifier import AccessClaims, NotAuthenticatedError, TokenVerifier
from common.errors import ForbiddenError, Problem

# For a router's `responses=`: every protected operation documents its 401.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or expired access token"}
}

# No token is answered by `NotAuthenticatedError` (a 401 naming the scheme), not FastAPI's 403.
bearer = HTTPBearer(
    bearerFormat="JWT", description="An access token from users-svc's login.", auto_error=False
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class NotAUserError(ForbiddenError):
    detail = "This operation acts for a signed-in user: a service's token cannot call it."


class InsufficientScopeError(ForbiddenError):
    """RFC 6750 §3.1: the token is valid, but not for this operation."""

    def __init__(self, scopes: list[str]) -> None:
        self.scope = " ".join(scopes)
        super().__init__(f"This operation is for services granted the scope {self.scope!r}.")

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


def user_of(claims: AccessClaims) -> uuid.UUID:
    """The user a token acts for; a service's token is refused (403)."""
    if claims.subject is None:
        raise NotAUserError
    return claims.subject


def service_with_scopes(claims: AccessClaims, scopes: list[str]) -> AccessClaims:
    """The claims of a service's token granted every one of `scopes`; a user's token, or a
    service's without them, is refused (403)."""
    if claims.client_id is None or not claims.scopes.issuperset(scopes):
        raise InsufficientScopeError(scopes)
    return claims


async def verified_claims(request: Request, token: str | None) -> AccessClaims:
    """The claims of `token`, checked by the app's verifier (`create_app` made it)."""
    if not token:
        raise NotAuthenticatedError
    verifier: TokenVerifier = request.state.token_verifier
    return await verifier.verify(token)


async def current_claims(request: Request, credentials: BearerCredentials) -> AccessClaims:
    return await verified_claims(request, credentials.credentials if credentials else None)


async def current_user_id(request: Request, credentials: BearerCredentials) -> uuid.UUID:
    return user_of(await current_claims(request, credentials))


async def current_service(
    security_scopes: SecurityScopes, request: Request, credentials: BearerCredentials
) -> AccessClaims:
    """A service's claims, granted the scopes the route asks for with
    `Security(current_service, scopes=["users:lookup"])` (FastAPI's "OAuth2 scopes")."""
    claims = await current_claims(request, credentials)
    return service_with_scopes(claims, security_scopes.scopes)


CurrentClaims = Annotated[AccessClaims, Depends(current_claims)]
CurrentUser = Annotated[uuid.UUID, Depends(current_user_id)]
CurrentService = Annotated[AccessClaims, Depends(current_service)]
