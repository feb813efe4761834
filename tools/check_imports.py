"""Check that every workspace member declares each third-party and workspace package it imports.

    uv run python tools/check_imports.py

All members share one development environment, so an undeclared import works on a developer's
machine and breaks only when the member is installed alone (its image, its CI job). This check
finds it first. A member's code (src/, alembic/) may import its dependencies and its own extras;
its tests may also import its dependency groups. Requiring a workspace member with extras
(`common[testing]`) declares what those extras require. The workspace root's tools/ and tests/
are checked against the root's dependency groups. Run it in the synced workspace environment: it
maps import names to distributions with importlib.metadata.

deptry does the same for one project, but not for this layout: it cannot credit `pytest` to a
dev group's `common[testing]`, and it takes a service's `alembic/` folder for a local module.
"""

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

from monorepo import Requirement, Workspace, normalize, top_level_modules

ROOT_TREES = ("tools", "tests")
SKIPPED_DIRS = frozenset({".venv", "__pycache__", ".mypy_cache", ".pytest_cache", "node_modules"})


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    module: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module!r}, {self.reason}"


@dataclass(frozen=True)
class Scope:
    """Files checked together, the distributions they may use, the names local to them."""

    owner: str
    files: tuple[Path, ...]
    declared: frozenset[str]
    local: frozenset[str]


def python_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*.py")):
        if not SKIPPED_DIRS.intersection(path.relative_to(folder).parts):
            yield path


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Top-level names of the absolute imports in a file, with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


def test_tree_modules(folder: Path) -> frozenset[str]:
    """Names tests import from their own folders (conftest, a sample app put on sys.path)."""
    names: set[str] = set()
    for directory in [folder, *(d for d in folder.rglob("*") if d.is_dir())]:
        if not SKIPPED_DIRS.intersection(directory.parts):
            names |= top_level_modules(directory)
    return frozenset(names)


class Checker:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.distributions = {
            module: frozenset(normalize(d) for d in dists)
            for module, dists in packages_distributions().items()
        }
        # Members installed in editable mode are not always in the metadata map: read their src/.
        for name in workspace.members:
            for module in workspace.import_names(name):
                self.distributions[module] = frozenset({name})

    def expand(self, requirements: Iterable[Requirement]) -> frozenset[str]:
        """Distribution names declared, with the extras of workspace members followed."""
        declared: set[str] = set()
        pending = list(requirements)
        while pending:
            requirement = pending.pop()
            declared.add(requirement.name)
            member = self.workspace.members.get(requirement.name)
            if member is not None:
                for extra in requirement.extras:
                    pending.extend(member.extras.get(extra, ()))
        return frozenset(declared)

    def scopes(self) -> Iterator[Scope]:
        for name, member in self.workspace.members.items():
            folder = self.workspace.root / member.path
            own = self.expand(
                [Requirement(name), *member.dependencies, *_flatten(member.extras.values())]
            )
            with_groups = own | self.expand(_flatten(member.groups.values()))
            local = self.workspace.import_names(name)
            code: list[Path] = []
            tests: list[Path] = []
            for path in python_files(folder):
                is_test = "tests" in path.relative_to(folder).parts
                (tests if is_test else code).append(path)
            yield Scope(name, tuple(code), own, local)
            test_local = frozenset().union(
                *(test_tree_modules(t) for t in folder.rglob("tests") if t.is_dir())
            )
            yield Scope(f"{name} (tests)", tuple(tests), with_groups, local | test_local)

        root = self.workspace.root
        files = tuple(
            p for tree in ROOT_TREES if (root / tree).is_dir() for p in python_files(root / tree)
        )
        local = frozenset().union(
            *(test_tree_modules(root / tree) for tree in ROOT_TREES if (root / tree).is_dir())
        )
        yield Scope(
            "workspace root",
            files,
            self.expand(_flatten(self.workspace.root_groups.values())),
            local,
        )

    def check(self, scope: Scope) -> Iterator[Problem]:
        for path in scope.files:
            for module, line in imported_modules(path):
                if module in sys.stdlib_module_names or module in scope.local:
                    continue
                relative = path.relative_to(self.workspace.root)
                distributions = self.distributions.get(module)
                if distributions is None:
                    reason = "which no installed distribution provides (run `make sync`?)"
                    yield Problem(relative, line, module, reason)
                elif not distributions & scope.declared:
                    names = " or ".join(sorted(distributions))
                    reason = f"but {scope.owner} does not declare {names}"
                    yield Problem(relative, line, module, reason)


def _flatten(groups: Iterable[tuple[Requirement, ...]]) -> list[Requirement]:
    return [requirement for group in groups for requirement in group]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)

    checker = Checker(Workspace.load(args.root))
    problems = [problem for scope in checker.scopes() for problem in checker.check(scope)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} undeclared import(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
