"""The edits `make new-service` and `make new-domain` make to files the repository shares and
people own, each through the file's structure: TOML with tomlkit, YAML with ruamel.yaml (comments,
anchors and order kept), dotenv with python-dotenv's parser, Python at a place its syntax tree
gives."""

from __future__ import annotations

import ast
import configparser
import io
from collections.abc import Callable, Collection
from typing import Any

import tomlkit
from dotenv.parser import parse_stream
from ruamel.yaml import YAML

from common.settings import METRICS_PORT


class ScaffoldError(Exception):
    """A name or a repository the generator refuses; the message says why and what to do."""


def with_security_bodies(test_security: str, *, domain: str, item: str) -> str:
    """The security matrix's BODIES with a valid body for the domain's create and update: two
    entries inserted before the brace that closes the dict, found in the module's syntax tree."""
    for node in ast.parse(test_security).body:
        match node:
            case (
                ast.Assign(targets=[ast.Name("BODIES")], value=ast.Dict() as bodies)
                | ast.AnnAssign(target=ast.Name("BODIES"), value=ast.Dict() as bodies)
            ) if bodies.end_lineno is not None:
                break
    else:
        raise ScaffoldError("tests/test_security.py has no `BODIES = {...}` to add the domain to")
    # Operation ids are route names (common.openapi.operation_id).
    create, update = f"create_{item}", f"update_{item}"
    entries = f'    "{create}": {{"name": "First"}},\n    "{update}": {{"name": "Renamed"}},\n'
    lines = test_security.splitlines(keepends=True)
    row, column = bodies.end_lineno - 1, (bodies.end_col_offset or 1) - 1
    before, after = lines[row][:column], lines[row][column:]
    # An empty dict is written `{}`: its entries go on lines of their own.
    lines[row] = before + ("\n" if before.strip() else "") + entries + after
    return "".join(lines)


def with_first_party(pyproject: str, package: str) -> str:
    """The root ruff configuration with the new package in isort's first-party list, after the
    services already there."""
    document = tomlkit.parse(pyproject)
    try:
        listed = document["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    except KeyError:
        raise ScaffoldError("pyproject.toml: no [tool.ruff.lint.isort] known-first-party") from None
    entries = [str(entry) for entry in listed]
    services = [i for i, entry in enumerate(entries) if entry.endswith("_svc")]
    listed.insert(services[-1] + 1 if services else len(entries), package)
    return tomlkit.dumps(document)


# Round-trip YAML in the layout of the repository's hand-written files.
YAML_FILES = YAML()
YAML_FILES.preserve_quotes = True
YAML_FILES.width = 4096
YAML_FILES.indent(mapping=2, sequence=4, offset=2)


def dump(document: Any) -> str:
    text = io.StringIO()
    YAML_FILES.dump(document, text)
    return text.getvalue()


def with_compose_service(compose: str, *, database: str, block: str) -> str:
    """Compose with the service's database, password, and `block` (its migrator and API, rendered
    from tools/templates/compose-service.yml.jinja), each in its sorted place.

    The block's entries use the file's own anchors (`*migrator`, `*api`), so they are read as one
    more top-level key of the same document, then moved under `services:`."""
    # The key after the block keeps the blank line that ends it, as the file's other entries have.
    document = YAML_FILES.load(f"{compose}\nx-scaffold:\n{block}\nx-scaffold-end:\n")
    new = document.pop("x-scaffold")
    document.pop("x-scaffold-end")
    services = document["services"]
    postgres = services["postgres"]["environment"]
    postgres["SERVICE_DATABASES"] = with_database(postgres["SERVICE_DATABASES"], database)
    password = f"{database.upper()}_DB_PASSWORD"
    value = f"${{{password}:?set {password} in infra/.env}}"
    place = sorted_place(list(postgres), password, among=lambda key: key.endswith("_DB_PASSWORD"))
    postgres.insert(place, password, value)
    for key, value in new.items():
        place = sorted_place(
            list(services), key, among=lambda key: key.endswith(("-migrate", "-svc"))
        )
        services.insert(place, key, value)
    return dump(document)


def with_scrape_job(prometheus: str, service: str) -> str:
    """Prometheus's configuration (Compose's observability profile) with a job scraping the
    service's metrics port inside Compose's network, in its sorted place among the services'."""
    document = YAML_FILES.load(prometheus)
    job = {
        "job_name": service,
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [f"{service}:{METRICS_PORT}"]}],
    }
    add_sorted(document["scrape_configs"], job, key="job_name", among=lambda n: n.endswith("-svc"))
    return dump(document)


def with_env_lines(example: str, *, database: str, port: int, services: Collection[str]) -> str:
    """infra/.env.example with the service's database and NATS passwords (its role's name, as
    the services' development defaults have it) and, commented out, its port on the host: each
    among the other services' (`services`: their databases), in alphabetical order."""
    upper = database.upper()
    lines = example.splitlines(keepends=True)
    added = {
        "{}_DB_PASSWORD": f"{upper}_DB_PASSWORD={database}\n",
        "{}_NATS_PASSWORD": f"{upper}_NATS_PASSWORD={database}\n",
        "STACK_{}_PORT": f"# STACK_{upper}_PORT={port}\n",
    }
    for name, line in added.items():
        siblings = {name.format(other.upper()) for other in services}
        keys = [variable(existing) or "" for existing in lines]
        lines.insert(sorted_place(keys, name.format(upper), among=siblings.__contains__), line)
    return "".join(lines)


