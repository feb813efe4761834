from functools import lru_cache
from typing import Annotated, cast

from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.session import settings_of
from common.settings import AppBaseSettings


class Settings(AppBaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    service_name: str = "users-svc"
    database_url: str = "postgresql+asyncpg://users:users@127.0.0.1:5432/users"

    # argon2id cost. Raising either makes existing hashes be upgraded at the next login.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65_536, ge=1_024)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    return cast(Settings, settings_of(request))


SettingsDep = Annotated[Settings, Depends(app_settings)]
