import uuid
from collections.abc import Sequence

from pydantic import MISSING
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import InvalidTokenError
from common.errors import ConflictError, ForbiddenError, NotFoundError
from common.pagination import PageParams
from users_svc.domains.users import repository
from users_svc.domains.users.models import User
from users_svc.domains.users.schemas import PasswordChange, UserCreate, UserUpdate
from users_svc.passwords import PasswordHasher


class UserNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No user with this id.")


class EmailTakenError(ConflictError):
    def __init__(self) -> None:
        super().__init__("A user with this email already exists.")


class WrongPasswordError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("The current password is not correct.")


async def get_signed_in(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The account of the caller's token; the token is refused if it is gone or deactivated."""
    user = await repository.get_honoured(session, user_id)
    if user is None:
        raise InvalidTokenError
    return user


async def _ensure_email_free(session: AsyncSession, email: str) -> None:
    # A friendly answer for the common case; the unique constraint still decides races (409).
    if await repository.email_exists(session, email):
        raise EmailTakenError


async def create_user(session: AsyncSession, data: UserCreate, *, hasher: PasswordHasher) -> User:
    await _ensure_email_free(session, data.email)
    user = User(
        email=data.email,
        full_name=data.full_name,
        hashed_password=await hasher.hash(data.password),
    )
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFoundError
    return user


async def list_users(session: AsyncSession, page: PageParams) -> Sequence[User]:
    return await repository.list_page(session, page)


async def update_user(session: AsyncSession, user: User, data: UserUpdate) -> User:
    if data.email is not MISSING and data.email != user.email:
        await _ensure_email_free(session, data.email)
        user.email = data.email
    if data.full_name is not MISSING:
        user.full_name = data.full_name
    await session.flush()
    return user


async def change_password(
    session: AsyncSession, user: User, data: PasswordChange, *, hasher: PasswordHasher
) -> None:
    valid, _ = await hasher.verify_and_update(data.current_password, user.hashed_password)
    if not valid:
        raise WrongPasswordError
    user.hashed_password = await hasher.hash(data.new_password)
    await session.flush()


async def set_active(session: AsyncSession, user: User, *, active: bool) -> User:
    user.is_active = active
    await session.flush()
    return user


async def set_user_active(session: AsyncSession, user_id: uuid.UUID, *, active: bool) -> User:
    return await set_active(session, await get_user(session, user_id), active=active)
