"""The uv workspace as data, read from its pyproject files: its members, what each declares, how
they depend on each other, and the facts of each service. CI's affected members, the member check,
the import check and the stack follow the workspace itself, never a hand-kept list. Standard
library only: CI runs it with the runner's own Python, before anything is installed."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Files whose change can alter every member's environment or check: a change here affects all.
SHARED_FILES = (
    "pyproject.toml",
    "uv.lock",
    "Makefile",
    "tools/member_check.py",
    "tools/monorepo.py",
    "tools/affected.py",
    ".github/workflows/ci.yml",
)
SERVICES_DIR = "services"

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    """A distribution name in its canonical form (PEP 503): `Foo_Bar` and `foo-bar` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    name: str
    extras: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = _REQUIREMENT.match(text)
        if match is None:
            raise ValueError(f"not a requirement: {text!r}")
        extras = match.group(2) or ""
        return cls(
            name=normalize(match.group(1)),
            extras=frozenset(normalize(e) for e in extras.split(",") if e.strip()),
        )


@dataclass(frozen=True)
class Member:
    name: str
    # Relative to the workspace root, with forward slashes: `services/things-svc`.
    path: str
    dependencies: tuple[Requirement, ...]
    extras: dict[str, tuple[Requirement, ...]] = field(default_factory=dict)
    # Every dependency group's requirements together: what its tests may also import.
    groups: tuple[Requirement, ...] = ()
    # A member with an Alembic configuration owns a database: CI migrates it.
    has_migrations: bool = False
    # The services whose committed openapi.json its contract tests read (`[tool.contracts]`).
    providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workspace:
    root: Path
    members: dict[str, Member]
    # The root's own dependency groups: the tools every member shares (and tools/ and tests/ use).
    root_groups: tuple[Requirement, ...] = ()

    @classmethod
    def load(cls, root: Path) -> Workspace:
        config = _read_toml(root / "pyproject.toml")
        workspace = config.get("tool", {}).get("uv", {}).get("workspace", {})
        excluded = {path for pattern in workspace.get("exclude", []) for path in root.glob(pattern)}
        members: dict[str, Member] = {}
        for pattern in workspace.get("members", []):
            for path in sorted(root.glob(pattern)):
                if path in excluded or not (path / "pyproject.toml").is_file():
                    continue
                member = _read_member(root, path)
                members[member.name] = member
        return cls(
            root=root,
            members=dict(sorted(members.items())),
            root_groups=_groups(config.get("dependency-groups", {})),
        )

    def workspace_dependencies(self, name: str) -> frozenset[str]:
        """Members `name` depends on directly, through its dependencies, extras or groups."""
        member = self.members[name]
        requirements = [member.dependencies, member.groups, *member.extras.values()]
        return frozenset(
            requirement.name
            for group in requirements
            for requirement in group
            if requirement.name in self.members and requirement.name != name
        )

    def affected_by(self, changed: Iterable[str]) -> list[Member]:
        """Members whose checks a change to these files (paths relative to the root) can alter:
        the members holding them, the members whose contract tests read a changed OpenAPI
        document, and every member depending on one of those, directly or not."""
        changed = list(changed)
        if any(path in SHARED_FILES for path in changed):
            return list(self.members.values())
        affected = {
            member.name
            for member in self.members.values()
            if any(path.startswith(f"{member.path}/") for path in changed)
            or any(
                f"{self.members[provider].path}/openapi.json" in changed
                for provider in member.providers
                if provider in self.members
            )
        }
        # Then each member depending on an affected one, until there is none left to add.
        while dependents := {
            name
            for name in self.members
            if name not in affected and self.workspace_dependencies(name) & affected
        }:
            affected |= dependents
        return [member for name, member in self.members.items() if name in affected]

    def import_names(self, name: str) -> frozenset[str]:
        """Top-level import names a member installs: the packages and modules under its src/."""
        source = self.root / self.members[name].path / "src"
        children = source.iterdir() if source.is_dir() else ()
        return frozenset(
            child.stem
            for child in children
            if (child / "__init__.py").is_file() or child.suffix == ".py"
        )

    def services(self) -> list[ServiceFacts]:
        return [
            ServiceFacts.read(self.root / member.path)
            for member in self.members.values()
            if member.path.startswith(f"{SERVICES_DIR}/")
        ]


