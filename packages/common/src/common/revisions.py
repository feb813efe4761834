"""The Alembic head revisions of a migrations folder, read without importing Alembic, and the
revisions a database is at.

A running service only needs to know which revisions a migrated database is at (for
`/health/ready`); importing Alembic for that would add about 10 MiB to every process and a few
hundred milliseconds to every start. Revision scripts declare `revision` and `down_revision` as
literals, which is all the heads depend on; the tests check the answer against Alembic's own.
"""

import ast
from pathlib import Path

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


def expected_heads(migrations_dir: Path) -> frozenset[str]:
    """The revisions a fully migrated database is at, read from the migration scripts."""
    if not (migrations_dir / "env.py").is_file():
        raise FileNotFoundError(
            f"no Alembic directory at {migrations_dir.resolve()}: run the service from its own "
            "folder, or point its MIGRATIONS_DIR setting at the alembic/ directory"
        )
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((migrations_dir / "versions").glob("*.py")):
        declared = _literals(script, names=("revision", "down_revision"))
        revision = declared.get("revision")
        if revision is None:
            continue  # not a revision script: __init__.py and the like
        if not isinstance(revision, str):
            raise ValueError(f"{script}: `revision` must be a string literal")
        revisions.add(revision)
        down = declared.get("down_revision")
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(str(parent) for parent in down)
        elif down is not None:
            raise ValueError(f"{script}: `down_revision` must be a literal")
    return frozenset(revisions - parents)


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
