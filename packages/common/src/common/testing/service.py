"""How a service describes itself to the test plugin."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy.engine import URL

from common.settings import AppBaseSettings, Pooler
from devstack.postgres import test_database_pooler


@dataclass(frozen=True)
class ServiceUnderTest:
    """A service as its tests see it.

    `name` names its test databases, `settings_class` and `domains` are what `create_app` gets,
    and `project_dir` is the folder holding its `pyproject.toml` and `alembic/`.
    """

    name: str
    settings_class: type[AppBaseSettings]
    domains: str
    project_dir: Path
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)

    def settings(self, database_url: URL, **overrides: Any) -> AppBaseSettings:
        values: dict[str, Any] = {
            "ENVIRONMENT": "test",
            "database_url": database_url.render_as_string(hide_password=False),
            # The test run's traffic may go through a pooler (common.testing.plugin).
            "db_pooler": test_database_pooler() or Pooler.NONE,
            "migrations_dir": self.project_dir / "alembic",
            **self.settings_overrides,
            **overrides,
        }
        return self.settings_class(**values)

    def alembic_config(self, database_url: URL | None = None) -> Config:
        config = Config(toml_file=str(self.project_dir / "pyproject.toml"))
        if database_url is not None:
            config.attributes["database_url"] = database_url.render_as_string(hide_password=False)
        return config
