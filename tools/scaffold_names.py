"""The names `make new-service` and `make new-domain` take, checked before anything is written:
a service's (orders-svc: package, database, settings prefix) and a domain's (plural and singular,
and the words the templates derive from them)."""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from string import Template

from common.db import table_name_for
from common.settings import API_PREFIX
from monorepo import service_stem

TEMPLATES = Path(__file__).resolve().parent / "templates"

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


class ScaffoldError(Exception):
    """A name or a repository the generator refuses; the message says why and what to do."""


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
