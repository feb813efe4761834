import uuid
from typing import Any

from fastapi import APIRouter, status

from common.auth import UNAUTHORIZED, CurrentUser
from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import ReadSessionDep, SessionDep
from things_svc.domains.shares import service
from things_svc.domains.shares.schemas import ShareCreate, ShareRead
from things_svc.domains.things.schemas import ThingRead
from things_svc.users import UsersDep

router = APIRouter(tags=["shares"], responses=UNAUTHORIZED)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "You have no thing with this id"}
}
CANNOT_SHARE: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "description": "You have no thing with this id, or no account you can share with has "
        "this email",
    },
}
SHARE_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "You have no thing with this id shared with this user"}
}
NOT_SHARED: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No thing with this id is shared with you"}
}


@router.post(
    "/things/{thing_id}/shares", status_code=status.HTTP_201_CREATED, responses=CANNOT_SHARE
)
async def share_thing(
    thing_id: uuid.UUID,
    data: ShareCreate,
    user_id: CurrentUser,
    session: SessionDep,
    users: UsersDep,
) -> ShareRead:
    """Let the account with this email read one of your things (not change it).

    users-svc finds the account: an unknown email, a deactivated account and a thing that is not
    yours all answer the same 404. While users-svc is unreachable, 503 with `Retry-After`.
    """
    share = await service.share_thing(session, thing_id, data, owner_id=user_id, users=users)
    return ShareRead.model_validate(share)


@router.get("/things/{thing_id}/shares", responses=NOT_FOUND)
async def list_shares(
    thing_id: uuid.UUID, user_id: CurrentUser, session: ReadSessionDep, page: PageDep
) -> Page[ShareRead]:
    """Whom one of your things is shared with, oldest share first."""
    shares = await service.list_shares(session, thing_id, page, owner_id=user_id)
    return Page(
        items=[ShareRead.model_validate(share) for share in shares],
        limit=page.limit,
        offset=page.offset,
    )


@router.delete(
    "/things/{thing_id}/shares/{shared_with}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=SHARE_NOT_FOUND,
)
async def unshare_thing(
    thing_id: uuid.UUID, shared_with: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> None:
    """Stop sharing one of your things with this user."""
    await service.unshare_thing(session, thing_id, shared_with, owner_id=user_id)


@router.get("/shared-things")
async def list_shared_things(
    user_id: CurrentUser, session: ReadSessionDep, page: PageDep
) -> Page[ThingRead]:
    """The things others shared with you, oldest first."""
    things = await service.list_shared_with_me(session, page, user_id=user_id)
    return Page(
        items=[ThingRead.model_validate(thing) for thing in things],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/shared-things/{thing_id}", responses=NOT_SHARED)
async def get_shared_thing(
    thing_id: uuid.UUID, user_id: CurrentUser, session: ReadSessionDep
) -> ThingRead:
    """One thing someone shared with you. Reading only: its owner alone changes it."""
    thing = await service.get_shared_with_me(session, thing_id, user_id=user_id)
    return ThingRead.model_validate(thing)
