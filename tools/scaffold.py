"""Generate a new service, or a new domain in a service, ready to run and green from the start.

    uv run python tools/scaffold.py new-service orders-svc [--domain orders] [--singular order]
    uv run python tools/scaffold.py new-domain things-svc widgets [--singular widget]

The code is rendered from the plain files of tools/templates/ (`string.Template`: `$name`), the
same shape as things-svc: a domain owned by the signed-in user, with its Alembic revision written
from the model (no database needed) and tests of every endpoint. A new service also joins the
Compose file (its database, migrator and API: YAML edited with ruamel.yaml, comments kept), the
root ruff configuration (TOML, with tomlkit), infra/.env.example, uv.lock, Prometheus
(tools/observability.py) and the Kubernetes manifests (tools/manifests.py). CI needs no edit: its
workflow runs every member the workspace lists.

Every name is checked before anything is written; a refused name changes nothing, and when a
later step fails (`uv lock`, say) every file written so far is put back as it was.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

import env_examples
import observability
from common.db import table_name_for
from monorepo import Workspace, stack_port
from scaffold_edits import with_compose_service, with_first_party, with_security_bodies
from scaffold_names import TEMPLATES, DomainNames, ScaffoldError, ServiceNames

ROOT = Path(__file__).resolve().parents[1]
FIRST_PORT = 8000

# Template (None: an empty file) -> path in the service, with `$package` and `$domain` set.
SERVICE_FILES: dict[str | None, str] = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "Dockerfile.tmpl": "Dockerfile",
    "alembic/env.py.tmpl": "alembic/env.py",
    "alembic/script.py.mako": "alembic/script.py.mako",
    "src/__init__.py.tmpl": "src/$package/__init__.py",
    "src/main.py.tmpl": "src/$package/main.py",
    "src/settings.py.tmpl": "src/$package/settings.py",
    "src/database.py.tmpl": "src/$package/database.py",
    "src/events.py.tmpl": "src/$package/events.py",
    None: "src/$package/domains/__init__.py",
    "tests/conftest.py.tmpl": "tests/conftest.py",
    "tests/test_app.py.tmpl": "tests/test_app.py",
    "tests/test_health.py.tmpl": "tests/test_health.py",
    "tests/test_migrations.py.tmpl": "tests/test_migrations.py",
    "tests/test_security.py.tmpl": "tests/test_security.py",
    "tests/test_events.py.tmpl": "tests/test_events.py",
}
DOMAIN_FILES: dict[str | None, str] = {
    "__init__.py.tmpl": "src/$package/domains/$domain/__init__.py",
    "models.py.tmpl": "src/$package/domains/$domain/models.py",
    "schemas.py.tmpl": "src/$package/domains/$domain/schemas.py",
    "repository.py.tmpl": "src/$package/domains/$domain/repository.py",
    "service.py.tmpl": "src/$package/domains/$domain/service.py",
    "routes.py.tmpl": "src/$package/domains/$domain/routes.py",
    # A package, so two domains' test_routes.py are distinct modules for mypy.
    None: "tests/domains/$domain/__init__.py",
    "test_routes.py.tmpl": "tests/domains/$domain/test_routes.py",
}


# -- the files it writes, undone on failure -------------------------------------------------


class Changes:
    """Files written or replaced; `rollback` puts every one back as it was."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._originals: dict[Path, bytes | None] = {}
        self._new_dirs: list[Path] = []

    def keep(self, path: Path) -> None:
        """Remember `path` as it is now, before something else (uv lock) rewrites it."""
        if path not in self._originals:
            self._originals[path] = path.read_bytes() if path.exists() else None

    def write(self, path: Path, content: str) -> None:
        self.keep(path)
        missing = [parent for parent in (path, *path.parents) if not parent.exists()][1:]
        for directory in reversed(missing):
            directory.mkdir()
            self._new_dirs.append(directory)
        path.write_text(content, encoding="utf-8")

    def written(self) -> list[Path]:
        return list(self._originals)

    def rollback(self) -> None:
        for path, original in self._originals.items():
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(original)
        for directory in reversed(self._new_dirs):
            # Caches a tool left behind (ruff, Python) go with the folder.
            shutil.rmtree(directory, ignore_errors=True)


