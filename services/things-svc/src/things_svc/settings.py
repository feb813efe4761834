from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from common.auth import JwksSettings
from common.events import EventSettings
from common.events.revocations import RevocationSettings


class Settings(RevocationSettings, JwksSettings, EventSettings):
    """Tokens are checked against THINGS_TOKEN_ISSUER, THINGS_TOKEN_AUDIENCE, THINGS_JWKS_URL;
    users-svc's account events come from THINGS_NATS_URL."""

    model_config = SettingsConfigDict(env_prefix="THINGS_")

    service_name: str = "things-svc"
    # Development: the `make up` stack's database, as its own role (production sets its own).
    database_url: str = "postgresql+asyncpg://things:things@127.0.0.1:5433/things"


@lru_cache
def get_settings() -> Settings:
    return Settings()
