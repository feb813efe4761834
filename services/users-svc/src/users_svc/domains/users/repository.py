import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.pagination import PageParams
from users_svc.domains.users.models import User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def email_exists(session: AsyncSession, email: str) -> bool:
    return await session.scalar(select(User.id).where(User.email == email)) is not None


async def get_honoured(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The account a token names, if its tokens are still honoured: it exists and is active."""
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def list_page(session: AsyncSession, page: PageParams) -> Sequence[User]:
    """A page of every account, oldest first (ids are UUIDv7: time-ordered)."""
    statement = select(User).order_by(User.id).limit(page.limit).offset(page.offset)
    return (await session.scalars(statement)).all()
