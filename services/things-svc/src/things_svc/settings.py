from functools import lru_cache
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from common.auth import JwksSettings
from common.events import EventSettings
from common.events.revocations import RevocationSettings


class Settings(RevocationSettings, JwksSettings, EventSettings):
    """Tokens are checked against THINGS_TOKEN_ISSUER, THINGS_TOKEN_AUDIENCE, THINGS_JWKS_URL;
    users-svc's account events come from THINGS_NATS_URL; users-svc is called at
    THINGS_USERS_URL with things-svc's own client credentials."""

    required_in_production: ClassVar[tuple[str, ...]] = ("users_url", "client_secret")

    model_config = SettingsConfigDict(env_prefix="THINGS_")

    service_name: str = "things-svc"
    # Development: the `make up` stack's database, as its own role (production sets its own).
    database_url: str = "postgresql+asyncpg://things:things@127.0.0.1:5433/things"

    users_url: str = Field(
        default="http://127.0.0.1:8001",
        description="users-svc's API: its token endpoint and the account lookup sharing calls",
    )
    client_id: str = Field(default="things-svc", description="things-svc's client id at users-svc")
    client_secret: SecretStr | None = Field(
        default=None,
        description="things-svc's client secret at users-svc (its SHA-256 is in "
        "USERS_SERVICE_CLIENTS); production requires one",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
