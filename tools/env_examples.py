"""Each service's `.env.example`: every setting, its default and what it does, from the settings
classes themselves (each field's `description`), so the example can never drift from the code.

    uv run python tools/env_examples.py          # write them
    uv run python tools/env_examples.py --check  # exit 1 with a diff when one is out of date
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from common.settings import AppBaseSettings
from generated_files import sync_file
from monorepo import ServiceFacts, Workspace

ROOT = Path(__file__).resolve().parents[1]
FILE_NAME = ".env.example"


def settings_class(facts: ServiceFacts) -> type[AppBaseSettings]:
    module = importlib.import_module(f"{facts.package}.settings")
    found: type[AppBaseSettings] = module.Settings
    return found


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


def default_of(field: FieldInfo) -> Any:
    return None if field.is_required() else field.get_default(call_default_factory=True)


def described(settings: type[AppBaseSettings], name: str) -> str:
    """A field's description: its own, or the one of the class it overrides (a service sets
    `service_name` to its name, and keeps the base's words for it)."""
    for cls in settings.__mro__:
        fields = getattr(cls, "model_fields", {})
        if name in fields and fields[name].description:
            return str(fields[name].description)
    raise ValueError(f"{settings.__module__}.Settings.{name} has no description")


def render(facts: ServiceFacts) -> str:
    settings = settings_class(facts)
    prefix = str(settings.model_config.get("env_prefix", ""))
    lines = [
        f"# {facts.name}: every setting, with its default. Copy this file to .env (git-ignored)",
        "# in the service's folder and uncomment what you change; the environment wins over .env.",
        "# Generated from the settings classes by `make env-examples`: edit those, not this.",
    ]
    for name, field in settings.model_fields.items():
        description = described(settings, name)
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        variable = alias or f"{prefix}{name}".upper()
        lines += ["", f"# {description}", f"# {variable}={shown(default_of(field))}"]
    return "\n".join(lines) + "\n"


def generate(root: Path) -> dict[Path, str]:
    workspace = Workspace.load(root)
    return {facts.directory / FILE_NAME: render(facts) for facts in workspace.services()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stale = 0
    root = args.root.resolve()
    for path, expected in generate(root).items():
        stale += sync_file(path, expected, check=args.check, label=str(path.relative_to(root)))
    if args.check and stale:
        print(f"{stale} .env.example file(s) out of date: run `make env-examples`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
