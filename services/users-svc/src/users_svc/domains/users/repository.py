import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.pagination import PageParams
from users_svc.domains.users.models import LoginSession, User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def email_exists(session: AsyncSession, email: str) -> bool:
    return await session.scalar(select(User.id).where(User.email == email)) is not None


async def get_honoured(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The account a token names, if its tokens are still honoured: it exists and is active."""
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def get_for_update(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The account read again, its row locked until the transaction ends: a concurrent change
    of it waits for this transaction's commit."""
    return await session.get(User, user_id, with_for_update=True, populate_existing=True)


async def count_wrong_password(session: AsyncSession, user_id: uuid.UUID) -> None:
    # In the statement, not on the loaded row: two wrong passwords at once both count.
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_password_checks=User.failed_password_checks + 1)
    )


async def list_page(session: AsyncSession, page: PageParams) -> Sequence[User]:
    """A page of every account, oldest first (ids are UUIDv7: time-ordered)."""
    statement = select(User).order_by(User.id).limit(page.limit).offset(page.offset)
    return (await session.scalars(statement)).all()


async def login_session_for_update(
    session: AsyncSession, session_id: uuid.UUID
) -> LoginSession | None:
    """The session, locked until the transaction ends: two uses of one refresh token are
    decided one after the other."""
    statement = select(LoginSession).where(LoginSession.id == session_id).with_for_update()
    return await session.scalar(statement)


async def live_sessions(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams, *, now: datetime
) -> Sequence[LoginSession]:
    """A page of the account's sessions that have not expired, newest first."""
    statement = (
        select(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.expires_at > now)
        .order_by(LoginSession.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return (await session.scalars(statement)).all()


async def end_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.id == session_id))


async def end_own_session(
    session: AsyncSession, session_id: uuid.UUID, *, user_id: uuid.UUID
) -> bool:
    """End the session if `user_id` holds it; whether it did."""
    statement = (
        delete(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.user_id == user_id)
        .returning(LoginSession.id)
    )
    return (await session.scalar(statement)) is not None


async def end_every_session(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))


async def end_sessions_past(
    session: AsyncSession, user_id: uuid.UUID, *, keep: int, now: datetime
) -> None:
    """End the account's expired sessions, and its oldest beyond the newest `keep`."""
    newest = (
        select(LoginSession.id)
        .where(LoginSession.user_id == user_id, LoginSession.expires_at > now)
        .order_by(LoginSession.id.desc())
        .limit(keep)
    )
    await session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user_id, LoginSession.id.not_in(newest.scalar_subquery())
        )
    )
