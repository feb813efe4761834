"""Find the domains of a service: every sub-package of its `domains` package.

Order is alphabetical, so routes and models load the same way on every machine. A domain that
fails to import, or has no `router`, stops the app from starting instead of vanishing quietly.
"""

import importlib
import importlib.util
import pkgutil
from types import ModuleType

from fastapi import APIRouter


class DiscoveryError(RuntimeError):
    pass


def domain_packages(package: str) -> list[ModuleType]:
    parent = importlib.import_module(package)
    names = sorted(info.name for info in pkgutil.iter_modules(parent.__path__) if info.ispkg)
    return [importlib.import_module(f"{package}.{name}") for name in names]


def discover_routers(package: str) -> list[APIRouter]:
    """Each domain's `router`, which every domain must export."""
    return _routers_named("router", package=package, required=True)


def discover_root_routers(package: str) -> list[APIRouter]:
    """Each domain's optional `root_router`: paths that must not sit under the API prefix,
    such as `/.well-known/...` (RFC 8615)."""
    return _routers_named("root_router", package=package, required=False)


def _routers_named(name: str, *, package: str, required: bool) -> list[APIRouter]:
    routers = []
    for domain in domain_packages(package):
        router = getattr(domain, name, None)
        if router is None and not required:
            continue
        if not isinstance(router, APIRouter):
            raise DiscoveryError(
                f"domain {domain.__name__} exports no APIRouter named `{name}` from its __init__.py"
            )
        routers.append(router)
    return routers


def load_models(package: str) -> list[ModuleType]:
    """Import every domain's `models` module, so its tables join the service's metadata."""
    loaded = []
    for domain in domain_packages(package):
        name = f"{domain.__name__}.models"
        if importlib.util.find_spec(name) is not None:
            loaded.append(importlib.import_module(name))
    return loaded
