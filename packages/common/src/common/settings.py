"""Configuration read from the environment, with one profile per deployment environment.

Each service subclasses `AppBaseSettings` once, with its own fields and env prefix, and reads it
through one cached `get_settings()`. `ENVIRONMENT` (development, test, production) picks the
profile: a profile only changes defaults, so anything set explicitly always wins.
"""

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where every service's domains are served: `/api/v1/things`.
API_PREFIX = "/api/v1"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Values that mean "nobody chose a secret here". Production refuses to start with any of them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "password", "postgres", "secret", "dev", "development", "test"}
)

# Defaults that differ between environments. Explicit settings override them.
PROFILES: dict[Environment, dict[str, Any]] = {
    Environment.DEVELOPMENT: {"docs_enabled": True, "log_level": "INFO"},
    Environment.TEST: {"docs_enabled": True, "log_level": "WARNING"},
    Environment.PRODUCTION: {"docs_enabled": False, "log_level": "INFO"},
}


class Pooler(StrEnum):
    """What stands between a service and Postgres (`<PREFIX>_DB_POOLER`)."""

    NONE = "none"  # a direct connection
    PGBOUNCER = "pgbouncer"  # PgBouncer in transaction mode (docs/deployment.md)


class SettingsError(ValueError):
    """The configuration is unsafe or incomplete for the environment it runs in."""


class AppBaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Fields a subclass must set explicitly (not leave at a default) when running in production.
    required_in_production: ClassVar[tuple[str, ...]] = ("database_url",)

    environment: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias="ENVIRONMENT"
    )
    service_name: str
    database_url: str
    api_prefix: str = API_PREFIX
    docs_enabled: bool = True
    log_level: str = "INFO"
    # Alembic's directory, relative to where the service runs (its own folder).
    migrations_dir: Path = Path("alembic")

    # Pool and driver limits: sized so the pool never churns under load, and short enough that a
    # database that is down or saturated answers 503 quickly instead of holding requests.
    # Connections per process: `db_pool_size` for the requests' transactions and
    # `db_read_pool_size` for the read-only sessions (docs/deployment.md: the connection budget).
    db_pool_size: int = Field(default=5, ge=1)
    db_read_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    db_command_timeout_seconds: float = Field(default=15.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)
    # `pgbouncer` when `database_url` goes through PgBouncer in transaction mode: no statement
    # outlives its transaction there, so the driver keeps no prepared statement, and the
    # server-side timeouts above are the pooler's to set (docs/deployment.md: PgBouncer).
    db_pooler: Pooler = Pooler.NONE
    # Larger request bodies are refused with 413 before they are read (README: Reliability).
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Larger request headers (all of them together) are refused with 431.
    max_request_header_bytes: int = Field(default=16 * 1024, ge=1024)

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw = data.get("ENVIRONMENT", data.get("environment", Environment.DEVELOPMENT))
        try:
            environment = Environment(str(raw))
        except ValueError:
            return data  # field validation reports the bad value
        return {**PROFILES[environment], **data}

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems = [
            f"{self._env_name(name)} must be set explicitly in production"
            for name in self.required_in_production
            if name not in self.model_fields_set
        ]
        password = urlsplit(self.database_url).password or ""
        if password.lower() in PLACEHOLDER_SECRETS:
            problems.append(
                f"{self._env_name('database_url')} uses an empty or placeholder password"
            )
        problems.extend(self.production_problems())
        if problems:
            raise SettingsError("unsafe production settings: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Extra production checks of a subclass: one sentence per problem found."""
        return []

    @classmethod
    def _env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION
