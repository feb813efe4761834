import uuid
from collections.abc import Sequence

from pydantic import MISSING
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFoundError
from common.pagination import PageParams
from things_svc.domains.shares import repository
from things_svc.domains.shares.models import Share
from things_svc.domains.shares.schemas import ShareCreate, ShareUpdate


class ShareNotFoundError(NotFoundError):
    detail = "No share with this id."


async def create_share(session: AsyncSession, data: ShareCreate, *, owner_id: uuid.UUID) -> Share:
    share = Share(owner_id=owner_id, name=data.name, description=data.description)
    session.add(share)
    await session.flush()
    return share


async def get_share(session: AsyncSession, share_id: uuid.UUID, *, owner_id: uuid.UUID) -> Share:
    # Another owner's share is missing, as far as this caller can tell: the same 404.
    share = await repository.get_owned(session, share_id, owner_id=owner_id)
    if share is None:
        raise ShareNotFoundError
    return share


async def list_shares(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID
) -> Sequence[Share]:
    return await repository.list_owned(session, page, owner_id=owner_id)


async def update_share(
    session: AsyncSession, share_id: uuid.UUID, data: ShareUpdate, *, owner_id: uuid.UUID
) -> Share:
    share = await get_share(session, share_id, owner_id=owner_id)
    if data.name is not MISSING:
        share.name = data.name
    if "description" in data.model_fields_set:
        share.description = data.description
    await session.flush()
    return share


async def delete_share(session: AsyncSession, share_id: uuid.UUID, *, owner_id: uuid.UUID) -> None:
    share = await get_share(session, share_id, owner_id=owner_id)
    await session.delete(share)
    await session.flush()
