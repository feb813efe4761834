"""How a service describes itself to the test plugin."""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy.engine import URL
from starlette.types import Lifespan

from common.app import create_app
from common.db import Database
from common.settings import AppBaseSettings, Pooler
from common.testing.tokens import jwks_url_for_tests
from devstack.postgres import test_database_pooler

# `build_app(settings)`: the service's app, as its `main.py` builds it. Typed loosely: each
# service's builder takes its own settings class.
AppBuilder = Callable[..., FastAPI]


@dataclass(frozen=True)
class ServiceUnderTest:
    """A service as its tests see it.

    `name` names its test databases, `settings_class` and `domains` are what its app is made of,
    and `project_dir` is the folder holding its `pyproject.toml` and `alembic/`. `build_app` is how
    the service builds its app (its `main.py`'s builder); without one, the app is `create_app` on
    `domains`. `get_settings` is the service's own (`settings.py`): the app under test answers it
    with the test's settings (`app.dependency_overrides`).
    """

    name: str
    settings_class: type[AppBaseSettings]
    domains: str
    project_dir: Path
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)
    build_app: AppBuilder | None = None
    get_settings: Callable[[], AppBaseSettings] | None = None

    def settings(self, database_url: URL, **overrides: Any) -> AppBaseSettings:
        fields = self.settings_class.model_fields
        values: dict[str, Any] = {
            "ENVIRONMENT": "test",
            "database_url": database_url.render_as_string(hide_password=False),
            # The test run's traffic may go through a pooler (common.testing.plugin).
            "db_pooler": test_database_pooler() or Pooler.NONE,
            "migrations_dir": self.project_dir / "alembic",
            # No broker unless a test gives one (the `nats_url` fixture): the outbox keeps events.
            **({"nats_url": None} if "nats_url" in fields else {}),
            # The test key's public half, served as users-svc serves its JWKS.
            **({"jwks_url": jwks_url_for_tests()} if "jwks_url" in fields else {}),
            **self.settings_overrides,
            **overrides,
        }
        return self.settings_class(**values)

    def app(self, settings: AppBaseSettings, *, database: Database | None = None) -> FastAPI:
        """The service's app on `settings`; its requests' sessions from `database` when given
        (the tests' engines, joined to a test's transaction), else from its own engines."""
        if self.build_app is None:
            app = create_app(settings, domains=self.domains)
        else:
            app = self.build_app(settings)
        if self.get_settings is not None:
            app.dependency_overrides[self.get_settings] = lambda: settings
        if database is not None:
            app.router.lifespan_context = _on_database(app.router.lifespan_context, database)
        return app

    def alembic_config(self, database_url: URL | None = None) -> Config:
        config = Config(toml_file=str(self.project_dir / "pyproject.toml"))
        if database_url is not None:
            config.attributes["database_url"] = database_url.render_as_string(hide_password=False)
        return config


def _on_database(lifespan: Lifespan[FastAPI], database: Database) -> Lifespan[FastAPI]:
    """The app's lifespan with `database` in the request state in place of its own: requests'
    sessions come from it, while the lifespan's own work (events, revocations, readiness) keeps
    the engines it made."""

    @asynccontextmanager
    async def on_database(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with lifespan(app) as state:
            yield {**(state or {}), "database": database}

    return on_database