def render(template: Path, values: Mapping[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    return Template(text).substitute(values) if template.suffix == ".tmpl" else text


def planned_files(
    folder: Path, mapping: Mapping[str | None, str], values: Mapping[str, str]
) -> dict[Path, str]:
    files = {}
    for source, target in mapping.items():
        content = render(folder / source, values) if source is not None else ""
        files[Path(Template(target).substitute(values))] = content
    return files


def refuse_existing(files: Mapping[Path, str]) -> None:
    existing = [path for path in files if path.exists()]
    if existing:
        raise ScaffoldError(f"{existing[0]} already exists: nothing was changed")


@dataclass(frozen=True)
class ExistingService:
    name: str
    directory: Path
    package: str

    @classmethod
    def find(cls, root: Path, name: str) -> ExistingService:
        directory = root / "services" / name
        if not (directory / "pyproject.toml").is_file():
            known = sorted(p.parent.name for p in (root / "services").glob("*/pyproject.toml"))
            raise ScaffoldError(f"no service {name!r} in services/ (there are: {', '.join(known)})")
        found = (directory / "src").glob("*/domains/__init__.py")
        packages = sorted(path.parent.parent.name for path in found)
        if len(packages) != 1:
            raise ScaffoldError(f"{directory}/src must hold one package with a domains/ folder")
        return cls(name=name, directory=directory, package=packages[0])

    @property
    def domains_dir(self) -> Path:
        return self.directory / "src" / self.package / "domains"

    def tables(self) -> set[str]:
        """The tables of the service's models: each domain's `models.py`, read (not imported)."""
        return {
            table
            for path in self.domains_dir.glob("*/models.py")
            for table in model_tables(path.read_text(encoding="utf-8"))
        }

    def head(self) -> str | None:
        config = Config(toml_file=str(self.directory / "pyproject.toml"))
        try:
            return ScriptDirectory.from_config(config).get_current_head()
        except CommandError as exc:
            raise ScaffoldError(f"{self.name}'s migrations: {exc}") from None


def model_tables(source: str) -> set[str]:
    """The table of each model class in `source`: its `__tablename__`, or the one its class name
    gives (`common.db.table_name_for`)."""
    tables = set()
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef) or not node.bases:
            continue
        explicit = [
            statement.value.value
            for statement in node.body
            if isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in statement.targets)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        ]
        tables.add(explicit[0] if explicit else table_name_for(node.name))
    return tables


def plan_domain(
    service: ExistingService, names: DomainNames, *, down_revision: str | None
) -> dict[Path, str]:
    """The domain's package, its tests and the Alembic revision creating its table."""
    if (service.domains_dir / names.domain).exists():
        raise ScaffoldError(f"{service.name} already has a domain {names.domain!r}")
    if names.domain in service.tables() or names.domain == "alembic_version":
        raise ScaffoldError(f"{service.name} already has a table {names.domain!r}")
    values = {"package": service.package, **names.values()}
    files = planned_files(TEMPLATES / "domain", DOMAIN_FILES, values)
    revision = revision_id(f"{service.name}/{names.domain}/{down_revision}")
    now = datetime.now()
    content = render(
        TEMPLATES / "domain" / "revision.py.tmpl",
        {
            **values,
            "revision": revision,
            "revises": f" {down_revision}" if down_revision else "",
            "down_revision": repr(down_revision).replace("'", '"'),
            "create_date": now.isoformat(sep=" "),
        },
    )
    files[Path(f"alembic/versions/{now:%Y%m%d}_{revision}_create_{names.domain}.py")] = content
    return {service.directory / path: text for path, text in files.items()}


def revision_id(seed: str) -> str:
    """Deterministic: the same service, domain and parent always give the same revision id."""
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


def events_revision(service: ExistingService, *, down_revision: str) -> dict[Path, str]:
    """The Alembic revision creating a new service's event outbox and inbox (common.events)."""
    revision = revision_id(f"{service.name}/events/{down_revision}")
    now = datetime.now()
    content = render(
        TEMPLATES / "service" / "alembic" / "events_revision.py.tmpl",
        {
            "revision": revision,
            "down_revision": down_revision,
            "create_date": now.isoformat(sep=" "),
        },
    )
    path = service.directory / f"alembic/versions/{now:%Y%m%d}_{revision}_event_outbox_and_inbox.py"
    return {path: content}


def new_domain(root: Path, service_name: str, name: str, *, singular: str | None = None) -> None:
    service = ExistingService.find(root, service_name)
    names = DomainNames.parse(name, singular=singular)
    files = plan_domain(service, names, down_revision=service.head())
    refuse_existing(files)
    security = service.directory / "tests" / "test_security.py"
    edits = {security: with_security_bodies(read(security), names)} if security.exists() else {}
    with applying(root) as changes:
        for path, content in {**files, **edits}.items():
            changes.write(path, content)
        tidy_python(root, [path for path in [*files, *edits] if path.suffix == ".py"])
    print(f"created domain {names.domain} in {service.name}:")
    for path in [*files, *edits]:
        print(f"  {path.relative_to(root)}")


