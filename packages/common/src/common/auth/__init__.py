"""Access tokens issued by users-svc, verified by every service.

A service whose settings are `JwksSettings` verifies tokens with the keys of users-svc's JWKS
(users-svc gives `create_app` its own keys, `token_keys`), and can declare `user_id: CurrentUser`
on any endpoint. `common.auth` needs neither a database nor a broker.
"""

from common.auth.claims import REQUIRED_CLAIMS, access_claims, service_claims
from common.auth.dependencies import (
    UNAUTHORIZED,
    CurrentClaims,
    CurrentService,
    CurrentUser,
    InsufficientScopeError,
    NotAUserError,
    bearer,
    current_claims,
    current_service,
    current_user_id,
    service_with_scopes,
    user_of,
    verified_claims,
)
from common.auth.keys import (
    ALGORITHMS,
    KeySource,
    KeysUnavailableError,
    RemoteJwks,
    SigningKey,
    StaticKeys,
    public_jwk,
)
from common.auth.settings import JWKS_PATH, JwksSettings, TokenSettings
from common.auth.verifier import (
    AccessClaims,
    InvalidTokenError,
    NotAuthenticatedError,
    TokenVerifier,
)

__all__ = [
    "ALGORITHMS",
    "JWKS_PATH",
    "REQUIRED_CLAIMS",
    "UNAUTHORIZED",
    "AccessClaims",
    "CurrentClaims",
    "CurrentService",
    "CurrentUser",
    "InsufficientScopeError",
    "InvalidTokenError",
    "JwksSettings",
    "KeySource",
    "KeysUnavailableError",
    "NotAUserError",
    "NotAuthenticatedError",
    "RemoteJwks",
    "SigningKey",
    "StaticKeys",
    "TokenSettings",
    "TokenVerifier",
    "access_claims",
    "bearer",
    "current_claims",
    "current_service",
    "current_user_id",
    "public_jwk",
    "service_claims",
    "service_with_scopes",
    "user_of",
    "verified_claims",
]
