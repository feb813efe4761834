"""Generate a new service, or a new domain in a service, ready to run and green from the start.

    uv run python tools/scaffold.py new-service orders-svc [--domain orders] [--singular order]
    uv run python tools/scaffold.py new-domain things-svc widgets [--singular widget]

copier renders tools/templates/service and tools/templates/domain (copier.yml: the questions and
the rules of a name) and records the answers and the template's commit in the service's folder,
so that `copier update` there brings it the template's later changes (docs/development.md). A new
service also joins the files the repository shares. A refused name changes nothing, and when a
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import copier
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from copier.errors import CopierError

from common.db import table_name_for
from monorepo import ServiceFacts, Workspace, service_stem
from scaffold_edits import (
    ScaffoldError,
    with_compose_service,
    with_dev_database,
    with_dev_postgres_database,
    with_env_lines,
    with_first_party,
    with_kubernetes_service,
    with_pgbouncer_databases,
    with_scrape_job,
    with_security_bodies,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path("tools/templates")
FIRST_PORT = 8000


@dataclass(frozen=True)
class Templates:
    """copier.yml and tools/templates/ of a checkout: at its HEAD commit, which the answers
    record for `copier update`, or as they are when the checkout is no git repository."""

    root: Path
    commit: str | None

    @classmethod
    def at(cls, root: Path) -> Templates:
        def git(*args: str) -> str:
            result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
            return result.stdout.strip() if result.returncode == 0 else ""

        if Path(git("rev-parse", "--show-toplevel") or "/").resolve() != root.resolve():
            return cls(root, commit=None)
        if git("status", "--porcelain", "--", "copier.yml", str(TEMPLATES)):
            raise ScaffoldError(
                f"copier.yml or {TEMPLATES}/ has uncommitted changes: commit them first, so that "
                "what is generated records the commit its template came from"
            )
        return cls(root, commit=git("rev-parse", "HEAD"))

    def render(
        self,
        template: str,
        destination: Path,
        answers: Mapping[str, Any],
        *,
        answers_file: str = ".copier-answers.yml",
        pretend: bool = False,
    ) -> copier.Worker:
        """`template` rendered with these answers in `destination`, once copier.yml's validators
        accept them; with `pretend`, only that check."""
        # The answers keep the templates' path as given: relative to the folder (../..), it holds
        # in every clone. copier reads it from the working directory.
        where = destination if destination.is_dir() else self.root
        try:
            with contextlib.chdir(where):
                return copier.run_copy(
                    os.path.relpath(self.root, where),
                    destination,
                    data={"template": template, **answers},
                    answers_file=answers_file,
                    vcs_ref=self.commit,
                    defaults=True,
                    quiet=True,
                    unsafe=True,  # copier.yml's tasks: ruff on what it renders
                    skip_tasks=pretend,
                    pretend=pretend,
                    cleanup_on_error=False,
                )
        except (CopierError, ValueError) as exc:
            raise ScaffoldError(str(exc)) from None


# copier.yml checks the form of each name; these, what it cannot see: Python, the repository.


def singular_of(plural: str) -> str:
    """English singular of a plural noun, for the common endings; "" when it is not plural (the
    validator of copier.yml's `item` then asks for the singular)."""
    if plural.endswith("ies") and len(plural) > 3:
        return plural[:-3] + "y"
    if plural.endswith(("sses", "shes", "ches", "xes", "zes")):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith("ss"):
        return plural[:-1]
    return ""


def refuse_clashing_words(domain: str, item: str) -> None:
    """A domain named like a name the domain template's code uses itself would clash with it.
    Those names are read from the templates, each Jinja tag taken for a name of the domain's."""
    used: set[str] = set()
    for template in (ROOT / TEMPLATES / "domain").rglob("*.py.jinja"):
        source = re.sub(r"{[{%#].*?[}%#]}", "zz", template.read_text(encoding="utf-8"))
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME and "zz" not in token.string:
                used.add(token.string)
    for word in (domain, item):
        if keyword.iskeyword(word) or word in used or f"{word}_id" in used:
            raise ScaffoldError(
                f"domain name {domain!r}: {word!r} is a Python keyword or a name the generated "
                "code already uses; choose another"
            )


def revision_id(seed: str) -> str:
    """Deterministic: the same service, domain and parent always give the same revision id."""
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


class Changes:
    """Files a command replaced or created; `rollback` puts every one back as it was."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._originals: dict[Path, bytes | None] = {}
        self._created: list[Path] = []

    def keep(self, path: Path) -> None:
        """Remember `path` as it is now (or missing), before something (uv lock) rewrites it."""
        self._originals.setdefault(path, path.read_bytes() if path.exists() else None)

    def edit(self, path: Path, edited: Callable[[str], str]) -> None:
        """`path` rewritten as `edited` gives it from its text."""
        self.keep(path)
        path.write_text(edited(read(path)), encoding="utf-8")

    @contextlib.contextmanager
    def creating(self, folder: Path) -> Iterator[None]:
        """What appears in `folder` meanwhile (copier's files) is new: rollback removes it."""
        before = {folder, *folder.rglob("*")} if folder.exists() else set()
        folder.mkdir(exist_ok=True)
        try:
            yield
        finally:
            self._created += sorted({folder, *folder.rglob("*")} - before)

    def written(self) -> list[Path]:
        return sorted({*self._originals, *(path for path in self._created if path.is_file())})

    def rollback(self) -> None:
        for path, original in self._originals.items():
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(original)
        for path in reversed(self._created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def applying(root: Path) -> Iterator[Changes]:
    """Changes that are all kept, or all undone when anything fails (Ctrl-C included)."""
    changes = Changes(root)
    try:
        yield changes
    except BaseException:
        written = changes.written()
        changes.rollback()
        if written:
            print("every file written was put back: nothing was changed", file=sys.stderr)
        raise


# -- a domain -------------------------------------------------------------------------------


def refuse_taken(service: ServiceFacts, domain: str) -> None:
    domains = service.directory / "src" / service.package / "domains"
    if (domains / domain).exists():
        raise ScaffoldError(f"{service.name} already has a domain {domain!r}")
    tables = {table for path in domains.glob("*/models.py") for table in model_tables(read(path))}
    if domain in tables or domain == "alembic_version":
        raise ScaffoldError(f"{service.name} already has a table {domain!r}")


def head(service: ServiceFacts) -> str | None:
    """The service's Alembic head, the revision a new domain's revision follows."""
    config = Config(toml_file=str(service.directory / "pyproject.toml"))
    try:
        return ScriptDirectory.from_config(config).get_current_head()
    except CommandError as exc:
        raise ScaffoldError(f"{service.name}'s migrations: {exc}") from None


def model_tables(source: str) -> set[str]:
    """The table of each model class in `source` (read, not imported: the service may not be
    installed yet): its `__tablename__`, or the one `common.db.table_name_for` gives its name."""
    tables = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.bases:
            table = table_name_for(node.name)
            for statement in node.body:
                match statement:
                    case ast.Assign(
                        targets=[ast.Name("__tablename__")], value=ast.Constant(str(explicit))
                    ):
                        table = explicit
            tables.add(table)
    return tables


def add_domain(
    changes: Changes,
    templates: Templates,
    service: ServiceFacts,
    *,
    domain: str,
    item: str,
    down_revision: str | None,
) -> None:
    """The domain's package, its tests and its revision after `down_revision`, rendered in the
    service's folder (its answers beside the service's), and its bodies in the security matrix."""
    answers = {
        "package": service.package,
        "domain": domain,
        "item": item,
        "revision": revision_id(f"{service.name}/{domain}/{down_revision}"),
        "down_revision": down_revision or "",
    }
    with changes.creating(service.directory):
        answers_file = f".copier-answers.{domain}.yml"
        templates.render("domain", service.directory, answers, answers_file=answers_file)
    security = service.directory / "tests" / "test_security.py"
    if security.exists():
        changes.edit(security, partial(with_security_bodies, domain=domain, item=item))


def new_domain(root: Path, service_name: str, domain: str, *, singular: str | None) -> None:
    services = {facts.name: facts for facts in Workspace.load(root).services()}
    if service_name not in services:
        raise ScaffoldError(f"no service {service_name!r} (there are: {', '.join(services)})")
    service = services[service_name]
    refuse_taken(service, domain)
    item = singular if singular is not None else singular_of(domain)
    refuse_clashing_words(domain, item)
    templates = Templates.at(root)
    with applying(root) as changes:
        down = head(service)
        add_domain(changes, templates, service, domain=domain, item=item, down_revision=down)
    print(f"created domain {domain} in {service.name}:")
    for path in changes.written():
        print(f"  {path.relative_to(root)}")


# -- a service ------------------------------------------------------------------------------


def new_service(root: Path, name: str, *, domain: str | None, singular: str | None) -> None:
    workspace = Workspace.load(root)
    directory = root / "services" / name
    package, database = name.replace("-", "_"), service_stem(name)
    domain = domain or database
    item = singular if singular is not None else singular_of(domain)
    templates = Templates.at(root)
    events_revision = revision_id(f"{name}/events")
    answers = {
        "service": name,
        "package": package,
        "database": database,
        # One past the highest port a service has: a new service moves no other one.
        "port": max((facts.port for facts in workspace.services()), default=FIRST_PORT - 1) + 1,
        "domain": domain,
        "item": item,
        "revision": events_revision,
    }
    if directory.exists() or name in workspace.members:
        raise ScaffoldError(f"{name} already exists: nothing was changed")
    templates.render("service", directory, answers, pretend=True)
    taken = {module for member in workspace.members for module in workspace.import_names(member)}
    if package in taken or importlib.util.find_spec(package) is not None:
        raise ScaffoldError(f"service name {name!r}: the import name {package} is taken")
    refuse_clashing_words(domain, item)

    with applying(root) as changes:
        with changes.creating(directory):
            worker = templates.render("service", directory, answers)
        service = ServiceFacts.read(directory)
        add_domain(
            changes, templates, service, domain=domain, item=item, down_revision=events_revision
        )

        def render(template: str) -> str:
            text = (root / TEMPLATES / template).read_text(encoding="utf-8")
            return worker.jinja_env.from_string(text).render(worker.answers.combined)

        join_the_repository(
            changes, workspace, answers, compose=render("compose-service.yml.jinja")
        )
        deploy_on_kubernetes(changes, answers, render=render)
        changes.keep(root / "uv.lock")
        uv = os.environ.get("UV") or "uv"
        lock = subprocess.run([uv, "lock"], cwd=root, capture_output=True, text=True)
        if lock.returncode != 0:
            raise ScaffoldError(f"uv lock failed:\n{(lock.stdout + lock.stderr).strip()}")
    print(f"created {name} (package {package}, database {database}):")
    for path in changes.written():
        print(f"  {path.relative_to(root)}")


def join_the_repository(
    changes: Changes, workspace: Workspace, answers: Mapping[str, Any], *, compose: str
) -> None:
    """The edits outside the new service's folder, each through its file's structure: the root
    ruff configuration, Compose (`compose`: its migrator and API), Prometheus's scrape jobs and
    infra/.env.example. `workspace` is the repository before the service joined it."""
    root, database = changes.root, answers["database"]
    changes.edit(root / "pyproject.toml", partial(with_first_party, package=answers["package"]))
    changes.edit(
        root / "infra" / "docker-compose.yml",
        partial(with_compose_service, database=database, block=compose),
    )
    prometheus = root / "infra" / "prometheus" / "prometheus.yml"
    changes.edit(prometheus, partial(with_scrape_job, service=answers["service"]))
    others = [facts.database for facts in workspace.services()]
    changes.edit(
        root / "infra" / ".env.example",
        partial(with_env_lines, database=database, port=answers["port"], services=others),
    )


def deploy_on_kubernetes(
    changes: Changes, answers: Mapping[str, Any], *, render: Callable[[str], str]
) -> None:
    """The service's folder in deploy/kubernetes/services/ (rendered from
    tools/templates/kubernetes-service/), and its place in both overlays, in PgBouncer's
    databases and in the dev overlay's Postgres (docs/deployment.md, "Adding a service")."""
    service, database = answers["service"], answers["database"]
    kubernetes = changes.root / "deploy" / "kubernetes"
    folder = kubernetes / "services" / service
    with changes.creating(folder):
        for name in ("kustomization.yaml", "deployment.yaml"):
            (folder / name).write_text(render(f"kubernetes-service/{name}.jinja"), encoding="utf-8")
    for overlay, tag in (("dev", "dev"), ("prod", "0.1.0")):
        path = kubernetes / "overlays" / overlay / "kustomization.yaml"
        changes.edit(path, partial(with_kubernetes_service, service=service, tag=tag))
    dev = kubernetes / "overlays" / "dev"
    changes.edit(
        dev / "kustomization.yaml",
        partial(with_dev_database, service=service, database=database),
    )
    changes.edit(
        dev / "postgres" / "statefulset.yaml",
        partial(with_dev_postgres_database, database=database),
    )
    for ini in (kubernetes / "base" / "pgbouncer" / "pgbouncer.ini", dev / "pgbouncer.ini"):
        changes.edit(ini, partial(with_pgbouncer_databases, database=database))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


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
