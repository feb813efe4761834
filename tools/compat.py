"""`make test-compat SERVICE=things-svc [BASE=<ref>]`: the previous release against the new schema.

In a rolling update the migrations run first, and the previous release keeps serving on the new
schema until it is replaced. This runs that: the service's code at BASE (by default the merge base
with main) runs its own tests against a database this checkout's migrations brought to their head.
A revision that drops or renames what the previous release reads fails them; the failure names the
revisions BASE has never seen. BASE is a git worktree with its own locked environment, both kept
in .local/compat/<sha>/ for the next run.

    python tools/compat.py things-svc [--base <ref>]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from common.revisions import revision_scripts
from devstack.postgres import (
    TEST_DATABASE_TEMPLATE_ENV,
    TEST_DATABASE_URL_ENV,
    drop_database,
    recreate_database,
    server_url,
)

ROOT = Path(__file__).resolve().parents[1]
# Where the test plugin reads TEST_DATABASE_TEMPLATE: a BASE without it predates this check.
DEVSTACK_POSTGRES = "packages/devstack/src/devstack/postgres.py"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def base_commit(ref: str | None) -> str:
    """BASE's commit: by default the merge base with main (`origin/main` in a CI checkout)."""
    if ref is None:
        main = "main" if git("branch", "--list", "main") else "origin/main"
        ref = git("merge-base", main, "HEAD")
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def checkout(sha: str) -> Path:
    """BASE's worktree, with its own locked environment, made once and kept."""
    folder = ROOT / ".local" / "compat" / sha
    if not (folder / ".git").exists():
        git("worktree", "prune")
        git("worktree", "add", "--detach", str(folder), sha)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="things-svc, users-svc, ...")
    parser.add_argument("--base", help="the previous release: a git ref (the merge base with main)")
    args = parser.parse_args(argv)
    service = f"services/{args.service}"
    if not (ROOT / service / "alembic").is_dir():
        print(f"error: no service with migrations at {service}", file=sys.stderr)
        return 2
    try:
        sha = base_commit(args.base or os.environ.get("BASE") or None)
    except subprocess.CalledProcessError:
        print(
            f"error: no commit {args.base or os.environ.get('BASE')!r} to compare with here "
            "(a shallow clone lacks it: fetch the history)",
            file=sys.stderr,
        )
        return 2
    base_versions = git("ls-tree", "--name-only", sha, f"{service}/alembic/versions/")
    if not base_versions:
        print(f"{args.service} has no migrations at {sha[:12]}: nothing to compare")
        return 0
    known = {Path(name).name for name in base_versions.splitlines()}
    new = [s for s in revision_scripts(ROOT / service / "alembic") if s.path.name not in known]
    if not new:
        print(f"no revision of {args.service} since {sha[:12]}: the schema is the base's own")
        return 0
    revisions = ", ".join(f"{s.revision} ({s.path.name})" for s in new)
    if TEST_DATABASE_TEMPLATE_ENV not in git("show", f"{sha}:{DEVSTACK_POSTGRES}"):
        print(
            f"{sha[:12]} predates make test-compat: its test plugin always migrates its own "
            f"databases, so its tests cannot run on this schema. Not checked: {revisions}"
        )
        return 0
    base = checkout(sha)
    uv = os.environ.get("UV") or "uv"
    subprocess.run(
        [uv, "sync", "--locked", "--quiet", "--package", args.service], cwd=base, check=True
    )

    # The schema, built as a deployment's migrator builds it: this checkout's code and migrations.
    server = server_url(ROOT / ".local" / "test-postgres")
    template = f"compat_{args.service.replace('-', '_')}"
    url = recreate_database(server, template)
    config = Config(toml_file=str(ROOT / service / "pyproject.toml"))
    config.attributes["database_url"] = url.render_as_string(hide_password=False)
    print(f"{args.service} at {sha[:12]} on the schema with {revisions}", flush=True)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env[TEST_DATABASE_URL_ENV] = server.render_as_string(hide_password=False)
    env[TEST_DATABASE_TEMPLATE_ENV] = template
    tests = [str(base / ".venv/bin/python"), "-m", "pytest", f"{service}/tests", "-q"]
    # Its migration tests check BASE's revisions against BASE's models, on empty databases.
    tests.append("--ignore-glob=*/test_migrations.py")
    try:
        command.upgrade(config, "head")
        failed = subprocess.call(tests, cwd=base, env=env) != 0
    finally:
        drop_database(server, template)
    if failed:
        print(
            f"error: {args.service} at {sha[:12]} fails its own tests on the schema of revisions "
            f"it has never seen: {revisions}. The previous release still runs while they are "
            "applied: drop or rename a column in three deploys (docs/development.md, "
            '"Expand, then contract").',
            file=sys.stderr,
        )
        return 1
    print(f"{args.service} at {sha[:12]} passes its tests on the schema with {revisions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
