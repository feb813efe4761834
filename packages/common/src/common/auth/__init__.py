"""Access tokens issued by users-svc, verified by every service.

A service gives `create_app` a `TokenVerifier` (for most services, of the keys of users-svc's
JWKS: `TokenVerifier.from_settings(RemoteJwks.from_settings(settings), settings)`) and can then
declare `user_id: CurrentUser` on any endpoint.
"""

from common.auth.claims import REQUIRED_CLAIMS, access_claims
from common.auth.dependencies import (
    UNAUTHORIZED,
    CurrentClaims,
    CurrentUser,
    authenticate,
    current_claims,
    current_user_id,
    token_verifier_of,
)
from common.auth.keys import (
    ALGORITHMS,
    KeySource,
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
    "NotAuthenticatedError",
    "RemoteJwks",
    "SigningKey",
    "StaticKeys",
    "TokenSettings",
    "TokenVerifier",
    "access_claims",
    "authenticate",
    "current_claims",
    "current_user_id",
    "public_jwk",
    "token_verifier_of",
]
