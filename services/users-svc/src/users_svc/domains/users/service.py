import uuid
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, Row, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.auth import InvalidTokenError
from common.errors import ConflictError, ForbiddenError, NotFoundError
from common.pagination import PageParams
from common.session import get_all, get_one_or_none
from users_svc.domains.users.models import User
from users_svc.domains.users.schemas import PasswordChange, UserCreate, UserRead, UserUpdate
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


# `GET /users/me` reads a row on the request's `ReadConnection`: nothing to track for a response
# that only shows it. Plain Core on the model's table, built once with a bound parameter:
# SQLAlchemy finds it in its compiled cache and runs it without the ORM's compile and loading steps.
UserRow = Row[uuid.UUID, str, str, bool, bool, datetime, datetime]
USERS = User.__table__
SHOWN = ("id", "email", "full_name", "is_active", "is_superuser", "created_at", "updated_at")


def honoured(user_id: uuid.UUID | BindParameter[uuid.UUID]) -> ColumnElement[bool]:
    """The account a token names, if its tokens are still honoured: it exists and is active."""
    return and_(USERS.c.id == user_id, USERS.c.is_active)


READ_ACTIVE = select(*(USERS.c[name] for name in SHOWN)).where(honoured(bindparam("id")))


async def read_active_user(connection: AsyncConnection, user_id: uuid.UUID) -> UserRead:
    """The signed-in user's account, to show; the token is refused if it is gone or deactivated."""
    row: UserRow | None = (await connection.execute(READ_ACTIVE, {"id": user_id})).one_or_none()
    if row is None:
        raise InvalidTokenError
    # From a dict: pydantic reads a Row's attributes at half the speed.
    return UserRead.model_validate(dict(zip(SHOWN, row, strict=True)))


async def get_active_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The signed-in user's account, to change; the token is refused if it is gone or
    deactivated."""
    user = await get_one_or_none(session, select(User).where(honoured(user_id)))
    if user is None:
        raise InvalidTokenError
    return user


async def _ensure_email_free(session: AsyncSession, email: str) -> None:
    # A friendly answer for the common case; the unique constraint still decides races (409).
    if await get_one_or_none(session, select(User.id).where(User.email == email)):
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


async def list_users(session: AsyncSession, page: PageParams) -> list[User]:
    # Ids are UUIDv7: ordering by id is ordering by creation, on the primary key's index.
    statement = select(User).order_by(User.id).limit(page.limit).offset(page.offset)
    return await get_all(session, statement)


async def update_user(session: AsyncSession, user: User, data: UserUpdate) -> User:
    if data.email is not None and data.email != user.email:
        await _ensure_email_free(session, data.email)
        user.email = data.email
    if data.full_name is not None:
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
