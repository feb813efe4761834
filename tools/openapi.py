"""Each service's OpenAPI document, committed beside it as `services/<svc>/openapi.json`.

    uv run python tools/openapi.py                      # (re)write every service's document
    uv run python tools/openapi.py --service orders-svc # one service's
    uv run python tools/openapi.py --check              # exit 1 when one differs from its code

The document is the one the service serves at /openapi.json, from the app its `main.py` builds:
committed, a change to the contract (a field, a status, a route) shows in review. Each service's
tests fail when it is out of date, and so does the pre-commit hook (this script, `--check`).
"""

import argparse
import importlib
import sys
from pathlib import Path

from common.testing.openapi import OPENAPI_FILE, openapi_document
from generated_files import sync_file
from monorepo import Workspace

ROOT = Path(__file__).resolve().parents[1]


def services(root: Path) -> dict[str, Path]:
    """Every service of the workspace (a member in services/), by name: its folder."""
    workspace = Workspace.load(root)
    return {
        name: root / member.path
        for name, member in sorted(workspace.members.items())
        if member.path.startswith("services/")
    }


def document_of(root: Path, service: str) -> str:
    """The OpenAPI document of `service`'s app, as its `main.py` builds it."""
    (package,) = Workspace.load(root).import_names(service)
    return openapi_document(importlib.import_module(f"{package}.main").app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--service", action="append", help="only this service (repeatable)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    found = services(root)
    unknown = sorted(set(args.service or ()) - set(found))
    if unknown:
        print(f"error: no service named {', '.join(unknown)} in services/", file=sys.stderr)
        return 2
    stale = []
    for name in args.service or found:
        path = found[name] / OPENAPI_FILE
        document = document_of(root, name)
        if sync_file(path, document, check=args.check, label=str(path.relative_to(root))):
            stale.append(name)
    if args.check and stale:
        print(f"\nout of date: {', '.join(stale)}; run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