def service_stem(name: str) -> str:
    """The naming rule, written once: `order-items-svc` -> `order_items`, the service's database
    and role, and (upper-cased) its settings' prefix."""
    return name.removesuffix("-svc").replace("-", "_")


@dataclass(frozen=True)
class ServiceFacts:
    """What the tools need to know of a service, each read from where the service defines it."""

    name: str  # things-svc: its folder and its distribution (`[project] name`)
    directory: Path
    package: str  # things_svc
    env_prefix: str  # THINGS_: its Settings class's `env_prefix`, else the naming rule's
    # Where `make up` serves it and Compose publishes it, `[tool.stack] port`: fixed per service,
    # so adding a service never moves another one's URL.
    port: int
    # What users-svc grants its client identity, `[tool.identity] scopes` (docs/auth.md).
    scopes: tuple[str, ...] = ()

    @property
    def database(self) -> str:
        return service_stem(self.name)

    @property
    def app(self) -> str:
        """The ASGI app uvicorn runs."""
        return f"{self.package}.main:app"

    @classmethod
    def read(cls, directory: Path) -> ServiceFacts:
        pyproject = directory / "pyproject.toml"
        config = _read_toml(pyproject)
        port = config.get("tool", {}).get("stack", {}).get("port")
        if not isinstance(port, int) or not 1024 <= port <= 65535:
            raise ValueError(
                f"{pyproject}: give the service a port: `[tool.stack] port = <1024..65535>`"
            )
        name = normalize(config["project"]["name"])
        scopes = tuple(config.get("tool", {}).get("identity", {}).get("scopes", ()))
        package = name.replace("-", "_")
        return cls(name, directory, package, env_prefix_of(directory), port, scopes)


def env_prefix_of(directory: Path) -> str:
    """A member's settings prefix: the `env_prefix` its Settings class is given, else the naming
    rule's."""
    name = normalize(_read_toml(directory / "pyproject.toml")["project"]["name"])
    settings = directory / "src" / name.replace("-", "_") / "settings.py"
    source = settings.read_text(encoding="utf-8") if settings.is_file() else ""
    for node in ast.walk(ast.parse(source)):
        match node:
            case ast.keyword(arg="env_prefix", value=ast.Constant(str(prefix))):
                return prefix
    return f"{service_stem(name).upper()}_"


def locked_version(root: Path, package: str) -> str:
    """A package's version in uv.lock, so CI runs the very tools developers run."""
    for entry in _read_toml(root / "uv.lock").get("package", []):
        if entry["name"] == package and "version" in entry:
            return str(entry["version"])
    raise LookupError(f"{package} is not in uv.lock")


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def _read_member(root: Path, path: Path) -> Member:
    config = _read_toml(path / "pyproject.toml")
    project = config.get("project", {})
    if "name" not in project:
        raise ValueError(f"{path / 'pyproject.toml'} has no [project] name")
    return Member(
        name=normalize(project["name"]),
        path=path.relative_to(root).as_posix(),
        dependencies=tuple(Requirement.parse(d) for d in project.get("dependencies", [])),
        extras={
            normalize(extra): tuple(Requirement.parse(d) for d in requirements)
            for extra, requirements in project.get("optional-dependencies", {}).items()
        },
        groups=_groups(config.get("dependency-groups", {})),
        has_migrations="alembic" in config.get("tool", {}),
        providers=tuple(config.get("tool", {}).get("contracts", {}).get("providers", ())),
    )


def _groups(
    groups: dict[str, list[Any]], names: Iterable[str] | None = None
) -> tuple[Requirement, ...]:
    """The requirements of dependency groups (every one by default), following
    `{include-group = ...}` (PEP 735)."""
    return tuple(
        requirement
        for name in (groups if names is None else names)
        for entry in groups[name]
        for requirement in (
            (Requirement.parse(entry),)
            if isinstance(entry, str)
            else _groups(groups, [entry["include-group"]])
        )
    )
