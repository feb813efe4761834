"""Access tokens issued by users-svc, verified by every service.

A service whose settings are `JwksSettings` verifies tokens with the keys of users-svc's JWKS
(users-svc gives `create_app` its own keys, `token_keys`), and can declare `user_id: CurrentUser`
on any endpoint. `common.auth` needs neither a database nor a broker.
"""

from common.auth.claims import REQUIRED_CLAIMS, access_claims
from common.auth.dependencies import (
    UNAUTHORIZED,
    CurrentClaims,
    CurrentUser,
    bearer,
    current_claims,
    current_user_id,
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
    "CurrentUser",
    "InvalidTokenError",
    "JwksSettings",
    "KeySource",
    "KeysUnavailableError",
    "NotAuthenticatedError",
    "RemoteJwks",
    "SigningKey",
    "StaticKeys",
    "TokenSettings",
    "TokenVerifier",
    "access_claims",
    "bearer",
    "current_claims",
    "current_user_id",
    "public_jwk",
    "verified_claims",
]
