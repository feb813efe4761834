"""The services of the workspace as the local stack runs them, and the error it reports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import HOST
from monorepo import ServiceFacts, Workspace
from stack_state import ROOT

# The service that signs access tokens; the others verify them with its JWKS.
TOKEN_ISSUER_SERVICE = "users-svc"


class StackError(Exception):
    """Something the user must fix; the message says what, and nothing is left running."""


@dataclass(frozen=True)
class Service:
    """A service of the workspace, as the stack runs it: its facts, on the stack's port."""

    facts: ServiceFacts
    port: int

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def database(self) -> str:
        return self.facts.database

    @property
    def env_prefix(self) -> str:
        return self.facts.env_prefix

    @property
    def directory(self) -> Path:
        return self.facts.directory

    @property
    def app(self) -> str:
        return self.facts.app

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def discover_services(environ: Mapping[str, str] = os.environ) -> list[Service]:
    """Every service of the workspace, by name; `STACK_<DATABASE>_PORT` moves one's port."""
    services = []
    for facts in Workspace.load(ROOT).services():
        port = environ.get(f"STACK_{facts.database.upper()}_PORT")
        services.append(Service(facts, port=int(port) if port else facts.port))
    ports = [service.port for service in services]
    if len(set(ports)) != len(ports):
        raise StackError(f"two services share a port ({ports}): give each its own")
    return services
