"""`make check-member MEMBER=things-svc`: one workspace member checked alone, as its CI job does.

Only what the member declares is installed (`uv sync --locked --package ...`), so an import that
works only in the shared environment fails here; then ruff and mypy at their locked versions, a
service's migrations applied, compared with its models and linted, and the member's tests. The
migrations run on `MIGRATIONS_DATABASE_URL` when it is set, handed to the service under its own
setting's name, so a new service needs no edit of CI. Last, a service's previous release (BASE)
runs its tests on the schema of this change's migrations (tools/compat.py). Standard library
only: CI runs it before anything is installed.

    python3 tools/member_check.py things-svc [--print]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from monorepo import Workspace, env_prefix_of, locked_version

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DATABASE_URL = "MIGRATIONS_DATABASE_URL"


class Step(NamedTuple):
    folder: str  # relative to the root
    command: list[str]
    # The variable that names the service's database (`THINGS_DATABASE_URL`), for a step that
    # runs its migrations.
    database_setting: str | None = None


def commands(workspace: Workspace, name: str) -> list[Step]:
    """Each step of the member's check, in order."""
    member = workspace.members[name]
    uv = os.environ.get("UV") or "uv"
    package = ["--package", member.name, *(["--all-extras"] if member.extras else [])]
    ruff = f"ruff@{locked_version(workspace.root, 'ruff')}"
    mypy = f"mypy=={locked_version(workspace.root, 'mypy')}"
    squawk = ["--with", f"squawk-cli=={locked_version(workspace.root, 'squawk-cli')}"]
    steps = [
        Step(".", [uv, "sync", "--locked", *package]),
        Step(".", [uv, "tool", "run", ruff, "check", member.path]),
        Step(".", [uv, "tool", "run", ruff, "format", "--check", member.path]),
        Step(".", [uv, "run", "--locked", *package, "--with", mypy, "mypy", member.path]),
    ]
    if member.has_migrations:
        setting = f"{env_prefix_of(workspace.root / member.path)}DATABASE_URL"
        steps += [
            Step(member.path, [uv, "run", "--no-sync", "alembic", "upgrade", "head"], setting),
            Step(member.path, [uv, "run", "--no-sync", "alembic", "check"], setting),
            Step(
                ".",
                [uv, "run", "--locked", *package, *squawk, "tools/migration_lint.py", member.path],
            ),
        ]
    steps.append(Step(".", [uv, "run", "--no-sync", "pytest", member.path]))
    if member.has_migrations:
        # The previous release's tests on this change's schema (`make test-compat`; BASE from
        # the environment, else the merge base with main).
        steps.append(Step(".", [uv, "run", "--no-sync", "python", "tools/compat.py", member.name]))
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
    migrations_url = os.environ.get(MIGRATIONS_DATABASE_URL)
    for step in commands(workspace, args.member):
        env, shown = None, shlex.join(step.command)
        if step.database_setting and migrations_url:
            env = {**os.environ, step.database_setting: migrations_url}
            # The variable's name, never its value: a URL may hold a password.
            shown = f"{step.database_setting}=${MIGRATIONS_DATABASE_URL} {shown}"
        print(f"[{step.folder}] {shown}", flush=True)
        if args.print:
            continue
        code = subprocess.call(step.command, cwd=args.root / step.folder, env=env)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
