import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import SessionDep
from things_svc.domains.things import service
from things_svc.domains.things.schemas import ThingCreate, ThingRead, ThingUpdate

router = APIRouter(prefix="/things", tags=["things"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No thing with this id"}
}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_thing(data: ThingCreate, session: SessionDep) -> ThingRead:
    """Create a thing owned by `owner_id`."""
    return ThingRead.model_validate(await service.create_thing(session, data))


@router.get("")
async def list_things(
    session: SessionDep,
    page: PageDep,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only this user's things.")] = None,
) -> Page[ThingRead]:
    """List things, oldest first."""
    things = await service.list_things(session, page, owner_id=owner_id)
    return Page(
        items=[ThingRead.model_validate(thing) for thing in things],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{thing_id}", responses=NOT_FOUND)
async def get_thing(thing_id: uuid.UUID, session: SessionDep) -> ThingRead:
    """Read one thing."""
    return ThingRead.model_validate(await service.get_thing(session, thing_id))


@router.patch("/{thing_id}", responses=NOT_FOUND)
async def update_thing(thing_id: uuid.UUID, data: ThingUpdate, session: SessionDep) -> ThingRead:
    """Rename a thing or change its description. Omitted fields stay as they are."""
    return ThingRead.model_validate(await service.update_thing(session, thing_id, data))


@router.delete("/{thing_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_thing(thing_id: uuid.UUID, session: SessionDep) -> None:
    """Delete a thing."""
    await service.delete_thing(session, thing_id)
