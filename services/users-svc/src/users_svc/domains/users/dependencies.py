"""Who is calling: the account behind the access token, loaded and checked on every request.

users-svc checks more than other services can: the account must still exist and be active, so a
deactivated user's tokens stop working here at once (elsewhere, when they expire).
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from common.auth import AccessClaims, service_with_scopes, user_of, verified_claims
from common.errors import ForbiddenError
from common.session import SessionDep
from common.settings import API_PREFIX
from users_svc.domains.users.models import User
from users_svc.domains.users.service import get_signed_in

# The password flow, so the docs' "Authorize" button signs in (under the default API prefix).
# No token is answered by common.auth's 401, not FastAPI's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


class AdminOnlyError(ForbiddenError):
    detail = "Only administrators may do this."


async def current_account(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)], session: SessionDep
) -> User:
    claims = await verified_claims(request, token)
    return await get_signed_in(session, user_of(claims))


CurrentAccount = Annotated[User, Depends(current_account)]


async def admin_account(account: CurrentAccount) -> User:
    if not account.is_superuser:
        raise AdminOnlyError
    return account


AdminAccount = Annotated[User, Depends(admin_account)]


async def calling_service(
    security_scopes: SecurityScopes,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> AccessClaims:
    """Another service, by its own token, granted the scopes the route asks for with
    `Security(calling_service, scopes=[...])`; a user's token is refused (403)."""
    return service_with_scopes(await verified_claims(request, token), security_scopes.scopes)
