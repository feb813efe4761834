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


async def create_thing(session: AsyncSession, data: ThingCreate, *, owner_id: uuid.UUID) -> Thing:
    thing = Thing(owner_id=owner_id, name=data.name, description=data.description)
    session.add(thing)
    await session.flush()
    return thing


async def get_thing(session: AsyncSession, thing_id: uuid.UUID, *, owner_id: uuid.UUID) -> Thing:
    # By primary key: the ORM's cheapest path, one SELECT. Someone else's thing is missing, as far
    # as this caller can tell: same answer, same 404.
    thing = await session.get(Thing, thing_id)
    if thing is None or thing.owner_id != owner_id:
        raise ThingNotFoundError
    return thing


async def list_things(
    session: AsyncSession, page: PageParams, *, owner_id: uuid.UUID
) -> list[Thing]:
    # Ids are UUIDv7: ordering by id is ordering by creation.
    statement = select(Thing).where(Thing.owner_id == owner_id).order_by(Thing.id)
    return await get_all(session, statement.limit(page.limit).offset(page.offset))


async def update_thing(
    session: AsyncSession, thing_id: uuid.UUID, data: ThingUpdate, *, owner_id: uuid.UUID
) -> Thing:
    thing = await get_thing(session, thing_id, owner_id=owner_id)
    if data.name is not None:
        thing.name = data.name
    if "description" in data.model_fields_set:
        thing.description = data.description
    await session.flush()
    return thing


async def delete_thing(session: AsyncSession, thing_id: uuid.UUID, *, owner_id: uuid.UUID) -> None:
    thing = await get_thing(session, thing_id, owner_id=owner_id)
    await session.delete(thing)
    await session.flush()
