from typing import Annotated, Any

from fastapi import APIRouter, Form, Response

from common.errors import Problem
from common.session import SessionDep
from users_svc.domains.auth import service
from users_svc.domains.auth.schemas import AccessToken, JsonWebKeySet, Login, PasswordForm
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
}


@router.post("/token", responses=LOGIN_FAILED)
async def log_in_with_form(
    form: Annotated[PasswordForm, Form()],
    session: SessionDep,
    hasher: PasswordHasherDep,
    keys: KeyRingDep,
    settings: SettingsDep,
) -> AccessToken:
    """OAuth2 password flow (form-encoded `username` = email, `password`): what the docs'
    Authorize button uses. Answers an access token valid for at most 15 minutes."""
    return await service.log_in(
        session, form.username, form.password, hasher=hasher, keys=keys, settings=settings
    )


@router.post("/login", responses=LOGIN_FAILED)
async def log_in(
    data: Login,
    session: SessionDep,
    hasher: PasswordHasherDep,
    keys: KeyRingDep,
    settings: SettingsDep,
) -> AccessToken:
    """Log in with a JSON body. Send the token as `Authorization: Bearer <access_token>`."""
    return await service.log_in(
        session, data.email, data.password, hasher=hasher, keys=keys, settings=settings
    )


@root_router.get("/.well-known/jwks.json")
async def json_web_key_set(keys: KeyRingDep, response: Response) -> JsonWebKeySet:
    """The public keys that verify access tokens, by `kid`: the signing key and, during a
    rotation, the keys it replaced."""
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return JsonWebKeySet.model_validate(keys.jwks)
