"""The edits `make new-service` and `make new-domain` make to files the repository shares, each
through the file's structure: TOML with tomlkit, YAML with ruamel.yaml (comments, anchors and
order kept), Python at a place its syntax tree gives."""

from __future__ import annotations

import ast
import io
from collections.abc import Callable
from typing import Any

import tomlkit
from ruamel.yaml import YAML

from scaffold_names import DomainNames, ScaffoldError, ServiceNames


def with_security_bodies(test_security: str, names: DomainNames) -> str:
    """The security matrix's BODIES with a valid body for the domain's create and update: two
    entries inserted before the line that closes the dict, found in the module's syntax tree."""
    bodies = [
        node.value
        for node in ast.parse(test_security).body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and any(
            isinstance(target, ast.Name) and target.id == "BODIES"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    if not bodies or not isinstance(bodies[0], ast.Dict) or bodies[0].end_lineno is None:
        raise ScaffoldError("tests/test_security.py has no `BODIES = {...}` to add the domain to")
    values = names.values()
    entries = [
        f'    "{values["create_operation"]}": {{"name": "First"}},\n',
        f'    "{values["update_operation"]}": {{"name": "Renamed"}},\n',
    ]
    lines = test_security.splitlines(keepends=True)
    closing = bodies[0].end_lineno - 1
    return "".join([*lines[:closing], *entries, *lines[closing:]])


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


def compose_yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def with_compose_service(compose: str, names: ServiceNames, block: str) -> str:
    """Compose with the service's database, password, and `block` (its migrator and API, rendered
    from the template), each in its sorted place.

    The template's entries use the file's own anchors (`*migrator`, `*api`), so they are read as
    one more top-level key of the same document, then moved under `services:`."""
    yaml = compose_yaml()
    # The key after the block keeps the blank line that ends it, as the file's other entries have.
    document = yaml.load(f"{compose}\nx-scaffold:\n{block}\nx-scaffold-end:\n")
    new = document.pop("x-scaffold")
    document.pop("x-scaffold-end")
    services = document["services"]
    postgres = services["postgres"]["environment"]
    postgres["SERVICE_DATABASES"] = " ".join(
        sorted({*postgres["SERVICE_DATABASES"].split(), names.stem})
    )
    upper = names.stem.upper()
    insert_sorted(
        postgres,
        f"{upper}_DB_PASSWORD",
        f"${{{upper}_DB_PASSWORD:?set {upper}_DB_PASSWORD in infra/.env}}",
        among=lambda key: key.endswith("_DB_PASSWORD"),
    )
    for key, value in new.items():
        insert_sorted(services, key, value, among=lambda key: key.endswith(("-migrate", "-svc")))
    text = io.StringIO()
    yaml.dump(document, text)
    return text.getvalue()


def insert_sorted(mapping: Any, key: str, value: Any, *, among: Callable[[str], bool]) -> None:
    """Put `key` among the keys `among` picks, in alphabetical order (after the last of them when
    it sorts after them all)."""
    keys = list(mapping)
    siblings = [i for i, existing in enumerate(keys) if among(existing)]
    if not siblings:
        raise ScaffoldError(f"no entry beside which to add {key!r}")
    later = [i for i in siblings if keys[i] > key]
    mapping.insert(later[0] if later else siblings[-1] + 1, key, value)
