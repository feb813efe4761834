"""Access-token verification: a pinned algorithm, a known key, and every claim checked."""

import logging
import time
import uuid
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import jwt
from cachetools import TLRUCache
from jwt import PyJWK

from common.auth.claims import REQUIRED_CLAIMS
from common.auth.keys import ACCESS_TOKEN_TYPE, ALGORITHMS, KeySource
from common.auth.settings import TokenSettings
from common.errors import UnauthorizedError

logger = logging.getLogger(__name__)

# RFC 9068: the media type of a JWT access token. Other JWTs (ID tokens...) are refused.
ACCESS_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"})
# A token longer than this is refused before any parsing.
MAX_TOKEN_LENGTH = 4096
# Tokens whose signature was checked, remembered until they expire (a few MiB at most).
DEFAULT_CACHE_SIZE = 4096


class NotAuthenticatedError(UnauthorizedError):
    """No token at all: RFC 6750 says to answer with the scheme and no error code."""

    detail = "Send an access token: `Authorization: Bearer <token>`."


class InvalidTokenError(UnauthorizedError):
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}  # noqa: RUF012

    # One answer for every reason: the reason is logged, not told.
    detail = "The access token is invalid or has expired."


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified token's claims: a user's (`subject` is the user's id), or a service's, from the
    client credentials grant (`subject` is None, `client_id` names the service, `scopes` what
    it was granted)."""

    subject: uuid.UUID | None
    token_id: str
    issued_at: datetime
    expires_at: datetime
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: AccessClaims
    kid: str
    key: PyJWK


class TokenVerifier:
    """Verifies access tokens; a token already verified is not checked again until it expires.

    Clients send the same token on every request for its whole life, and the signature check is
    most of a request's cost. A remembered token is accepted only while it has not expired (with
    the same leeway) and while its key is still the one the key source gives for its key id, so
    a withdrawn key stops its tokens here as soon as it would have without the cache. Refusals
    are never remembered.

    `revoked` holds the subjects whose tokens are refused before they expire (a service keeps it
    current from account events: `common.events.revocations`).
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float,
        cache_size: int = DEFAULT_CACHE_SIZE,
        revoked: Container[uuid.UUID] = frozenset(),
    ) -> None:
        self._keys = keys
        self._revoked = revoked
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._verified: TLRUCache[str, _Verified, float] | None = (
            TLRUCache(maxsize=cache_size, ttu=self._usable_until, timer=time.time)
            if cache_size > 0
            else None
        )

    @classmethod
    def from_settings(
        cls,
        keys: KeySource,
        settings: TokenSettings,
        *,
        revoked: Container[uuid.UUID] = frozenset(),
    ) -> Self:
        """A verifier of the tokens `settings` accept, with the public keys of `keys`."""
        return cls(
            keys,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            leeway_seconds=settings.token_leeway_seconds,
            cache_size=settings.token_cache_size,
            revoked=revoked,
        )

    async def open(self) -> None:
        """Open the key source: the app's lifespan calls it, and `aclose` on shutdown."""
        await self._keys.open()

    async def aclose(self) -> None:
        await self._keys.aclose()

    def _usable_until(self, _token: str, verified: _Verified, _now: float) -> float:
        # The instant jwt.decode starts refusing it: `exp` plus the leeway.
        return verified.claims.expires_at.timestamp() + self._leeway

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid access token; `InvalidTokenError` for anything else."""
        claims = await self._claims(token)
        if claims.subject in self._revoked:
            # The same answer as any refused token: a deactivated account is not told apart.
            logger.info("access token refused: its subject is revoked")
            raise InvalidTokenError
        return claims

    async def _claims(self, token: str) -> AccessClaims:
        if self._verified is not None:
            known = self._verified.get(token)
            if known is not None and await self._keys.key_for(known.kid) is known.key:
                return known.claims
        try:
            return await self._verify(token)
        except (
            jwt.PyJWTError,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
        ) as exc:
            logger.info("access token refused: %s", exc)
            raise InvalidTokenError from None

    async def _verify(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("token too long")
        header = jwt.get_unverified_header(token)
        typ, kid = header.get("typ"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise ValueError(f"token type {typ!r} is not an access token")
        if header.get("alg") not in ALGORITHMS:
            raise ValueError(f"algorithm {header.get('alg')!r} is not allowed")
        if not isinstance(kid, str) or not kid:
            raise ValueError("no key id")
        key = await self._keys.key_for(kid)
        if key is None:
            raise ValueError(f"unknown key id {kid!r}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
        client_id = claims.get("client_id")
        # A service's token names the client as its subject; a user's, the user's id.
        service = isinstance(client_id, str) and client_id == claims["sub"]
        verified = AccessClaims(
            subject=None if service else uuid.UUID(claims["sub"]),
            client_id=client_id if service else None,
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=claims["jti"],
            issued_at=datetime.fromtimestamp(claims["iat"], UTC),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
        if self._verified is not None:
            self._verified[token] = _Verified(verified, kid, key)
        return verified
