"""Write the documents derived from code, committed so that a change to them shows in review:
each service's `openapi.json` (what its app serves at /openapi.json) and `.env.example` (every
setting, its default and its description), and the events' envelope schema.

    uv run python tools/generated_files.py openapi|env-examples|event-schema [--service S] [--check]

With `--check`, each file that differs from what the code gives is shown as a diff, nothing is
written, and the exit status is 1 (the pre-commit hooks and the members' tests run it).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from common.events import event_schema_document
from common.settings import AppBaseSettings
from common.testing.openapi import OPENAPI_FILE, openapi_document
from monorepo import ServiceFacts, Workspace

ROOT = Path(__file__).resolve().parents[1]
EVENT_SCHEMA_FILE = "packages/common/events.schema.json"


def env_example(service: ServiceFacts) -> str:
    settings: type[AppBaseSettings] = importlib.import_module(
        f"{service.package}.settings"
    ).Settings
    prefix = str(settings.model_config.get("env_prefix", ""))
    lines = [
        f"# {service.name}: every setting, with its default. Copy this file to .env (git-ignored)",
        "# in the service's folder and uncomment what you change; the environment wins over .env.",
        "# Generated from the settings classes by `make env-examples`: edit those, not this.",
    ]
    for name, field in settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        variable = alias or f"{prefix}{name}".upper()
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        lines += ["", f"# {described(settings, name)}", f"# {variable}={shown(default)}"]
    return "\n".join(lines) + "\n"


def described(settings: type[AppBaseSettings], name: str) -> str:
    """A field's description: its own, or the one of the class it overrides (a service sets
    `service_name` to its name, and keeps the base's words for it)."""
    for cls in settings.__mro__:
        fields = getattr(cls, "model_fields", {})
        if name in fields and fields[name].description:
            return str(fields[name].description)
    raise ValueError(f"{settings.__module__}.Settings.{name} has no description")


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


def sync_files(documents: dict[Path, str], *, root: Path, check: bool, remedy: str) -> int:
    """Write each document to its path, or with `check` print the diff from what is there; the
    exit status: 1 when `check` found a file out of date (`remedy` says what to run)."""
    stale = []
    for path, content in documents.items():
        label = str(path.relative_to(root))
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == content:
            continue
        stale.append(label)
        if check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    fromfile=f"{label} (committed)",
                    tofile=f"{label} (generated)",
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            print(f"wrote {label}")
    if check and stale:
        print(f"\nout of date: {', '.join(stale)}; run `{remedy}`", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", choices=["openapi", "env-examples", "event-schema"])
    parser.add_argument("--service", action="append", help="only this service (repeatable)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    services = {facts.name: facts for facts in Workspace.load(root).services()}
    unknown = sorted(set(args.service or ()) - set(services))
    if unknown:
        print(f"error: no service named {', '.join(unknown)} in services/", file=sys.stderr)
        return 2
    chosen = [services[name] for name in args.service or services]
    if args.document == "openapi":
        documents = {
            s.directory / OPENAPI_FILE: openapi_document(
                importlib.import_module(f"{s.package}.main").app
            )
            for s in chosen
        }
    elif args.document == "env-examples":
        documents = {s.directory / ".env.example": env_example(s) for s in chosen}
    else:
        documents = {root / EVENT_SCHEMA_FILE: event_schema_document()}
    return sync_files(documents, root=root, check=args.check, remedy=f"make {args.document}")


if __name__ == "__main__":
    sys.exit(main())
