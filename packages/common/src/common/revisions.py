"""The Alembic head revisions of a migrations folder, read without importing Alembic, and the
revisions a database is at.

A running service only needs to know which revisions a migrated database is at (for
`/health/ready`); importing Alembic for that would add about 10 MiB to every process and a few
hundred milliseconds to every start. Revision scripts declare `revision` and `down_revision` as
literals, which is all the heads depend on; the tests check the answer against Alembic's own.
"""

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

VERSION_TABLE = "alembic_version"


async def applied_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions a database is at: none when it was never migrated."""
    exists = await connection.scalar(
        text("SELECT to_regclass(:table) IS NOT NULL"), {"table": VERSION_TABLE}
    )
    if not exists:
        return frozenset()
    rows = await connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return frozenset(rows.all())


@dataclass(frozen=True)
class Script:
    """A revision script as it declares itself: its revision and the ones it follows."""

    path: Path
    revision: str
    parents: tuple[str, ...]


def revision_scripts(migrations_dir: Path) -> list[Script]:
    """The revision scripts of a migrations folder, by file name."""
    if not (migrations_dir / "env.py").is_file():
        raise FileNotFoundError(
            f"no Alembic directory at {migrations_dir.resolve()}: run the service from its own "
            "folder, or point its MIGRATIONS_DIR setting at the alembic/ directory"
        )
    scripts = []
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        declared = _literals(path, names=("revision", "down_revision"))
        revision = declared.get("revision")
        if revision is None:
            continue  # not a revision script: __init__.py and the like
        if not isinstance(revision, str):
            raise ValueError(f"{path}: `revision` must be a string literal")
        down = declared.get("down_revision")
        if isinstance(down, str):
            parents: tuple[str, ...] = (down,)
        elif isinstance(down, tuple | list):
            parents = tuple(str(parent) for parent in down)
        elif down is None:
            parents = ()
        else:
            raise ValueError(f"{path}: `down_revision` must be a literal")
        scripts.append(Script(path, revision, parents))
    return scripts


def expected_heads(migrations_dir: Path) -> frozenset[str]:
    """The revisions a fully migrated database is at, read from the migration scripts."""
    scripts = revision_scripts(migrations_dir)
    parents = {parent for script in scripts for parent in script.parents}
    return frozenset(script.revision for script in scripts) - parents


@dataclass(frozen=True)
class Schema:
    """The revisions this code's migrations define, and the heads among them."""

    heads: frozenset[str]
    known: frozenset[str]

    @classmethod
    def of(cls, migrations_dir: Path) -> Self:
        known = frozenset(script.revision for script in revision_scripts(migrations_dir))
        return cls(heads=expected_heads(migrations_dir), known=known)

    def serves(self, current: frozenset[str]) -> bool:
        """Whether this code serves a database at `current`: at its heads, or at revisions it
        has never seen. Those are a later release's, migrated before that release rolls out
        while this one still serves (expand, then contract; `make test-compat` checks the pair).
        A database at one of this code's older revisions, or never migrated, is behind."""
        return current == self.heads or (bool(current) and not current & self.known)


def revision_graph_problem(migrations_dir: Path) -> str | None:
    """What keeps `alembic upgrade head` from reading the scripts, in one line naming the file
    and the revision: a `down_revision` no script defines, two scripts with one revision, a
    cycle, or two heads. None when the graph is a line or merged branches."""
    scripts = revision_scripts(migrations_dir)
    by_revision: dict[str, Script] = {}
    for script in scripts:
        if script.revision in by_revision:
            first = by_revision[script.revision]
            return (
                f"{_shown(first.path)} and {_shown(script.path)} both declare revision "
                f"{script.revision}: give one a revision id of its own"
            )
        by_revision[script.revision] = script
    versions = _shown(migrations_dir / "versions")
    for script in scripts:
        for parent in script.parents:
            if parent not in by_revision:
                return (
                    f"{_shown(script.path)}: revision {script.revision} has down_revision "
                    f"{parent!r}, which no script in {versions} declares: set it to the "
                    "revision this one follows"
                )
    cycle = _cycle(by_revision)
    if cycle:
        path = " -> ".join(cycle)
        return (
            f"{_shown(by_revision[cycle[0]].path)}: revision {cycle[0]} follows itself ({path}): "
            "one of these down_revision values is wrong"
        )
    heads = sorted(expected_heads(migrations_dir))
    if len(heads) > 1:
        files = " and ".join(_shown(by_revision[head].path) for head in heads)
        return (
            f"{files}: {len(heads)} heads ({', '.join(heads)}) where one is expected: set the "
            "newer one's down_revision to the other, or join them with `alembic merge heads`"
        )
    return None


def _cycle(by_revision: dict[str, Script]) -> list[str]:
    """A revision that is its own ancestor, and the way back to it; empty when there is none."""
    visiting: set[str] = set()
    done: set[str] = set()
    for start in sorted(by_revision):
        if start in done:
            continue
        path = [start]
        visiting.add(start)
        stack = [iter(by_revision[start].parents)]
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                finished = path.pop()
                visiting.discard(finished)
                done.add(finished)
                stack.pop()
            elif parent in visiting:
                return [*path[path.index(parent) :], parent]
            elif parent not in done:
                path.append(parent)
                visiting.add(parent)
                stack.append(iter(by_revision[parent].parents))
    return []


def _shown(path: Path) -> str:
    """`path` as a user finds it: relative to the folder they are in, when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _literals(script: Path, *, names: tuple[str, ...]) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8"), filename=str(script)).body:
        target: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        if isinstance(target, ast.Name) and target.id in names:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is None:
                continue
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(f"{script}: `{target.id}` must be a literal") from None
    return found
