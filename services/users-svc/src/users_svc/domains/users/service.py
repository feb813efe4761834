"""Accounts and their sessions.

Each change of an account's state is one function (create, update, change_password, deactivate,
reactivate, erase). Those other services act on publish an event in the same transaction
(`common.events.publish`, docs/events.md): `user.deactivated`, `user.reactivated`,
`user.deleted` and `user.password_changed`.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import MISSING
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import InvalidTokenError
from common.errors import ConflictError, ForbiddenError, NotFoundError
from common.events import Event, publish
from common.pagination import PageParams
from users_svc.domains.auth import service as auth
from users_svc.domains.auth.schemas import Client
from users_svc.domains.users import repository
from users_svc.domains.users.models import LoginSession, User
from users_svc.domains.users.schemas import AccountErasure, PasswordChange, UserCreate, UserUpdate
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings


class UserNotFoundError(NotFoundError):
    detail = "No user with this id."


class SessionNotFoundError(NotFoundError):
    detail = "You have no session with this id."


class EmailTakenError(ConflictError):
    detail = "A user with this email already exists."


class WrongPasswordError(ForbiddenError):
    detail = "The current password is not correct."


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


async def _check_password(
    session: AsyncSession,
    user: User,
    password: str,
    *,
    client: Client,
    hasher: PasswordHasher,
    settings: Settings,
) -> None:
    # Throttled and counted with the logins: a stolen access token guesses no faster than a login.
    if not await auth.check_password(
        session, user, password, client=client, hasher=hasher, settings=settings
    ):
        raise WrongPasswordError


async def create_user(session: AsyncSession, data: UserCreate, *, hasher: PasswordHasher) -> User:
    # Hashed before the first query: the session takes its connection then, so none is held
    # while argon2 runs, and a flood of sign-ups cannot empty the pool.
    hashed_password = await hasher.hash(data.password)
    await _ensure_email_free(session, data.email)
    user = User(email=data.email, full_name=data.full_name, hashed_password=hashed_password)
    session.add(user)
    await session.flush()
    return user


async def make_admin(
    session: AsyncSession,
    email: str,
    *,
    password: str | None,
    hasher: PasswordHasher,
    force: bool = False,
) -> User:
    """The account with this email made an administrator; created first (with `password`) when
    there is none. No request can do this: an administrator runs `python -m users_svc.admin`.

    An existing account is promoted only with its own password, unless `force`: emails are never
    verified, so whoever signed up first with an address holds its account.
    """
    user = await repository.get_by_email(session, email)
    if user is None:
        if password is None:
            raise UserNotFoundError
        data = UserCreate(email=email, full_name=email.split("@")[0], password=password)
        user = await create_user(session, data, hasher=hasher)
    elif not force:
        valid, _ = await hasher.verify_and_update(password or "", user.hashed_password)
        if not valid:
            raise WrongPasswordError("The password is not this account's.")
    user.is_superuser = True
    await session.flush()
    return user


class NoAccountWithEmailError(NotFoundError):
    detail = "No account has this email."


async def look_up(session: AsyncSession, email: str) -> User:
    """The account with this email, for another service (scope `users:lookup`)."""
    user = await repository.get_by_email(session, email)
    if user is None:
        raise NoAccountWithEmailError
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFoundError
    return user


async def lock(session: AsyncSession, user: User) -> None:
    """Hold the account's row until the transaction ends; every change that publishes an event
    starts with it. A concurrent change waits for this one's commit before it writes its own
    event, so the outbox holds an account's events in the order their changes commit, and the
    other services apply them in that order (an erasure is never followed by a reactivation).
    An account erased meanwhile is missing (404)."""
    if await repository.get_for_update(session, user.id) is None:
        raise UserNotFoundError


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
    session: AsyncSession,
    user_id: uuid.UUID,
    data: PasswordChange,
    *,
    client: Client,
    hasher: PasswordHasher,
    settings: Settings,
) -> None:
    """A new password; every session of the account ends, so every device logs in again."""
    # Hashed before the first query, as at sign-up: no connection is held while argon2 runs.
    hashed_password = await hasher.hash(data.new_password)
    user = await get_signed_in(session, user_id)
    await _check_password(
        session, user, data.current_password, client=client, hasher=hasher, settings=settings
    )
    await lock(session, user)
    user.hashed_password = hashed_password
    await repository.end_every_session(session, user.id)
    await publish(session, Event(type="user.password_changed", subject_id=user.id))
    await session.flush()


async def deactivate(session: AsyncSession, user: User) -> User:
    """No more logins, and every session of the account ends (its refresh tokens with it)."""
    await lock(session, user)
    user.is_active = False
    await repository.end_every_session(session, user.id)
    await publish(session, Event(type="user.deactivated", subject_id=user.id))
    await session.flush()
    return user


async def reactivate(session: AsyncSession, user: User) -> User:
    await lock(session, user)
    user.is_active = True
    await publish(session, Event(type="user.reactivated", subject_id=user.id))
    await session.flush()
    return user


async def erase(session: AsyncSession, user: User) -> None:
    """Delete the account and everything users-svc holds about it: its row (email, name,
    password hash) and, by the foreign key's cascade, its sessions. The id is not kept, except in
    the `user.deleted` event that tells the other services to erase what they hold."""
    await lock(session, user)
    await publish(session, Event(type="user.deleted", subject_id=user.id))
    await session.delete(user)
    await session.flush()


async def erase_me(
    session: AsyncSession,
    user_id: uuid.UUID,
    data: AccountErasure,
    *,
    client: Client,
    hasher: PasswordHasher,
    settings: Settings,
) -> None:
    user = await get_signed_in(session, user_id)
    await _check_password(
        session, user, data.password, client=client, hasher=hasher, settings=settings
    )
    await erase(session, user)


async def deactivate_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    return await deactivate(session, await get_user(session, user_id))


async def reactivate_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    return await reactivate(session, await get_user(session, user_id))


async def unlock_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await get_user(session, user_id)
    await auth.unlock(session, user)
    return user


async def erase_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await erase(session, await get_user(session, user_id))


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams
) -> Sequence[LoginSession]:
    """The caller's sessions that have not expired, newest first."""
    user = await get_signed_in(session, user_id)
    return await repository.live_sessions(session, user.id, page, now=datetime.now(UTC))


async def end_session(session: AsyncSession, user: User, session_id: uuid.UUID) -> None:
    """End one of the caller's sessions; someone else's answers 404, like a missing one."""
    if not await repository.end_own_session(session, session_id, user_id=user.id):
        raise SessionNotFoundError