def variable(line: str) -> str | None:
    """The variable a line of a dotenv file sets, or shows commented out (`# NAME=value`)."""
    bindings = list(parse_stream(io.StringIO(line.removeprefix("# "))))
    return bindings[0].key if bindings and not bindings[0].error else None


def add_sorted(
    entries: Any, entry: Any, *, key: str | None = None, among: Callable[[str], bool]
) -> None:
    """Put `entry` in a YAML list among the entries `among` picks, in alphabetical order: of the
    entries themselves, or of their `key`."""
    names = [str(existing if key is None else existing[key]) for existing in entries]
    entries.insert(sorted_place(names, entry if key is None else entry[key], among=among), entry)


def sorted_place(keys: list[str], key: str, *, among: Callable[[str], bool]) -> int:
    """Where `key` goes among the keys `among` picks: before the first that sorts after it, else
    after the last of them."""
    siblings = [i for i, existing in enumerate(keys) if among(existing)]
    if not siblings:
        raise ScaffoldError(f"no entry beside which to add {key!r}")
    later = [i for i in siblings if keys[i] > key]
    return later[0] if later else siblings[-1] + 1


def with_database(databases: str, database: str) -> str:
    """A `SERVICE_DATABASES` value, the names Postgres's init script creates, with one more."""
    return " ".join(sorted({*str(databases).split(), database}))


def with_kubernetes_service(overlay: str, *, service: str, tag: str) -> str:
    """An overlay's kustomization deploying the service too: its folder among the services'
    `resources`, its image among the `images`, each in its sorted place."""
    document = YAML_FILES.load(overlay)
    folder = f"../../services/{service}"
    add_sorted(document["resources"], folder, among=lambda r: r.startswith("../../services/"))
    image = {"name": service, "newTag": tag}
    add_sorted(document["images"], image, key="name", among=lambda name: name.endswith("-svc"))
    return dump(document)


def with_dev_database(overlay: str, *, service: str, database: str) -> str:
    """The dev overlay's kustomization with the service's role in PgBouncer's userlist and its
    database URLs (no password: the dev Postgres trusts its one client, PgBouncer), and its
    NATS password."""
    document = YAML_FILES.load(overlay)
    generators = document["secretGenerator"]
    userlist = next(g for g in generators if g["name"] == "pgbouncer-userlist")["literals"]
    userlist[0] = type(userlist[0])(f'{userlist[0].rstrip()}\n"{database}" ""\n')
    server = f"postgresql+asyncpg://{database}@pgbouncer:5432"
    literals = [f"url={server}/{database}", f"migrate-url={server}/{database}_migrate"]
    generator = {"name": f"{service}-database", "literals": literals}
    add_sorted(generators, generator, key="name", among=lambda name: name.endswith("-database"))
    nats = {"name": f"{service}-nats", "literals": [f"password={database}-dev-only"]}
    add_sorted(generators, nats, key="name", among=lambda name: name.endswith("-nats"))
    return dump(document)


def with_dev_postgres_database(statefulset: str, *, database: str) -> str:
    """The dev Postgres with the service's database in SERVICE_DATABASES and its (unused)
    password, which the init script asks for."""
    document = YAML_FILES.load(statefulset)
    env = document["spec"]["template"]["spec"]["containers"][0]["env"]
    databases = next(variable for variable in env if variable["name"] == "SERVICE_DATABASES")
    databases["value"] = with_database(databases["value"], database)
    password = {"name": f"{database.upper()}_DB_PASSWORD", "value": f"unused-{database}"}
    add_sorted(env, password, key="name", among=lambda name: name.endswith("_DB_PASSWORD"))
    return dump(document)


def with_pgbouncer_databases(ini: str, *, database: str) -> str:
    """A pgbouncer.ini whose [databases] also serve the service: its database, pooled per
    transaction as the others are, and its migrator's session entry, after the others.

    The new lines copy the first service database's entries with the names changed, so the
    pooling a person chose for the others applies to the new one too."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini)
    entries = list(parser["databases"].items())
    if not entries:
        raise ScaffoldError("pgbouncer.ini: no database in [databases] to model the new one on")
    model, model_entry = entries[0]
    migrate = parser["databases"].get(f"{model}_migrate")
    if migrate is None:
        raise ScaffoldError(f"pgbouncer.ini: no {model}_migrate entry to model the new one on")
    added = [
        f"{database} = {model_entry.replace(f'dbname={model}', f'dbname={database}')}\n",
        f"{database}_migrate = {migrate.replace(f'dbname={model}', f'dbname={database}')}\n",
    ]
    lines = ini.splitlines(keepends=True)
    start = lines.index("[databases]\n") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    last = max(i for i in range(start, end) if lines[i].partition("=")[0].strip() in dict(entries))
    return "".join([*lines[: last + 1], *added, *lines[last + 1 :]])
