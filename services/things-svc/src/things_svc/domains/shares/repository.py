import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.pagination import PageParams
from things_svc.domains.shares.models import Share

# The named queries: built once, with bound parameters; each call gives only the values.
OWNED_PAGE = (
    select(Share)
    .where(Share.owner_id == bindparam("owner_id"))
    .order_by(Share.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


async def get_owned(
    session: AsyncSession, share_id: uuid.UUID, *, owner_id: uuid.UUID
) -> Share | None:
    """The share with this id, if `owner_id` owns it."""
    share = await session.get(Share, share_id)
    return share if share is not None and share.owner_id == owner_id else None


async def list_owned(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID
) -> Sequence[Share]:
    """A page of the shares `owner_id` owns, oldest first (ids are UUIDv7: time-ordered)."""
    values = {"owner_id": owner_id, "limit": page.limit, "offset": page.offset}
    return (await session.scalars(OWNED_PAGE, values)).all()
