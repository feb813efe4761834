"""Configuration read from the environment, with one profile per deployment environment.

Each service subclasses `AppBaseSettings` once, with its own fields and env prefix, and reads it
through one cached `get_settings()`. `ENVIRONMENT` (development, test, production) picks the
profile: a profile only changes defaults, so anything set explicitly always wins. Every field
says what it is for (`description`): that text is what each service's `.env.example` shows.
"""

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, IPvAnyNetwork, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where every service's domains are served: `/api/v1/things`.
API_PREFIX = "/api/v1"
# Where a service serves its Prometheus metrics in production (a port of its own, never the
# API's: docs/observability.md).
METRICS_PORT = 9000
# prometheus_client's multiprocess mode: where each worker process writes its metrics.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The driver every service talks to Postgres with; the schemes a managed Postgres hands out
# (`postgres://`, `postgresql://`) are read as this one.
DATABASE_SCHEME = "postgresql+asyncpg"
PLAIN_DATABASE_SCHEMES = ("postgres", "postgresql")


LogFormat = Literal["text", "json"]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Values that mean "nobody chose a secret here". Production refuses to start with any of them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "password", "postgres", "secret", "dev", "development", "test"}
)

# Defaults that differ between environments. Explicit settings override them.
# Tests log at INFO so that the test plugin's scan for secrets sees what production would write.
PROFILES: dict[Environment, dict[str, Any]] = {
    Environment.DEVELOPMENT: {"docs_enabled": True, "log_level": "INFO", "log_format": "text"},
    Environment.TEST: {"docs_enabled": True, "log_level": "INFO", "log_format": "text"},
    Environment.PRODUCTION: {
        "docs_enabled": False,
        "log_level": "INFO",
        "log_format": "json",
        "metrics_port": METRICS_PORT,
    },
}


class Pooler(StrEnum):
    """What stands between a service and Postgres (`<PREFIX>_DB_POOLER`)."""

    NONE = "none"  # a direct connection
    PGBOUNCER = "pgbouncer"  # PgBouncer in transaction mode (docs/deployment.md)


class SettingsError(ValueError):
    """The configuration is unsafe or incomplete for the environment it runs in."""


class StartupError(ValueError):
    """The app cannot be built as asked: something its routes need is missing (`create_app`)."""


