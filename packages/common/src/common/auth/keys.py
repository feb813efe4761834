"""Where a verifier finds public keys: a fixed set, or users-svc's JWKS fetched over HTTP.

The remote set is cached for a lifetime and refetched when a token names a key id it does not
know, at most once per `refetch_interval`: a flood of tokens with made-up key ids costs one fetch
per interval, and concurrent requests share the fetch in flight. When users-svc cannot be reached,
the keys already known keep verifying.
"""

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK, PyJWTError
from jwt.algorithms import OKPAlgorithm

logger = logging.getLogger(__name__)

# The only signature algorithm tokens may use. Never taken from a token or a key set.
ALGORITHMS: tuple[str, ...] = ("EdDSA",)

# RFC 9068's `typ` header of a JWT access token.
ACCESS_TOKEN_TYPE = "at+jwt"

JwkDict = dict[str, Any]


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP key: the key id users-svc publishes, stable across restarts."""
    members = {name: jwk[name] for name in ("crv", "kty", "x")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def public_jwk(public_key: Ed25519PublicKey) -> JwkDict:
    """The JWKS entry for `public_key`, its `kid` being its thumbprint."""
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": jwk_thumbprint(jwk), "alg": "EdDSA", "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key, named by the thumbprint of its public half."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Self:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> Self:
        key = serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, password=None
        )
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        return cls(key)

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def public_jwk(self) -> JwkDict:
        return public_jwk(self.private_key.public_key())

    @property
    def kid(self) -> str:
        return str(self.public_jwk["kid"])

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """A compact JWS of `claims` with this key, typed as an access token."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm=ALGORITHMS[0],
            headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYPE, **(headers or {})},
        )


def usable_keys(jwks: Any, *, algorithms: Iterable[str] = ALGORITHMS) -> dict[str, PyJWK]:
    """The keys of a JWKS document a verifier may use, by key id. Anything else is skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWK set")
    allowed = set(algorithms)
    keys: dict[str, PyJWK] = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except PyJWTError:
            continue
        if key.algorithm_name in allowed:
            keys[entry["kid"]] = key
    return keys


class KeySource:
    """Public keys by key id. `open` and `aclose` run in the app's lifespan."""

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def key_for(self, kid: str) -> PyJWK | None:
        raise NotImplementedError


class StaticKeys(KeySource):
    """A fixed key set: users-svc's own keys, or a test key."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = usable_keys(dict(jwks))

    async def key_for(self, kid: str) -> PyJWK | None:
        return self._keys.get(kid)


class RemoteJwks(KeySource):
    """A JWKS fetched over HTTP with an `httpx.AsyncClient` made in `open`."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        refetch_interval_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._cache_seconds = cache_seconds
        self._refetch_interval = refetch_interval_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def key_for(self, kid: str) -> PyJWK | None:
        known = self._keys.get(kid)
        if known is not None and (not self._is_stale() or self._lock.locked()):
            # Fresh, or stale with a refresh already in flight: a known key need not wait.
            return known
        async with self._lock:
            # Whoever held the lock may have fetched already: decide again, inside it.
            if self._may_fetch(kid):
                await self._fetch()
        return self._keys.get(kid)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._cache_seconds

    def _may_fetch(self, kid: str) -> bool:
        recent = self._attempted_at is not None and (
            self._clock() - self._attempted_at < self._refetch_interval
        )
        if recent:
            return False
        return kid not in self._keys or self._is_stale()

    async def _fetch(self) -> None:
        if self._client is None:
            raise RuntimeError("RemoteJwks.open() was not called: open it in the app's lifespan")
        self._attempted_at = self._clock()
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = usable_keys(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning(
                "JWKS fetch from %s failed (%s); keeping %d known keys",
                self.url,
                type(exc).__name__,
                len(self._keys),
            )
            return
        self._keys = keys
        self._fetched_at = self._attempted_at
