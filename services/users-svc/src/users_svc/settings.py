from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from common.auth import TokenSettings
from common.events import EventSettings

# Where development keeps the key it generates, relative to where the service runs: git-ignored.
DEVELOPMENT_KEY_FILE = Path(".local/signing-key.pem")


SecretDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RegisteredClient(BaseModel):
    """A service that may get access tokens with the client credentials grant."""

    model_config = ConfigDict(extra="forbid")

    # The SHA-256 (hex) of each secret it may authenticate with: two while one replaces another.
    secret_sha256: tuple[SecretDigest, ...] = Field(min_length=1)
    scopes: frozenset[str] = frozenset()


class Settings(TokenSettings, EventSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    service_name: str = "users-svc"
    # Development: the `make up` stack's database, as its own role (production sets its own).
    database_url: str = "postgresql+asyncpg://users:users@127.0.0.1:5433/users"

    password_time_cost: int = Field(
        default=3,
        ge=1,
        description="argon2id passes; raising it upgrades each hash at its account's next login",
    )
    password_memory_kib: int = Field(
        default=65_536, ge=1_024, description="argon2id memory per hash, in KiB"
    )
    password_hash_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Hashes at once per process (each takes a core and its memory for a while)",
    )
    password_hash_wait_seconds: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Longest wait for a turn to hash, then 503 with Retry-After",
    )
    login_window_seconds: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description="Failed logins are counted in a window that starts at the first failure",
    )
    login_failures_per_account: int = Field(
        default=20, ge=1, description="Failures per email in a window before 429 (known or not)"
    )
    login_failures_per_client: int = Field(
        default=100, ge=1, description="Failures per client address in a window before 429"
    )
    password_failures_before_lock: int = Field(
        default=100,
        ge=1,
        description="Wrong passwords in a row, across windows, that lock an account until an "
        "administrator unlocks it (NIST 800-63B allows at most 100)",
    )
    sign_up_window_seconds: int = Field(
        default=3_600,
        ge=1,
        le=86_400,
        description="Sign-ups are counted per client in a window that starts at the first one",
    )
    sign_ups_per_client: int = Field(
        default=20, ge=1, description="Sign-ups per client address in a window before 429"
    )
    counters_prune_seconds: float = Field(
        default=60,
        gt=0,
        le=3_600,
        description="How often the login-failure and sign-up counters whose window has ended "
        "are deleted",
    )
    access_token_seconds: int = Field(
        default=900,
        ge=30,
        le=900,
        description="Access tokens' lifetime: only a deactivation or an erasure cuts it short",
    )
    refresh_token_seconds: int = Field(
        default=30 * 86_400,
        ge=60,
        le=365 * 86_400,
        description="A session ends this long after its login, however often it is refreshed",
    )
    sessions_per_account: int = Field(
        default=20, ge=1, le=1_000, description="A new login ends the oldest session beyond it"
    )
    service_clients: dict[str, RegisteredClient] = Field(
        default_factory=dict,
        description="Services that may get tokens (client credentials grant), as JSON by client "
        'id: {"things-svc": {"secret_sha256": ["<hex>"], "scopes": ["users:lookup"]}}',
    )
    service_token_seconds: int = Field(
        default=300, ge=30, le=900, description="Lifetime of a service's access token"
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="The Ed25519 private key that signs tokens, as PEM text (or the file below); "
        "production requires one, development generates .local/signing-key.pem",
    )
    signing_key_file: Path | None = Field(default=None, description="The signing key as a PEM file")
    previous_key_files: tuple[Path, ...] = Field(
        default=(),
        description="Keys that no longer sign but stay published, as a JSON list of PEM files",
    )

    def production_problems(self) -> list[str]:
        if self.signing_key is None and self.signing_key_file is None:
            return ["USERS_SIGNING_KEY or USERS_SIGNING_KEY_FILE must be set in production"]
        return []


@lru_cache
def get_settings() -> Settings:
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]
