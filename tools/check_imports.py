"""Check that every workspace member declares each third-party and workspace package it imports.

All members share one development environment, so an undeclared import breaks only when the member
is installed alone (its image, its CI job). A member's code may import its dependencies and
extras; its tests its dependency groups too; the root's tools/ and tests/ the root's groups.
deptry checks one project, not this layout: it cannot credit `pytest` to a group's
`common[testing]`, and takes a service's `alembic/` folder for a local module.
"""

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from itertools import chain
from pathlib import Path

from monorepo import Requirement, Workspace, normalize

ROOT_TREES = ("tools", "tests")
SKIPPED_DIRS = frozenset({".venv", "__pycache__", ".mypy_cache", ".pytest_cache", "node_modules"})


def python_files(folder: Path) -> list[Path]:
    return [
        path
        for path in sorted(folder.rglob("*.py"))
        if not SKIPPED_DIRS.intersection(path.relative_to(folder).parts)
    ]


def local_modules(folder: Path) -> set[str]:
    """Names tests import from their own folders, at any depth (conftest, a sample app put on
    sys.path): each module and package under `folder`."""
    files = python_files(folder)
    packages = {path.parent.name for path in files if path.name == "__init__.py"}
    return {path.stem for path in files} | packages - {folder.name}


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Top-level names of the absolute imports in a file, with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


class ImportCheck:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.providers = {
            module: {normalize(distribution) for distribution in distributions}
            for module, distributions in packages_distributions().items()
        }
        # Members installed in editable mode are not always in the metadata map: read their src/.
        for name in workspace.members:
            self.providers |= {module: {name} for module in workspace.import_names(name)}

    def declared(self, requirements: Iterable[Requirement]) -> set[str]:
        """Distribution names declared, with the extras of workspace members followed."""
        names: set[str] = set()
        pending = list(requirements)
        while pending:
            requirement = pending.pop()
            names.add(requirement.name)
            member = self.workspace.members.get(requirement.name)
            if member is not None:
                for extra in requirement.extras:
                    pending.extend(member.extras.get(extra, ()))
        return names

    def problems(self) -> Iterator[str]:
        """Each undeclared import, as `file:line: imports 'module', why`."""
        for name, member in self.workspace.members.items():
            folder = self.workspace.root / member.path
            own = self.declared(
                [Requirement(name), *member.dependencies, *chain(*member.extras.values())]
            )
            local = self.workspace.import_names(name)
            files = python_files(folder)
            tests = [path for path in files if "tests" in path.relative_to(folder).parts]
            code = [path for path in files if path not in tests]
            yield from self.undeclared(code, owner=name, declared=own, local=local)
            yield from self.undeclared(
                tests,
                owner=f"{name} (tests)",
                declared=own | self.declared(member.groups),
                local=local.union(*map(local_modules, folder.rglob("tests"))),
            )
        trees = [self.workspace.root / tree for tree in ROOT_TREES]
        yield from self.undeclared(
            [path for tree in trees if tree.is_dir() for path in python_files(tree)],
            owner="workspace root",
            declared=self.declared(self.workspace.root_groups),
            local=set().union(*(local_modules(tree) for tree in trees if tree.is_dir())),
        )

    def undeclared(
        self, files: list[Path], *, owner: str, declared: set[str], local: Iterable[str]
    ) -> Iterator[str]:
        for path in files:
            for module, line in imported_modules(path):
                if module in sys.stdlib_module_names or module in local:
                    continue
                where = f"{path.relative_to(self.workspace.root)}:{line}: imports {module!r}"
                distributions = self.providers.get(module)
                if distributions is None:
                    yield f"{where}, which no installed distribution provides (run `make sync`?)"
                elif not distributions & declared:
                    names = " or ".join(sorted(distributions))
                    yield f"{where}, but {owner} does not declare {names}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)

    problems = list(ImportCheck(Workspace.load(args.root)).problems())
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} undeclared import(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
