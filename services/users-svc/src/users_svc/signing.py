"""users-svc's signing keys: one signs new tokens, every one listed is published in the JWKS.

Rotation: configure the new key as the signing key and list the old one in the previous keys;
remove it once the last token it signed has expired (15 minutes) and every verifier's JWKS cache
has moved on. Development makes a key on first start and keeps it in a git-ignored file.
"""

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from jwt import PyJWK

from common.auth import KeySource, SigningKey, StaticKeys, public_jwk
from users_svc.settings import DEVELOPMENT_KEY_FILE, Settings

logger = logging.getLogger(__name__)


class KeyRing(KeySource):
    """The signing key and the published keys, loaded in users-svc's lifespan (`load`): nothing
    is read or written before. As a key source, it gives the verifier its public keys."""

    def __init__(
        self,
        *,
        pem: str | None,
        pem_file: Path | None,
        previous_files: Sequence[Path] = (),
        generate_at: Path | None = None,
    ) -> None:
        self._pem = pem
        self._pem_file = pem_file
        self._previous_files = tuple(previous_files)
        self._generate_at = generate_at
        self._signer: SigningKey | None = None
        self._public = StaticKeys({"keys": []})
        self._jwks: dict[str, Any] = {"keys": []}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            pem=settings.signing_key.get_secret_value() if settings.signing_key else None,
            pem_file=settings.signing_key_file,
            previous_files=settings.previous_key_files,
            generate_at=None if settings.is_production else DEVELOPMENT_KEY_FILE,
        )

    async def load(self) -> None:
        signer = self._load_signer()
        jwks = [signer.public_jwk]
        for path in self._previous_files:
            jwk = public_jwk(_public_key(path.read_bytes()))
            if jwk["kid"] not in {known["kid"] for known in jwks}:
                jwks.append(jwk)
        self._signer = signer
        self._jwks = {"keys": jwks}
        self._public = StaticKeys(self._jwks)
        logger.info("signing with key %s; publishing %d keys", signer.kid, len(jwks))

    @property
    def signer(self) -> SigningKey:
        if self._signer is None:
            raise RuntimeError("KeyRing.load() was not called: load it in the app's lifespan")
        return self._signer

    @property
    def jwks(self) -> dict[str, Any]:
        return self._jwks

    async def key_for(self, kid: str) -> PyJWK | None:
        return await self._public.key_for(kid)

    def _load_signer(self) -> SigningKey:
        if self._pem is not None:
            return SigningKey.from_pem(self._pem)
        if self._pem_file is not None:
            return SigningKey.from_pem(self._pem_file.read_bytes())
        if self._generate_at is None:
            raise RuntimeError("no signing key configured")
        if self._generate_at.exists():
            return SigningKey.from_pem(self._generate_at.read_bytes())
        return _generate(self._generate_at)


async def key_ring(request: Request) -> KeyRing:
    """The app's key ring, loaded by its lifespan (`users_svc.main`)."""
    ring: KeyRing = request.state.key_ring
    return ring


KeyRingDep = Annotated[KeyRing, Depends(key_ring)]


def _generate(path: Path) -> SigningKey:
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Readable by its owner only, and never overwriting a key another process just wrote.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key.private_pem())
    logger.warning("no signing key configured: generated a development key in %s", path)
    return key


def _public_key(pem: bytes) -> Ed25519PublicKey:
    """The public half of a PEM that holds either half of an Ed25519 key."""
    if b"PRIVATE KEY" in pem:
        private = serialization.load_pem_private_key(pem, password=None)
        if isinstance(private, Ed25519PrivateKey):
            return private.public_key()
    else:
        public = serialization.load_pem_public_key(pem)
        if isinstance(public, Ed25519PublicKey):
            return public
    raise ValueError("a previous key must be an Ed25519 key in PEM")
