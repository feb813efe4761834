import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.pagination import PageParams
from things_svc.domains.shares.models import Share
from things_svc.domains.things.models import Thing

# The named queries: built once, with bound parameters; each call gives only the values.
SHARES_PAGE = (
    select(Share)
    .where(Share.thing_id == bindparam("thing_id"))
    .order_by(Share.created_at, Share.user_id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
SHARED_WITH_PAGE = (
    select(Thing)
    .join(Share, Share.thing_id == Thing.id)
    .where(Share.user_id == bindparam("user_id"))
    .order_by(Thing.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


async def list_for_thing(
    session: AsyncSession, page: PageParams, *, thing_id: uuid.UUID
) -> Sequence[Share]:
    """A page of a thing's shares, oldest first."""
    values = {"thing_id": thing_id, "limit": page.limit, "offset": page.offset}
    return (await session.scalars(SHARES_PAGE, values)).all()


async def list_shared_with(
    session: AsyncSession, page: PageParams, *, user_id: uuid.UUID
) -> Sequence[Thing]:
    """A page of the things shared with `user_id`, oldest first."""
    values = {"user_id": user_id, "limit": page.limit, "offset": page.offset}
    return (await session.scalars(SHARED_WITH_PAGE, values)).all()


async def get_shared_with(
    session: AsyncSession, thing_id: uuid.UUID, *, user_id: uuid.UUID
) -> Thing | None:
    """The thing with this id, if it is shared with `user_id`."""
    if await session.get(Share, (thing_id, user_id)) is None:
        return None
    return await session.get(Thing, thing_id)
