import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from common.auth import SigningKey
from users_svc.settings import Settings
from users_svc.signing import KeyRing

PRODUCTION = {
    "ENVIRONMENT": "production",
    "USERS_DATABASE_URL": "postgresql+asyncpg://users:s3cret-Pa55@db/users",
    "USERS_SIGNING_KEY_FILE": "/run/secrets/signing-key.pem",
    "USERS_TOKEN_ISSUER": "https://users.example.com",
    "USERS_TOKEN_AUDIENCE": "https://api.example.com",
    "USERS_NATS_URL": "nats://nats:4222",
    "USERS_NATS_USER": "users-svc",
    "USERS_NATS_PASSWORD": "n4ts-Pa55-from-a-Secret",
}


async def test_development_generates_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "signing-key.pem"
    first = KeyRing(pem=None, pem_file=None, generate_at=path)
    await first.load()
    again = KeyRing(pem=None, pem_file=None, generate_at=path)
    await again.load()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.signer.kid == again.signer.kid
    assert first.jwks == {"keys": [first.signer.public_jwk]}


async def test_a_previous_public_key_is_published_beside_the_signing_key(tmp_path: Path) -> None:
    signing, previous = SigningKey.generate(), SigningKey.generate()
    public_pem = previous.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "previous.pem").write_bytes(public_pem)
    ring = KeyRing(
        pem=signing.private_pem(), pem_file=None, previous_files=[tmp_path / "previous.pem"]
    )
    await ring.load()

    assert [key["kid"] for key in ring.jwks["keys"]] == [signing.kid, previous.kid]
    assert await ring.key_for(previous.kid) is not None


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with every setting production requires; each test takes one away."""
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_production_refuses_to_start_without_a_signing_key(production: pytest.MonkeyPatch) -> None:
    production.delenv("USERS_SIGNING_KEY_FILE")

    with pytest.raises(ValidationError, match="USERS_SIGNING_KEY or USERS_SIGNING_KEY_FILE"):
        Settings(_env_file=None)

    production.setenv("USERS_SIGNING_KEY_FILE", "/run/secrets/signing-key.pem")
    assert KeyRing.from_settings(Settings(_env_file=None)) is not None


def test_production_requires_the_events_broker(production: pytest.MonkeyPatch) -> None:
    production.delenv("USERS_NATS_URL")

    with pytest.raises(ValidationError, match="USERS_NATS_URL must be set explicitly"):
        Settings(_env_file=None)


def test_production_requires_the_issuer_and_audience(production: pytest.MonkeyPatch) -> None:
    production.delenv("USERS_TOKEN_ISSUER")
    production.delenv("USERS_TOKEN_AUDIENCE")

    with pytest.raises(ValidationError, match="USERS_TOKEN_ISSUER must be set explicitly"):
        Settings(_env_file=None)
