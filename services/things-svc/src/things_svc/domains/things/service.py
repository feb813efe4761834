import uuid
from collections.abc import Sequence

from pydantic import MISSING
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFoundError
from common.pagination import PageParams
from things_svc.domains.things import repository
from things_svc.domains.things.models import Thing
from things_svc.domains.things.schemas import ThingCreate, ThingUpdate


class ThingNotFoundError(NotFoundError):
    detail = "No thing with this id."


async def create_thing(session: AsyncSession, data: ThingCreate, *, owner_id: uuid.UUID) -> Thing:
    thing = Thing(owner_id=owner_id, name=data.name, description=data.description)
    session.add(thing)
    await session.flush()
    return thing


async def get_thing(session: AsyncSession, thing_id: uuid.UUID, *, owner_id: uuid.UUID) -> Thing:
    # Another owner's thing is missing, as far as this caller can tell: the same 404.
    thing = await repository.get_owned(session, thing_id, owner_id=owner_id)
    if thing is None:
        raise ThingNotFoundError
    return thing


async def list_things(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID
) -> Sequence[Thing]:
    return await repository.list_owned(session, page, owner_id=owner_id)


async def update_thing(
    session: AsyncSession, thing_id: uuid.UUID, data: ThingUpdate, *, owner_id: uuid.UUID
) -> Thing:
    thing = await get_thing(session, thing_id, owner_id=owner_id)
    if data.name is not MISSING:
        thing.name = data.name
    if "description" in data.model_fields_set:
        thing.description = data.description
    await session.flush()
    return thing


async def delete_thing(session: AsyncSession, thing_id: uuid.UUID, *, owner_id: uuid.UUID) -> None:
    thing = await get_thing(session, thing_id, owner_id=owner_id)
    await session.delete(thing)
    await session.flush()
