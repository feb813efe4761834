import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFoundError
from common.pagination import PageParams
from common.session import get_all
from things_svc.domains.things.models import Thing
from things_svc.domains.things.schemas import ThingCreate, ThingUpdate


class ThingNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No thing with this id.")


async def create_thing(session: AsyncSession, data: ThingCreate) -> Thing:
    thing = Thing(owner_id=data.owner_id, name=data.name, description=data.description)
    session.add(thing)
    await session.flush()
    return thing


async def get_thing(session: AsyncSession, thing_id: uuid.UUID) -> Thing:
    thing = await session.get(Thing, thing_id)
    if thing is None:
        raise ThingNotFoundError
    return thing


async def list_things(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID | None
) -> list[Thing]:
    # Ids are UUIDv7: ordering by id is ordering by creation, on the primary key's index.
    statement = select(Thing).order_by(Thing.id)
    if owner_id is not None:
        statement = statement.where(Thing.owner_id == owner_id)
    return await get_all(session, statement.limit(page.limit).offset(page.offset))


async def update_thing(session: AsyncSession, thing_id: uuid.UUID, data: ThingUpdate) -> Thing:
    thing = await get_thing(session, thing_id)
    if data.name is not None:
        thing.name = data.name
    if "description" in data.model_fields_set:
        thing.description = data.description
    await session.flush()
    return thing


async def delete_thing(session: AsyncSession, thing_id: uuid.UUID) -> None:
    thing = await get_thing(session, thing_id)
    await session.delete(thing)
    await session.flush()
