import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import DomainError, ForbiddenError
from common.metrics import LOGIN_FAILURES
from users_svc.domains.auth.schemas import AccessToken
from users_svc.domains.users import repository
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings
from users_svc.signing import KeyRing


class InvalidCredentialsError(DomainError):
    """The same answer for an unknown email and a wrong password."""

    status_code = 401
    title = "Unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - never mutated

    def __init__(self) -> None:
        super().__init__("Incorrect email or password.")
        LOGIN_FAILURES.labels("invalid_credentials").inc()


class AccountDeactivatedError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("This account is deactivated.")


async def log_in(
    session: AsyncSession,
    email: str,
    password: str,
    *,
    hasher: PasswordHasher,
    keys: KeyRing,
    settings: Settings,
) -> AccessToken:
    """A token for the account with this email and password.

    Only someone who knows the password learns that an account is deactivated.
    """
    user = await repository.get_by_email(session, email.strip().lower())
    if user is None:
        await hasher.verify_nothing(password)
        raise InvalidCredentialsError
    valid, rehashed = await hasher.verify_and_update(password, user.hashed_password)
    if not valid:
        raise InvalidCredentialsError
    if not user.is_active:
        raise AccountDeactivatedError
    if rehashed is not None:
        user.hashed_password = rehashed
        await session.flush()
    return issue_access_token(user.id, keys=keys, settings=settings)


def issue_access_token(user_id: uuid.UUID, *, keys: KeyRing, settings: Settings) -> AccessToken:
    now = int(time.time())
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": str(user_id),
        "iat": now,
        "exp": now + settings.access_token_seconds,
        "jti": uuid.uuid4().hex,
    }
    return AccessToken(
        access_token=keys.signer.sign(claims), expires_in=settings.access_token_seconds
    )
