from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response, status

from common.errors import Problem
from common.session import SessionDep
from users_svc.domains.auth import service
from users_svc.domains.auth.dependencies import (
    ClientDep,
    ClientSecretBasicDep,
    RecordingSessionDep,
)
from users_svc.domains.auth.schemas import (
    JsonWebKeySet,
    Login,
    RefreshTokenBody,
    ServiceToken,
    TokenForm,
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


async def no_store(response: Response) -> None:
    """Answers that carry tokens must not be kept by browsers or proxies (RFC 6749, 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


LOGIN_FAILED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Incorrect email or password"},
    403: {"model": Problem, "description": "The account is deactivated"},
    423: {"model": Problem, "description": "The account is locked after too many wrong passwords"},
    429: {
        "model": Problem,
        "description": "Too many failed logins for this account or from this address",
    },
}
TOKEN_REFUSED: dict[int | str, dict[str, Any]] = {
    **LOGIN_FAILED,
    400: {"model": Problem, "description": "A scope the client is not granted"},
    401: {
        "model": Problem,
        "description": "Incorrect email or password; or unknown client, or wrong secret",
    },
}
REFRESH_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The refresh token is invalid, expired or revoked"}
}


@router.post("/token", responses=TOKEN_REFUSED, dependencies=[Depends(no_store)])
async def issue_token(
    form: Annotated[TokenForm, Form()],
    basic: ClientSecretBasicDep,
    session: RecordingSessionDep,
    client: ClientDep,
    hasher: PasswordHasherDep,
    keys: KeyRingDep,
    settings: SettingsDep,
) -> Tokens | ServiceToken:
    """OAuth2's token endpoint, form-encoded. The password grant (`username` = email,
    `password`), what the docs' Authorize button uses, answers an access token valid for at most
    15 minutes and a refresh token; after too many failed logins, 429 with `Retry-After`. The
    client credentials grant (`grant_type=client_credentials`, a service's id and secret by
    HTTP Basic) answers a service's access token for the scopes it asks."""
    if form.grant_type == "client_credentials":
        return service.grant_client_credentials(form, basic=basic, keys=keys, settings=settings)
    credentials = Login.model_validate({"email": form.username, "password": form.password})
    return await log_in(credentials, session, client, hasher, keys, settings)


@router.post("/login", responses=LOGIN_FAILED, dependencies=[Depends(no_store)])
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


@router.post("/refresh", responses=REFRESH_REFUSED, dependencies=[Depends(no_store)])
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
