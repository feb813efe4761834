import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Security, status

from common.auth import UNAUTHORIZED, AccessClaims
from common.errors import Problem
from common.pagination import Page, PageDep
from common.session import SessionDep
from users_svc.domains.auth.dependencies import ClientDep, RecordingSessionDep
from users_svc.domains.users import service
from users_svc.domains.users.dependencies import (
    AdminAccount,
    CountedSignUp,
    CurrentAccount,
    SignedInId,
    calling_service,
)
from users_svc.domains.users.schemas import (
    AccountErasure,
    PasswordChange,
    SessionRead,
    UserLookup,
    UserRead,
    UserReference,
    UserUpdate,
)
from users_svc.passwords import PasswordHasherDep
from users_svc.settings import SettingsDep

router = APIRouter(prefix="/users", tags=["users"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No user with this id"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The email is already taken"}
}
SIGN_UP: dict[int | str, dict[str, Any]] = {
    **CONFLICT,
    429: {"model": Problem, "description": "Too many sign-ups from this address"},
}
SIGNED_IN: dict[int | str, dict[str, Any]] = {**UNAUTHORIZED}
WITH_PASSWORD: dict[int | str, dict[str, Any]] = {
    **SIGNED_IN,
    403: {"model": Problem, "description": "The current password is not correct"},
    423: {"model": Problem, "description": "The account is locked after too many wrong passwords"},
    429: {
        "model": Problem,
        "description": "Too many wrong passwords for this account or from this address",
    },
}
ADMIN: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    403: {"model": Problem, "description": "The caller is not an administrator"},
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=SIGN_UP)
async def sign_up(data: CountedSignUp, session: SessionDep, hasher: PasswordHasherDep) -> UserRead:
    """Create an account. Emails are unique regardless of letter case. Then log in. Past a
    number of sign-ups from one address, 429 with `Retry-After`."""
    user = await service.create_user(session, data, hasher=hasher)
    return UserRead.model_validate(user)


@router.post(
    "/lookup",
    responses={
        **UNAUTHORIZED,
        403: {"model": Problem, "description": "The caller is not a service granted users:lookup"},
        404: {"model": Problem, "description": "No account has this email"},
    },
)
async def look_up_user(
    data: UserLookup,
    session: SessionDep,
    caller: Annotated[AccessClaims, Security(calling_service, scopes=["users:lookup"])],
) -> UserReference:
    """For services granted the scope `users:lookup`, with their own token: the account with
    this email, and whether it can be shared with (it is active). 404 when there is none."""
    user = await service.look_up(session, data.email)
    return UserReference(id=user.id, shareable=user.is_active)


@router.get("/me", responses=SIGNED_IN)
async def read_me(account: CurrentAccount) -> UserRead:
    """Your account."""
    return UserRead.model_validate(account)


@router.patch("/me", responses={**SIGNED_IN, **CONFLICT})
async def update_me(account: CurrentAccount, data: UserUpdate, session: SessionDep) -> UserRead:
    """Change your email or name. Omitted fields stay as they are."""
    return UserRead.model_validate(await service.update_user(session, account, data))


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=WITH_PASSWORD)
async def erase_me(
    user_id: SignedInId,
    data: AccountErasure,
    session: RecordingSessionDep,
    client: ClientDep,
    hasher: PasswordHasherDep,
    settings: SettingsDep,
) -> None:
    """Delete your account and what users-svc holds about you (email, name, password hash,
    sessions); the current password is required, and wrong ones count with failed logins
    (429 with `Retry-After` past the limit). The email can sign up again. Your access tokens
    stop working here at once, elsewhere when they expire (15 minutes at most)."""
    await service.erase_me(session, user_id, data, client=client, hasher=hasher, settings=settings)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, responses=WITH_PASSWORD)
async def change_my_password(
    user_id: SignedInId,
    data: PasswordChange,
    session: RecordingSessionDep,
    client: ClientDep,
    hasher: PasswordHasherDep,
    settings: SettingsDep,
) -> None:
    """Change your password; the current one is required, and wrong ones count with failed
    logins (429 with `Retry-After` past the limit). Every session ends: refresh tokens are
    refused from now on, access tokens already issued stay valid until they expire."""
    await service.change_password(
        session, user_id, data, client=client, hasher=hasher, settings=settings
    )


@router.post("/me/deactivate", status_code=status.HTTP_204_NO_CONTENT, responses=SIGNED_IN)
async def deactivate_me(account: CurrentAccount, session: SessionDep) -> None:
    """Deactivate your account: you can no longer log in, every session ends, and your access
    tokens stop working here at once (other services accept them until they expire, 15
    minutes at most)."""
    await service.deactivate(session, account)


@router.get("/me/sessions", responses=SIGNED_IN)
async def list_my_sessions(
    account: CurrentAccount, session: SessionDep, page: PageDep
) -> Page[SessionRead]:
    """Your sessions (one per login, until it ends or expires), newest first."""
    sessions = await service.list_sessions(session, account.id, page)
    return Page(
        items=[SessionRead.model_validate(login) for login in sessions],
        limit=page.limit,
        offset=page.offset,
    )


@router.delete(
    "/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**SIGNED_IN, 404: {"model": Problem, "description": "You have no such session"}},
)
async def end_my_session(
    session_id: uuid.UUID, account: CurrentAccount, session: SessionDep
) -> None:
    """End one of your sessions, on this device or another: its refresh token is refused from
    now on (access tokens already issued stay valid until they expire)."""
    await service.end_session(session, account, session_id)


@router.get("", responses=ADMIN)
async def list_users(_: AdminAccount, session: SessionDep, page: PageDep) -> Page[UserRead]:
    """Every account, oldest first. Administrators only."""
    users = await service.list_users(session, page)
    return Page(
        items=[UserRead.model_validate(user) for user in users],
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{user_id}", responses={**ADMIN, **NOT_FOUND})
async def get_user(user_id: uuid.UUID, _: AdminAccount, session: SessionDep) -> UserRead:
    """One account. Administrators only."""
    return UserRead.model_validate(await service.get_user(session, user_id))


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**ADMIN, **NOT_FOUND}
)
async def erase_user(user_id: uuid.UUID, _: AdminAccount, session: SessionDep) -> None:
    """Delete an account and what users-svc holds about it, as its owner can. Administrators
    only."""
    await service.erase_user(session, user_id)


@router.post("/{user_id}/deactivate", responses={**ADMIN, **NOT_FOUND})
async def deactivate_user(user_id: uuid.UUID, _: AdminAccount, session: SessionDep) -> UserRead:
    """Deactivate an account: it can no longer log in and every session ends.
    Administrators only."""
    return UserRead.model_validate(await service.deactivate_user(session, user_id))


@router.post("/{user_id}/activate", responses={**ADMIN, **NOT_FOUND})
async def activate_user(user_id: uuid.UUID, _: AdminAccount, session: SessionDep) -> UserRead:
    """Reactivate an account. Administrators only."""
    return UserRead.model_validate(await service.reactivate_user(session, user_id))


@router.post("/{user_id}/unlock", responses={**ADMIN, **NOT_FOUND})
async def unlock_user(user_id: uuid.UUID, _: AdminAccount, session: SessionDep) -> UserRead:
    """Unlock an account that too many wrong passwords in a row locked (423): its password is
    checked again, its count of failures starts from zero. Administrators only."""
    return UserRead.model_validate(await service.unlock_user(session, user_id))
