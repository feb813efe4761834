"""Who is calling: the account behind the access token, loaded and checked on every request.

users-svc checks more than other services can: the account must still exist and be active, so a
deactivated user's tokens stop working here at once (elsewhere, when they expire).
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from common.auth import AccessClaims, authenticate
from common.errors import ForbiddenError
from common.session import SessionDep
from common.settings import API_PREFIX
from users_svc.domains.users.models import User
from users_svc.domains.users.service import get_signed_in


class _PasswordFlowClaims(OAuth2PasswordBearer):
    """The password flow, so the docs' "Authorize" button signs in, and the token's check.

    One dependency for both: a chain of them costs FastAPI more than verifying a cached token.
    """

    async def __call__(self, request: Request) -> AccessClaims:  # type: ignore[override]
        return await authenticate(request)


# Under the default API prefix.
current_token_claims = _PasswordFlowClaims(
    tokenUrl=f"{API_PREFIX}/auth/token", scheme_name="OAuth2PasswordBearer", auto_error=False
)


class AdminOnlyError(ForbiddenError):
    detail = "Only administrators may do this."


TokenClaims = Annotated[AccessClaims, Depends(current_token_claims)]


async def current_account(claims: TokenClaims, session: SessionDep) -> User:
    return await get_signed_in(session, claims.subject)


CurrentAccount = Annotated[User, Depends(current_account)]


async def admin_account(account: CurrentAccount) -> User:
    if not account.is_superuser:
        raise AdminOnlyError
    return account


AdminAccount = Annotated[User, Depends(admin_account)]
