"""Generate a new service, or a new domain in a service, ready to run and green from the start.

    uv run python tools/scaffold.py new-service orders-svc [--domain orders] [--singular order]
    uv run python tools/scaffold.py new-domain things-svc widgets [--singular widget]

The code is rendered from the plain files of tools/templates/ (`string.Template`: `$name`), the
same shape as things-svc: a domain owned by the signed-in user, with its Alembic revision written
from the model (no database needed) and tests of every endpoint. A new service also joins the
Compose file (its database, migrator and API, and every service's port), infra/.env.example, the
root ruff configuration, uv.lock, CI (through tools/workflows.py) and the Kubernetes manifests
(through tools/manifests.py).

Every name is checked before anything is written; a refused name changes nothing, and when a
later step fails (`uv lock`, say) every file written so far is put back as it was.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import io
import keyword
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

import manifests
import observability
import workflows
from common.db import table_name_for
from monorepo import Workspace, service_stem, stack_port, workflow_path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"
FIRST_PORT = 8000
API_PREFIX = "/api/v1"

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*-svc$")
DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# The longest name whose generated lines (operation ids in test_security.py) fit in 100 columns.
MAX_DOMAIN_LENGTH = 20
MAX_SERVICE_STEM_LENGTH = 20
# Service stems whose database, role or variables would collide with something that exists.
RESERVED_STEMS = {
    "postgres": "the server's own database and Compose's Postgres service",
    "template0": "a database Postgres keeps for itself",
    "template1": "a database Postgres keeps for itself",
    "test": "TEST_DATABASE_URL, the tests' database setting",
}

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


class ScaffoldError(Exception):
    """A name or a repository the generator refuses; the message says why and what to do."""


# -- names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainNames:
    domain: str  # plural, the package and the table: order_items
    item: str  # singular, for variables and functions: order_item

    @classmethod
    def parse(cls, name: str, *, singular: str | None = None) -> DomainNames:
        if not DOMAIN_NAME.fullmatch(name) or len(name) > MAX_DOMAIN_LENGTH:
            raise ScaffoldError(
                f"domain name {name!r}: use lowercase letters, digits and single underscores, "
                f"starting with a letter, at most {MAX_DOMAIN_LENGTH} characters (e.g. widgets)"
            )
        item = singular if singular is not None else singular_of(name)
        if item is None:
            raise ScaffoldError(
                f"domain name {name!r}: name the domain in the plural, as its table (widgets), "
                "or give its singular (SINGULAR=...)"
            )
        if not DOMAIN_NAME.fullmatch(item) or item == name:
            raise ScaffoldError(
                f"singular {item!r}: it must differ from {name!r} and use lowercase letters, "
                "digits and single underscores"
            )
        used = template_identifiers()
        for word in (name, item):
            if keyword.iskeyword(word) or word in used or f"{word}_id" in used:
                raise ScaffoldError(
                    f"domain name {name!r}: {word!r} is a Python keyword or a name the "
                    "generated code already uses; choose another"
                )
        if name.startswith("test") or name == "conftest":
            raise ScaffoldError(f"domain name {name!r}: pytest would take it for a test module")
        return cls(domain=name, item=item)

    @property
    def model(self) -> str:
        return "".join(word.capitalize() for word in self.item.split("_"))

    def values(self) -> dict[str, str]:
        return {
            "domain": self.domain,
            "item": self.item,
            "Item": self.model,
            # The model names its table only when the rule would name it otherwise (people).
            "tablename": (
                ""
                if table_name_for(self.model) == self.domain
                else f'\n    __tablename__ = "{self.domain}"\n'
            ),
            "label": self.item.replace("_", " "),
            "a_label": ("an " if self.item[0] in "aeiou" else "a ") + self.item.replace("_", " "),
            "labels": self.domain.replace("_", " "),
            "path": self.domain.replace("_", "-"),
            # FastAPI's operation ids: route name, path and method, non-word characters as "_".
            "create_operation": operation_id(f"create_{self.item}", self.domain, "post"),
            "update_operation": operation_id(
                f"update_{self.item}", f"{self.domain}/{{{self.item}_id}}", "patch"
            ),
        }


def operation_id(route: str, path: str, method: str) -> str:
    return re.sub(r"\W", "_", f"{route}{API_PREFIX}/{path}") + f"_{method}"


def singular_of(plural: str) -> str | None:
    """English singular of a plural noun, for the common endings; None when it is not plural."""
    if plural.endswith("ies") and len(plural) > 3:
        return plural[:-3] + "y"
    if plural.endswith(("sses", "shes", "ches", "xes", "zes")):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith("ss"):
        return plural[:-1]
    return None


@dataclass(frozen=True)
class ServiceNames:
    service: str  # orders-svc
    stem: str  # orders: the database, the role, and (upper-cased) the settings prefix

    @property
    def package(self) -> str:
        return self.service.replace("-", "_")

    @property
    def prefix(self) -> str:
        return f"{self.stem.upper()}_"

    @classmethod
    def parse(cls, name: str) -> ServiceNames:
        if not SERVICE_NAME.fullmatch(name):
            raise ScaffoldError(
                f"service name {name!r}: use lowercase letters, digits and single hyphens, "
                "starting with a letter and ending in -svc (e.g. orders-svc)"
            )
        stem = service_stem(name)
        if len(stem) > MAX_SERVICE_STEM_LENGTH:
            raise ScaffoldError(
                f"service name {name!r}: at most {MAX_SERVICE_STEM_LENGTH} characters before -svc"
            )
        if stem in RESERVED_STEMS:
            raise ScaffoldError(
                f"service name {name!r}: {stem!r} is taken by {RESERVED_STEMS[stem]}"
            )
        return cls(service=name, stem=stem)

    def values(self) -> dict[str, str]:
        return {
            "service": self.service,
            "package": self.package,
            "database": self.stem,
            "prefix": self.prefix,
            "upper": self.stem.upper(),
        }


def template_identifiers() -> frozenset[str]:
    """Every name the domain templates use themselves: a domain named like one would clash."""
    sentinel = {
        "domain": "zzdomains",
        "item": "zzitem",
        "Item": "Zzitem",
        "label": "zzitem",
        "labels": "zzdomains",
        "path": "zzdomains",
        "package": "zzpackage",
        "tablename": "",
    }
    names: set[str] = set()
    for template in sorted((TEMPLATES / "domain").glob("*.py.tmpl")):
        source = Template(template.read_text(encoding="utf-8")).safe_substitute(sentinel)
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME and "zz" not in token.string.lower():
                names.add(token.string)
    return frozenset(names)


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


# -- a domain -------------------------------------------------------------------------------


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
            read(root / "infra/docker-compose.yml"), names, values
        ),
        root / "infra/.env.example": with_env_example(
            read(root / "infra/.env.example"), names, port=values["port"]
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
        generated = workflows.generate(Workspace.load(root))
        changes.write(root / workflow_path(name), generated[workflow_path(name)])
        # Its Kubernetes base, its place in the overlays and the connection budget's new share.
        for relative, content in manifests.generate(Workspace.load(root)).items():
            if not (root / relative).is_file() or read(root / relative) != content:
                changes.write(root / relative, content)
        changes.keep(root / "uv.lock")
        run([os.environ.get("UV") or "uv", "lock"], cwd=root, what="uv lock")
    print(f"created {name} (package {names.package}, database {names.stem}):")
    for path in sorted(changes.written()):
        print(f"  {path.relative_to(root)}")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def next_port(root: Path) -> int:
    """The port for a new service: one past the highest port a service already has."""
    taken = [stack_port(p.parent) for p in (root / "services").glob("*/pyproject.toml")]
    return max(taken, default=FIRST_PORT - 1) + 1


def with_security_bodies(test_security: str, names: DomainNames) -> str:
    """The security matrix's BODIES with a valid body for the domain's create and update."""
    bodies = re.search(r"^BODIES: .* = \{\n(?:    .*\n)*(?=\}$)", test_security, re.MULTILINE)
    if bodies is None:
        raise ScaffoldError("tests/test_security.py has no `BODIES = {...}` to add the domain to")
    values = names.values()
    entries = (
        f'    "{values["create_operation"]}": {{"name": "First"}},\n'
        f'    "{values["update_operation"]}": {{"name": "Renamed"}},\n'
    )
    return test_security[: bodies.end()] + entries + test_security[bodies.end() :]


def with_first_party(pyproject: str, package: str) -> str:
    """The root ruff configuration with the new package in isort's first-party list."""
    line = re.search(r"^known-first-party = \[(.*)\]$", pyproject, re.MULTILINE)
    if line is None:
        raise ScaffoldError("pyproject.toml: no `known-first-party = [...]` line to extend")
    entries = re.findall(r'"([^"]+)"', line.group(1))
    services = [i for i, entry in enumerate(entries) if entry.endswith("_svc")]
    entries.insert(services[-1] + 1 if services else len(entries), package)
    listed = ", ".join(f'"{entry}"' for entry in entries)
    return pyproject[: line.start()] + f"known-first-party = [{listed}]" + pyproject[line.end() :]


