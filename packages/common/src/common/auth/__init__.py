"""Access tokens issued by users-svc, verified by every service.

A service whose settings subclass `JwksSettings` gets a `TokenVerifier` in its lifespan and can
declare `user_id: CurrentUser` on any endpoint.
"""

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
    open_token_verifier,
)

__all__ = [
    "ALGORITHMS",
    "JWKS_PATH",
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
    "authenticate",
    "current_claims",
    "current_user_id",
    "open_token_verifier",
    "public_jwk",
    "token_verifier_of",
]
