import uuid
from typing import Any

from fastapi import APIRouter, status

from common.auth import UNAUTHORIZED, CurrentUser
from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import ReadSessionDep, SessionDep
from things_svc.domains.shares import service
from things_svc.domains.shares.schemas import ShareCreate, ShareRead, ShareUpdate

router = APIRouter(prefix="/shares", tags=["shares"], responses=UNAUTHORIZED)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "You have no share with this id"}
}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_share(data: ShareCreate, user_id: CurrentUser, session: SessionDep) -> ShareRead:
    """Create a share.

    You own it: the owner is always the signed-in user.
    """
    share = await service.create_share(session, data, owner_id=user_id)
    return ShareRead.model_validate(share)


@router.get("")
async def list_shares(
    user_id: CurrentUser, session: ReadSessionDep, page: PageDep
) -> Page[ShareRead]:
    """List your shares, oldest first."""
    shares = await service.list_shares(session, page, owner_id=user_id)
    return Page(
        items=[ShareRead.model_validate(share) for share in shares],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{share_id}", responses=NOT_FOUND)
async def get_share(
    share_id: uuid.UUID, user_id: CurrentUser, session: ReadSessionDep
) -> ShareRead:
    """Read one of your shares.

    Another user's share answers 404, like one that does not exist.
    """
    share = await service.get_share(session, share_id, owner_id=user_id)
    return ShareRead.model_validate(share)


@router.patch("/{share_id}", responses=NOT_FOUND)
async def update_share(
    share_id: uuid.UUID, data: ShareUpdate, user_id: CurrentUser, session: SessionDep
) -> ShareRead:
    """Rename one of your shares or change its description.

    Omitted fields stay as they are.
    """
    share = await service.update_share(session, share_id, data, owner_id=user_id)
    return ShareRead.model_validate(share)


@router.delete("/{share_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_share(share_id: uuid.UUID, user_id: CurrentUser, session: SessionDep) -> None:
    """Delete one of your shares."""
    await service.delete_share(session, share_id, owner_id=user_id)
