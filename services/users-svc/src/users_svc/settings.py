from functools import lru_cache
from pathlib import Path
from typing import Annotated, cast

from fastapi import Depends, Request
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from common.auth import TokenSettings
from common.session import settings_of

# Where development keeps the key it generates, relative to where the service runs: git-ignored.
DEVELOPMENT_KEY_FILE = Path(".local/signing-key.pem")


class Settings(TokenSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    service_name: str = "users-svc"
    database_url: str = "postgresql+asyncpg://users:users@127.0.0.1:5432/users"

    # argon2id cost. Raising either makes existing hashes be upgraded at the next login.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65_536, ge=1_024)
    # Each hash takes a core and `password_memory_kib` for a while: at most this many at once per
    # process. A request that finds no turn within the wait is answered 503 with Retry-After.
    password_hash_concurrency: int = Field(default=4, ge=1, le=64)
    password_hash_wait_seconds: float = Field(default=1.0, gt=0, le=30)

    # Failed logins are counted per account (the email tried, existing or not) and per client
    # address, in a window that starts at the first failure; past either limit, logins answer 429
    # with Retry-After until the window ends. A successful login clears its account's count.
    login_window_seconds: int = Field(default=900, ge=1, le=86_400)
    login_failures_per_account: int = Field(default=20, ge=1)
    login_failures_per_client: int = Field(default=100, ge=1)

    # Access tokens live 15 minutes at most: nothing revokes them before they expire.
    access_token_seconds: int = Field(default=900, ge=30, le=900)
    # A login starts a session whose refresh token rotates on every use; the session ends this
    # long after the login at the latest, however often it is refreshed.
    refresh_token_seconds: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)
    # Sessions an account may hold at once: a new login ends the oldest beyond it.
    sessions_per_account: int = Field(default=20, ge=1, le=1_000)
    # The Ed25519 private key that signs tokens, as PEM text or a PEM file. Production requires
    # one of them; development generates DEVELOPMENT_KEY_FILE when neither is set.
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    # Keys that no longer sign but stay published, so the tokens they signed keep verifying.
    previous_key_files: tuple[Path, ...] = ()

    def production_problems(self) -> list[str]:
        if self.signing_key is None and self.signing_key_file is None:
            return ["USERS_SIGNING_KEY or USERS_SIGNING_KEY_FILE must be set in production"]
        return []


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def app_settings(request: Request) -> Settings:
    return cast(Settings, settings_of(request))


SettingsDep = Annotated[Settings, Depends(app_settings)]
