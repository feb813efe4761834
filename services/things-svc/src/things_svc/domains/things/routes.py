import uuid
from typing import Any

from fastapi import APIRouter, status

from common.auth import UNAUTHORIZED, CurrentUser
from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import ReadSessionDep, SessionDep
from things_svc.domains.things import service
from things_svc.domains.things.schemas import ThingCreate, ThingRead, ThingUpdate

router = APIRouter(prefix="/things", tags=["things"], responses=UNAUTHORIZED)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "You have no thing with this id"}
}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_thing(data: ThingCreate, user_id: CurrentUser, session: SessionDep) -> ThingRead:
    """Create a thing.

    You own it: the owner is always the signed-in user.
    """
    thing = await service.create_thing(session, data, owner_id=user_id)
    return ThingRead.model_validate(thing)


@router.get("")
async def list_things(
    user_id: CurrentUser, session: ReadSessionDep, page: PageDep
) -> Page[ThingRead]:
    """List your things, oldest first."""
    things = await service.list_things(session, page, owner_id=user_id)
    return Page(
        items=[ThingRead.model_validate(thing) for thing in things],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{thing_id}", responses=NOT_FOUND)
async def get_thing(
    thing_id: uuid.UUID, user_id: CurrentUser, session: ReadSessionDep
) -> ThingRead:
    """Read one of your things.

    Another user's thing answers 404, like one that does not exist.
    """
    thing = await service.get_thing(session, thing_id, owner_id=user_id)
    return ThingRead.model_validate(thing)


@router.patch("/{thing_id}", responses=NOT_FOUND)
async def update_thing(
    thing_id: uuid.UUID, data: ThingUpdate, user_id: CurrentUser, session: SessionDep
) -> ThingRead:
    """Rename one of your things or change its description.

    Omitted fields stay as they are.
    """
    thing = await service.update_thing(session, thing_id, data, owner_id=user_id)
    return ThingRead.model_validate(thing)


@router.delete("/{thing_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_thing(thing_id: uuid.UUID, user_id: CurrentUser, session: SessionDep) -> None:
    """Delete one of your things."""
    await service.delete_thing(session, thing_id, owner_id=user_id)
