"""Who is calling: the account behind the access token, loaded and checked on every request.

users-svc checks more than other services can: the account must still exist and be active, so a
deactivated user's tokens stop working here at once (elsewhere, when they expire).
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from common.auth import AccessClaims, service_with_scopes, user_of, verified_claims
from common.errors import ForbiddenError
from common.session import SessionDep, database_of
from common.settings import API_PREFIX
from users_svc.domains.auth import service as auth
from users_svc.domains.auth.dependencies import ClientDep
from users_svc.domains.users.models import User
from users_svc.domains.users.schemas import UserCreate
from users_svc.domains.users.service import get_signed_in
from users_svc.settings import SettingsDep

# The password flow, so the docs' "Authorize" button signs in (under the default API prefix).
# No token is answered by common.auth's 401, not FastAPI's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


class AdminOnlyError(ForbiddenError):
    detail = "Only administrators may do this."


async def signed_in_id(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> uuid.UUID:
    """The account id of a valid access token, before any query: for the endpoints that load
    the account in a session of their own choosing."""
    return user_of(await verified_claims(request, token))


SignedInId = Annotated[uuid.UUID, Depends(signed_in_id)]


async def current_account(user_id: SignedInId, session: SessionDep) -> User:
    return await get_signed_in(session, user_id)


CurrentAccount = Annotated[User, Depends(current_account)]


async def admin_account(account: CurrentAccount) -> User:
    if not account.is_superuser:
        raise AdminOnlyError
    return account


AdminAccount = Annotated[User, Depends(admin_account)]


async def counted_sign_up(
    data: UserCreate, request: Request, client: ClientDep, settings: SettingsDep
) -> UserCreate:
    """The sign-up, once counted against its client's limit (429 past it). Counted in a
    transaction of its own, committed at once: the request's own transaction then opens after
    the password is hashed, so no connection is held while argon2 runs. A body that is not
    valid is refused before it counts."""
    async with database_of(request).sessionmaker() as session, session.begin():
        await auth.count_sign_up(session, client, settings=settings)
    return data


CountedSignUp = Annotated[UserCreate, Depends(counted_sign_up)]


async def calling_service(
    security_scopes: SecurityScopes,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> AccessClaims:
    """Another service, by its own token, granted the scopes the route asks for with
    `Security(calling_service, scopes=[...])`; a user's token is refused (403)."""
    return service_with_scopes(await verified_claims(request, token), security_scopes.scopes)
