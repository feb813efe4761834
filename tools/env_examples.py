"""Each service's `.env.example`: every setting, its default and what it does, from the settings
classes themselves (each field's `description`), so the example can never drift from the code.

    uv run python tools/env_examples.py          # write them
    uv run python tools/env_examples.py --check  # exit 1 with a diff when one is out of date
"""

from __future__ import annotations

import importlib
import json
import sys
from enum import Enum
from typing import Any

from common.settings import AppBaseSettings
from generated_files import generator_parser, sync_files
from monorepo import ServiceFacts, Workspace


def shown(value: Any) -> str:
    """A default as it would be written in the environment."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value) if value else ""
    return str(value)


def described(settings: type[AppBaseSettings], name: str) -> str:
    """A field's description: its own, or the one of the class it overrides (a service sets
    `service_name` to its name, and keeps the base's words for it)."""
    for cls in settings.__mro__:
        fields = getattr(cls, "model_fields", {})
        if name in fields and fields[name].description:
            return str(fields[name].description)
    raise ValueError(f"{settings.__module__}.Settings.{name} has no description")


def env_example(facts: ServiceFacts) -> str:
    settings: type[AppBaseSettings] = importlib.import_module(f"{facts.package}.settings").Settings
    prefix = str(settings.model_config.get("env_prefix", ""))
    lines = [
        f"# {facts.name}: every setting, with its default. Copy this file to .env (git-ignored)",
        "# in the service's folder and uncomment what you change; the environment wins over .env.",
        "# Generated from the settings classes by `make env-examples`: edit those, not this.",
    ]
    for name, field in settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        variable = alias or f"{prefix}{name}".upper()
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        lines += ["", f"# {described(settings, name)}", f"# {variable}={shown(default)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = generator_parser(__doc__).parse_args(argv)
    root = args.root.resolve()
    services = Workspace.load(root).services()
    examples = {facts.directory / ".env.example": env_example(facts) for facts in services}
    return sync_files(examples, root=root, check=args.check, remedy="make env-examples")


if __name__ == "__main__":
    sys.exit(main())
