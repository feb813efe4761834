"""`make check-member MEMBER=things-svc`: one workspace member checked alone, as its CI job does.

Only what the member declares is installed (`uv sync --locked --package ...`, with its extras and
its dev group), so an import that works only in the shared development environment fails here.
Then ruff and mypy, at the versions locked in uv.lock, on the member's folder; for a service, its
migrations applied and compared with its models (`alembic upgrade head`, `alembic check`, on the
database its `<PREFIX>_DATABASE_URL` names); and the member's tests.

Standard library only: CI runs it before anything is installed.

    python3 tools/member_check.py things-svc [--print]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from monorepo import Workspace, locked_version

ROOT = Path(__file__).resolve().parents[1]


def commands(workspace: Workspace, name: str) -> list[tuple[str, list[str]]]:
    """(folder relative to the root, command) for each step of the member's check."""
    member = workspace.member(name)
    uv = os.environ.get("UV") or "uv"
    package = ["--package", member.name, *(["--all-extras"] if member.extras else [])]
    ruff = f"ruff@{locked_version(workspace.root, 'ruff')}"
    mypy = f"mypy=={locked_version(workspace.root, 'mypy')}"
    steps = [
        (".", [uv, "sync", "--locked", *package]),
        (".", [uv, "tool", "run", ruff, "check", member.path]),
        (".", [uv, "tool", "run", ruff, "format", "--check", member.path]),
        (".", [uv, "run", "--locked", *package, "--with", mypy, "mypy", member.path]),
    ]
    if member.has_migrations:
        steps += [
            (member.path, [uv, "run", "--no-sync", "alembic", "upgrade", "head"]),
            (member.path, [uv, "run", "--no-sync", "alembic", "check"]),
        ]
    steps.append((".", [uv, "run", "--no-sync", "pytest", member.path]))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("member", help="the member's name: common, things-svc, ...")
    parser.add_argument("--print", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workspace = Workspace.load(args.root)
    if args.member not in workspace.members:
        print(f"no member {args.member!r}: {', '.join(workspace.members)}", file=sys.stderr)
        return 2
    for folder, command in commands(workspace, args.member):
        print(f"[{folder}] {shlex.join(command)}", flush=True)
        if args.print:
            continue
        code = subprocess.call(command, cwd=args.root / folder)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