# -- a service ------------------------------------------------------------------------------


def new_service(
    root: Path, name: str, *, domain: str | None = None, singular: str | None = None
) -> None:
    names = ServiceNames.parse(name)
    workspace = Workspace.load(root)
    directory = root / "services" / name
    if directory.exists() or name in workspace.members:
        raise ScaffoldError(f"{name} already exists: nothing was changed")
    taken = {module for member in workspace.members for module in workspace.import_names(member)}
    if names.package in taken or importlib.util.find_spec(names.package) is not None:
        raise ScaffoldError(f"service name {name!r}: the import name {names.package} is taken")
    domain_names = DomainNames.parse(domain or names.stem, singular=singular)

    values = {**names.values(), **domain_names.values(), "port": str(next_port(root))}
    files = {
        directory / path: text
        for path, text in planned_files(TEMPLATES / "service", SERVICE_FILES, values).items()
    }
    service = ExistingService(name=name, directory=directory, package=names.package)
    files.update(plan_domain(service, domain_names, down_revision=None))
    first = revision_id(f"{name}/{domain_names.domain}/None")
    files.update(events_revision(service, down_revision=first))
    edits = {
        root / "pyproject.toml": with_first_party(read(root / "pyproject.toml"), names.package),
        root / "infra/docker-compose.yml": with_compose_service(
            read(root / "infra/docker-compose.yml"),
            names,
            render(TEMPLATES / "service" / "compose.yml.tmpl", values),
        ),
        root / "infra/prometheus/prometheus.yml": observability.compose_scrape_config(
            [*(member.name for member in workspace.services()), name]
        ),
    }
    refuse_existing(files)

    with applying(root) as changes:
        for path, content in {**files, **edits}.items():
            changes.write(path, content)
        tidy_python(root, [path for path in files if path.suffix == ".py"])
        write_generated(changes)
        changes.keep(root / "uv.lock")
        run([os.environ.get("UV") or "uv", "lock"], cwd=root, what="uv lock")
    print(f"created {name} (package {names.package}, database {names.stem}):")
    for path in sorted(changes.written()):
        print(f"  {path.relative_to(root)}")


def write_generated(changes: Changes) -> None:
    """What the generators derive from the workspace, now that it holds the new service:
    infra/.env.example."""
    root = changes.root
    workspace = Workspace.load(root)
    changes.write(root / "infra/.env.example", env_examples.stack_example(workspace))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def next_port(root: Path) -> int:
    """The port for a new service: one past the highest port a service already has."""
    taken = [stack_port(p.parent) for p in (root / "services").glob("*/pyproject.toml")]
    return max(taken, default=FIRST_PORT - 1) + 1


# -- running it -----------------------------------------------------------------------------


@contextlib.contextmanager
def applying(root: Path) -> Iterator[Changes]:
    """Changes that are all kept, or all undone when anything fails (Ctrl-C included)."""
    changes = Changes(root)
    try:
        yield changes
    except BaseException:
        changes.rollback()
        print("every file written was put back: nothing was changed", file=sys.stderr)
        raise


def run(command: list[str], *, cwd: Path, what: str) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ScaffoldError(f"{what} failed:\n{(result.stdout + result.stderr).strip()}")


def tidy_python(root: Path, paths: list[Path]) -> None:
    """Sort imports and format as the repository's ruff settings say (names vary in length)."""
    files = [str(path) for path in paths]
    ruff = [sys.executable, "-m", "ruff"]
    run([*ruff, "check", "--fix", "--quiet", *files], cwd=root, what="ruff check")
    run([*ruff, "format", "--quiet", *files], cwd=root, what="ruff format")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    service = commands.add_parser("new-service", help="a new service with a first domain")
    service.add_argument("name", help="e.g. orders-svc")
    service.add_argument("--domain", help="its first domain (default: the name without -svc)")
    service.add_argument("--singular", help="the first domain's singular, when not guessed")
    domain = commands.add_parser("new-domain", help="a new domain in an existing service")
    domain.add_argument("service", help="e.g. things-svc")
    domain.add_argument("name", help="plural, the table's name: e.g. widgets")
    domain.add_argument("--singular", help="when the singular is not the name without its -s")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        if args.command == "new-service":
            new_service(root, args.name, domain=args.domain, singular=args.singular)
        else:
            new_domain(root, args.service, args.name, singular=args.singular)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
