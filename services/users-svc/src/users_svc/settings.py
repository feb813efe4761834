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

    # Access tokens live 15 minutes at most: nothing revokes them before they expire.
    access_token_seconds: int = Field(default=900, ge=30, le=900)
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
