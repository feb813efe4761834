import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.pagination import PageParams
from things_svc.domains.things.models import Thing

# The named queries: built once, with bound parameters; each call gives only the values.
OWNED_PAGE = (
    select(Thing)
    .where(Thing.owner_id == bindparam("owner_id"))
    .order_by(Thing.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


async def get_owned(
    session: AsyncSession, thing_id: uuid.UUID, *, owner_id: uuid.UUID
) -> Thing | None:
    """The thing with this id, if `owner_id` owns it."""
    thing = await session.get(Thing, thing_id)
    return thing if thing is not None and thing.owner_id == owner_id else None


async def list_owned(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID
) -> Sequence[Thing]:
    """A page of the things `owner_id` owns, oldest first (ids are UUIDv7: time-ordered)."""
    values = {"owner_id": owner_id, "limit": page.limit, "offset": page.offset}
    return (await session.scalars(OWNED_PAGE, values)).all()
