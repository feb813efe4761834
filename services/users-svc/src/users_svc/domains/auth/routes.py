from typing import Annotated, Any

from fastapi import APIRouter, Form, Response, status

from common.errors import Problem
from common.session import SessionDep
from users_svc.domains.auth import service
from users_svc.domains.auth.dependencies import ClientDep, RecordingSessionDep
from users_svc.domains.auth.schemas import (
    JsonWebKeySet,
    Login,
    PasswordForm,
    RefreshTokenBody,
    Tokens,
)
from users_svc.passwords import PasswordHasherDep
from users_svc.settings import SettingsDep
from users_svc.signing import KeyRingDep

router = APIRouter(prefix="/auth", tags=["auth"])
# Outside the API prefix: RFC 8615 puts well-known URIs at the root of the origin.
root_router = APIRouter(tags=["auth"])

# How long verifiers may cache the key set (they may refetch sooner for an unknown key id).
JWKS_MAX_AGE_SECONDS = 300

LOGIN_FAILED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Incorrect email or password"},
    403: {"model": Problem, "description": "The account is deactivated"},
    423: {"model": Problem, "description": "The account is locked after too many wrong passwords"},
    429: {
        "model": Problem,
        "description": "Too many failed logins for this account or from this address",
    },
}
REFRESH_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The refresh token is invalid, expired or revoked"}
}


@router.post("/token", responses=LOGIN_FAILED)
async def log_in_with_form(
    form: Annotated[PasswordForm, Form()],
    session: RecordingSessionDep,
    client: ClientDep,
    hasher: PasswordHasherDep,
    keys: KeyRingDep,
    settings: SettingsDep,
) -> Tokens:
    """OAuth2 password flow (form-encoded `username` = email, `password`): what the docs'
    Authorize button uses. Answers an access token valid for at most 15 minutes, and a refresh
    token. After too many failed logins, 429 with `Retry-After`."""
    credentials = Login(email=form.username, password=form.password)
    return await log_in(credentials, session, client, hasher, keys, settings)


@router.post("/login", responses=LOGIN_FAILED)
async def log_in(
    data: Login,
    session: RecordingSessionDep,
    client: ClientDep,
    hasher: PasswordHasherDep,
    keys: KeyRingDep,
    settings: SettingsDep,
) -> Tokens:
    """Log in with a JSON body: starts a session. Send the access token as `Authorization:
    Bearer <access_token>`; before it expires, trade the refresh token for new tokens at
    `/auth/refresh`. After too many failed logins, 429 with `Retry-After`."""
    return await service.log_in(
        session,
        data.email,
        data.password,
        client=client,
        hasher=hasher,
        keys=keys,
        settings=settings,
    )


@router.post("/refresh", responses=REFRESH_REFUSED)
async def refresh(
    data: RefreshTokenBody, session: RecordingSessionDep, keys: KeyRingDep, settings: SettingsDep
) -> Tokens:
    """New tokens for the session of the refresh token, which is spent: use the new one next
    time. A spent refresh token sent again ends its session (both tokens are then refused)."""
    return await service.refresh(session, data.refresh_token, keys=keys, settings=settings)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def log_out(data: RefreshTokenBody, session: SessionDep) -> None:
    """End the session of the refresh token: it can no longer be refreshed (access tokens
    already issued stay valid until they expire). Answers 204 whatever the token."""
    await service.log_out(session, data.refresh_token)


@root_router.get("/.well-known/jwks.json")
async def json_web_key_set(keys: KeyRingDep, response: Response) -> JsonWebKeySet:
    """The public keys that verify access tokens, by `kid`: the signing key and, during a
    rotation, the keys it replaced."""
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return JsonWebKeySet.model_validate(keys.jwks)