def insert_sorted(text: str, pattern: str, line: str, key: str) -> str:
    """Insert `line` among the lines matching `pattern` (group 1 the sort key), in order."""
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    if not matches:
        raise ScaffoldError(f"no line matching {pattern!r} to insert {line!r} beside")
    after = [m for m in matches if m.group(1) > key]
    at = after[0].start() if after else matches[-1].end() + 1
    return text[:at] + line + "\n" + text[at:]


def with_compose_service(compose: str, names: ServiceNames, values: Mapping[str, str]) -> str:
    """Compose with the service's database, password, migrator and API."""
    databases = re.search(r"^(\s+SERVICE_DATABASES: )(.*)$", compose, re.MULTILINE)
    if databases is None:
        raise ScaffoldError("infra/docker-compose.yml: no SERVICE_DATABASES line")
    listed = " ".join(sorted({*databases.group(2).split(), names.stem}))
    compose = compose[: databases.start(2)] + listed + compose[databases.end(2) :]
    upper = names.stem.upper()
    compose = insert_sorted(
        compose,
        r"^      ([A-Z0-9_]+)_DB_PASSWORD: .*$",
        f"      {upper}_DB_PASSWORD: ${{{upper}_DB_PASSWORD:?set {upper}_DB_PASSWORD in "
        "infra/.env}",
        upper,
    )
    block = render(TEMPLATES / "service" / "compose.yml.tmpl", values)
    following = [
        m
        for m in re.finditer(r"^  ([a-z0-9_]+)-migrate:$", compose, re.MULTILINE)
        if m.group(1) > names.stem
    ]
    end = re.search(r"^volumes:$", compose, re.MULTILINE)
    if end is None:
        raise ScaffoldError("infra/docker-compose.yml: no top-level `volumes:`")
    at = following[0].start() if following else end.start()
    return compose[:at] + block + "\n" + compose[at:]


def with_env_example(example: str, names: ServiceNames, *, port: str) -> str:
    upper = names.stem.upper()
    example = insert_sorted(
        example,
        r"^([A-Z0-9_]+)_DB_PASSWORD=.*$",
        f"{upper}_DB_PASSWORD={names.stem}",
        upper,
    )
    return insert_sorted(
        example,
        r"^# STACK_((?!POSTGRES|NATS)[A-Z0-9_]+)_PORT=\d+$",
        f"# STACK_{upper}_PORT={port}",
        upper,
    )


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
