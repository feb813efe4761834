"""Where a verifier finds public keys: a fixed set, or users-svc's JWKS fetched over HTTP.

The remote set is cached for a lifetime and refetched when a token names a key id it does not
know, at most once per `refetch_interval`: a flood of tokens with made-up key ids costs one fetch
per interval, and concurrent requests share the fetch in flight. When users-svc cannot be reached,
the keys already known keep verifying for `max_stale` after their last successful fetch; past it
(or before any fetch succeeded), a token cannot be verified and the request is answered 503 with
`Retry-After` (`KeysUnavailableError`), never 401: the client's token may well be valid.
"""

import asyncio
import base64
import hashlib
import http.client
import json
import logging
import math
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK, PyJWTError
from jwt.algorithms import OKPAlgorithm

from common.auth.settings import JwksSettings
from common.errors import RetryLaterError

logger = logging.getLogger(__name__)

# The only signature algorithm tokens may use. Never taken from a token or a key set.
ALGORITHMS: tuple[str, ...] = ("EdDSA",)

# RFC 9068's `typ` header of a JWT access token.
ACCESS_TOKEN_TYPE = "at+jwt"

JwkDict = dict[str, Any]

# A JWK set of a few keys is a few KiB; a misconfigured URL must not fill the memory.
MAX_JWKS_BYTES = 1 << 20


class KeysUnavailableError(RetryLaterError):
    """users-svc's public keys could not be fetched for longer than they may be trusted."""

    status_code = 503
    detail = (
        "Access tokens cannot be verified for now: users-svc's public keys (JWKS) are "
        "unreachable. Retry later."
    )


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
    """A JWKS fetched over HTTP(S) by the standard library's client, in a worker thread.

    A fetch is rare (the first token, then once per cache lifetime or unknown key id), so a thread
    costs nothing per request, where an async client (httpx: its modules, connection pool and CA
    bundle) would add about 4 MiB to every process. PyJWT's own `PyJWKClient` fetches the same way.
    Redirects are refused: the keys come from the configured URL or not at all.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        refetch_interval_seconds: float,
        timeout_seconds: float,
        max_stale_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"the JWKS URL must be http:// or https://, not {url!r}")
        self.url = url
        self._cache_seconds = cache_seconds
        self._max_stale = max_stale_seconds
        self._refetch_interval = refetch_interval_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: JwksSettings) -> Self:
        """users-svc's key set where `settings` name it; nothing is fetched before a token."""
        return cls(
            settings.jwks_url,
            cache_seconds=settings.jwks_cache_seconds,
            refetch_interval_seconds=settings.jwks_refetch_interval_seconds,
            timeout_seconds=settings.jwks_timeout_seconds,
            max_stale_seconds=settings.jwks_max_stale_seconds,
        )

    async def key_for(self, kid: str) -> PyJWK | None:
        """The key named `kid`, or None when users-svc does not publish it;
        `KeysUnavailableError` when the keys cannot be fetched and those known are too old."""
        known = self._keys.get(kid)
        if known is not None and (
            not self._is_stale() or (self._lock.locked() and self._trusted())
        ):
            # Fresh, or stale with a refresh already in flight: a known key need not wait.
            return known
        async with self._lock:
            # Whoever held the lock may have fetched already: decide again, inside it.
            if self._may_fetch(kid):
                await self._fetch()
        if not self._trusted():
            raise KeysUnavailableError(retry_after_seconds=math.ceil(self._refetch_interval))
        return self._keys.get(kid)

    def _age(self) -> float:
        """Seconds since the last successful fetch (infinite before the first)."""
        return math.inf if self._fetched_at is None else self._clock() - self._fetched_at

    def _is_stale(self) -> bool:
        return self._age() >= self._cache_seconds

    def _trusted(self) -> bool:
        return self._age() < self._max_stale

    def _may_fetch(self, kid: str) -> bool:
        recent = self._attempted_at is not None and (
            self._clock() - self._attempted_at < self._refetch_interval
        )
        if recent:
            return False
        return kid not in self._keys or self._is_stale()

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            body = await asyncio.to_thread(_download, self.url, timeout_seconds=self._timeout)
            keys = usable_keys(json.loads(body))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            logger.warning(
                "JWKS fetch from %s failed (%s); %d known keys, fetched %.0f s ago, trusted "
                "for %.0f s after their fetch",
                self.url,
                type(exc).__name__,
                len(self._keys),
                self._age(),
                self._max_stale,
            )
            return
        self._keys = keys
        self._fetched_at = self._attempted_at


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


def _download(url: str, *, timeout_seconds: float) -> bytes:
    """The body of a 2xx answer to GET `url`; anything else raises (OSError, HTTPException)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # Made per fetch (a few an hour), so no client outlives a call or exists at import time.
    opener = urllib.request.build_opener(_RefuseRedirects)
    with opener.open(request, timeout=timeout_seconds) as response:
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    return body
