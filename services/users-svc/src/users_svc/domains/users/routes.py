import uuid
from typing import Any

from fastapi import APIRouter, status

from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import SessionDep
from users_svc.domains.users import service
from users_svc.domains.users.schemas import UserCreate, UserRead, UserUpdate
from users_svc.passwords import PasswordHasherDep

router = APIRouter(prefix="/users", tags=["users"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No user with this id"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The email is already taken"}
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_user(data: UserCreate, session: SessionDep, hasher: PasswordHasherDep) -> UserRead:
    """Create an account. Emails are unique regardless of letter case."""
    user = await service.create_user(session, data, hasher=hasher)
    return UserRead.model_validate(user)


@router.get("")
async def list_users(session: SessionDep, page: PageDep) -> Page[UserRead]:
    """List accounts, oldest first."""
    users = await service.list_users(session, page)
    return Page(
        items=[UserRead.model_validate(user) for user in users],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{user_id}", responses=NOT_FOUND)
async def get_user(user_id: uuid.UUID, session: SessionDep) -> UserRead:
    """Read one account."""
    return UserRead.model_validate(await service.get_user(session, user_id))


@router.patch("/{user_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, session: SessionDep, hasher: PasswordHasherDep
) -> UserRead:
    """Change an account's email, name or password. Omitted fields stay as they are."""
    user = await service.update_user(session, user_id, data, hasher=hasher)
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_user(user_id: uuid.UUID, session: SessionDep) -> None:
    """Delete an account."""
    await service.delete_user(session, user_id)