class AppBaseSettings(BaseSettings):
    # Settings hold passwords: an error names the setting, never repeats its value.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # Fields that must be set explicitly (not left at a default) when running in production. A
    # subclass lists only its own: the check reads every class's list (`required_fields`).
    required_in_production: ClassVar[tuple[str, ...]] = ("database_url",)

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        validation_alias="ENVIRONMENT",
        description="development, test or production (no prefix): picks the defaults below",
    )
    service_name: str = Field(description="The service's name, in logs and Postgres sessions")
    database_url: str = Field(
        description="URL of the service's own database: postgresql+asyncpg://, or the "
        "postgresql:// or postgres:// a managed Postgres gives (read as postgresql+asyncpg://)"
    )
    read_database_url: str | None = Field(
        default=None,
        description="URL of a read replica of that database, for the read-only sessions "
        "(ReadSessionDep); unset: they read from the database above",
    )
    api_prefix: str = Field(default=API_PREFIX, description="Where the domains' routes are served")
    docs_enabled: bool = Field(
        default=True, description="Serve /docs and /openapi.json (off in production by default)"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(
        default="text",
        description="text (a line for a person) or json (one JSON object per line; production)",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=f"Port of the Prometheus metrics endpoint, apart from the API's "
        f"(production: {METRICS_PORT}; 0: not served)",
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # a scraper in another container must reach it
        description="Address the metrics endpoint listens on",
    )
    debug: bool = Field(
        default=False,
        description="Log every SQL statement and debug messages; refused in production",
    )
    migrations_dir: Path = Field(
        default=Path("alembic"),
        description="Alembic's directory, relative to where the service runs (its own folder)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (comma-separated, or a JSON list); "
        "empty: no CORS headers at all",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let browsers send cookies and Authorization to the allowed origins "
        "(refused together with the origin *)",
    )

    # Pool and driver limits: sized so the pool never churns under load, and short enough that a
    # database that is down or saturated answers 503 quickly instead of holding requests.
    db_pool_size: int = Field(
        default=5, ge=1, description="Connections for the requests' transactions, per process"
    )
    db_read_pool_size: int = Field(
        default=5, ge=1, description="Connections for the read-only sessions, per process"
    )
    db_max_overflow: int = Field(
        default=0, ge=0, description="Connections a pool may open past its size under load"
    )
    db_pool_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Longest wait for a free connection before a 503"
    )
    db_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Longest wait to open a connection"
    )
    db_command_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Client-side bound on one query (a silent network)"
    )
    db_statement_timeout_ms: int = Field(
        default=10_000, ge=0, description="Postgres cancels a statement running longer (0: never)"
    )
    db_idle_in_transaction_timeout_ms: int = Field(
        default=30_000, ge=0, description="Postgres ends a session idle inside a transaction"
    )
    db_pooler: Pooler = Field(
        default=Pooler.NONE,
        description="pgbouncer when the URL goes through PgBouncer in transaction mode (then the "
        "pooler sets the two timeouts above)",
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        validation_alias="TRUSTED_PROXIES",
        description="Networks of the proxies in front of the service (no prefix; comma-separated "
        "or a JSON list: 10.244.0.0/16,127.0.0.1): only a peer inside them may name the client "
        "with X-Forwarded-For; empty: the client is the peer itself",
    )
    max_request_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Larger request bodies are refused with 413"
    )
    max_request_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Larger request headers are refused with 431"
    )

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

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _asyncpg_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        if url is None:
            return None
        scheme, separator, rest = url.partition("://")
        if separator and scheme in PLAIN_DATABASE_SCHEMES:
            return f"{DATABASE_SCHEME}://{rest}"
        if separator and scheme == DATABASE_SCHEME:
            return url
        given = f"{scheme}://" if separator else "a value without a scheme"
        raise SettingsError(
            f"{cls._env_name(str(info.field_name))} is {given}: give a Postgres URL, "
            f"{DATABASE_SCHEME}://, postgresql:// or postgres://"
        )

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_settings(self) -> Self:
        problems = self._problems()
        if self.is_production:
            problems += self._production_problems()
        if problems:
            raise SettingsError("unsafe settings: " + "; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        problems = []
        if "*" in self.cors_origins and self.cors_allow_credentials:
            problems.append(
                f"{self._env_name('cors_origins')} may not be * while "
                f"{self._env_name('cors_allow_credentials')} is true: browsers refuse credentials "
                "with a wildcard origin; list the origins"
            )
        if "database_url" not in self.model_fields_set and self._plain_database_url_set():
            problems.append(
                f"DATABASE_URL is set, but {self.service_name} reads its database from "
                f"{self._env_name('database_url')}: rename the variable"
            )
        return problems

    def _production_problems(self) -> list[str]:
        problems = [
            f"{self._env_name(name)} must be set explicitly in production"
            for name in self.required_fields()
            if name not in self.model_fields_set
        ]
        for name in ("database_url", "read_database_url"):
            url = urlsplit(getattr(self, name) or "")
            password = url.password or ""
            if url.netloc and (password.lower() in PLACEHOLDER_SECRETS or password == url.username):
                problems.append(f"{self._env_name(name)} uses an empty or placeholder password")
        if self.debug:
            problems.append(f"{self._env_name('debug')} must be off in production")
        problems.extend(self.production_problems())
        return problems

    def _plain_database_url_set(self) -> bool:
        """Whether a `DATABASE_URL` without this service's prefix is in the environment or in
        the service's `.env`: a name the service would otherwise ignore without a word."""
        if "DATABASE_URL" in os.environ:
            return True
        env_files = self.model_config.get("env_file")
        files = [env_files] if isinstance(env_files, str | Path) else list(env_files or [])
        return any("DATABASE_URL" in dotenv_values(path) for path in files if Path(path).is_file())

    def production_problems(self) -> list[str]:
        """Extra production checks of a subclass: one sentence per problem found."""
        return []

    @classmethod
    def required_fields(cls) -> list[str]:
        """The fields production requires, from this class and every class it inherits from."""
        return list(
            dict.fromkeys(
                name
                for klass in reversed(cls.__mro__)
                for name in vars(klass).get("required_in_production", ())
            )
        )

    @classmethod
    def _env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def effective_log_level(self) -> str:
        return "DEBUG" if self.debug else self.log_level
