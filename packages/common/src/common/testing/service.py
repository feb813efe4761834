"""How a service describes itself to the test plugin."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.config import Config
from fastapi import FastAPI
from opentelemetry.trace import TracerProvider
from sqlalchemy.engine import URL

from common.app import create_app
from common.db import Database
from common.settings import AppBaseSettings, Pooler
from devstack.postgres import test_database_pooler

# `build_app(settings, database=...)`: the service's app, as its `main.py` builds it, on the
# engines the tests give it. Typed loosely: each service's builder takes its own settings class.
AppBuilder = Callable[..., FastAPI]


@dataclass(frozen=True)
class ServiceUnderTest:
    """A service as its tests see it.

    `name` names its test databases, `settings_class` and `domains` are what its app is made of,
    and `project_dir` is the folder holding its `pyproject.toml` and `alembic/`. `build_app` is how
    the service builds its app (its `main.py`'s builder, given the key of the tests' tokens where
    the service would fetch users-svc's); without one, the app is `create_app` on `domains` and
    verifies no tokens.
    """

    name: str
    settings_class: type[AppBaseSettings]
    domains: str
    project_dir: Path
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)
    build_app: AppBuilder | None = None

    def settings(self, database_url: URL, **overrides: Any) -> AppBaseSettings:
        values: dict[str, Any] = {
            "ENVIRONMENT": "test",
            "database_url": database_url.render_as_string(hide_password=False),
            # The test run's traffic may go through a pooler (common.testing.plugin).
            "db_pooler": test_database_pooler() or Pooler.NONE,
            "migrations_dir": self.project_dir / "alembic",
            # No broker unless a test gives one (the `nats_url` fixture): the outbox keeps events.
            **({"nats_url": None} if "nats_url" in self.settings_class.model_fields else {}),
            **self.settings_overrides,
            **overrides,
        }
        return self.settings_class(**values)

    def app(
        self,
        settings: AppBaseSettings,
        *,
        database: Database | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> FastAPI:
        """The service's app on `settings`; on `database` when given (else its own engines),
        traced by `tracer_provider` when given."""
        if self.build_app is None:
            return create_app(
                settings, domains=self.domains, database=database, tracer_provider=tracer_provider
            )
        return self.build_app(settings, database=database, tracer_provider=tracer_provider)

    def alembic_config(self, database_url: URL | None = None) -> Config:
        config = Config(toml_file=str(self.project_dir / "pyproject.toml"))
        if database_url is not None:
            config.attributes["database_url"] = database_url.render_as_string(hide_password=False)
        return config
