"""The services of the workspace as the local stack runs them, and the error it reports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from devstack.processes import HOST
from monorepo import ServiceFacts, Workspace
from stack_state import ROOT

# The service that signs access tokens; the others verify them with its JWKS.
TOKEN_ISSUER_SERVICE = "users-svc"


class StackError(Exception):
    """Something the user must fix; the message says what, and nothing is left running."""


@dataclass(frozen=True)
class Service(ServiceFacts):
    """A service of the workspace, as the stack runs it: on its port, or `STACK_<DB>_PORT`."""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def password(self) -> str:
        """Its role's password on the native stack's loopback-only server: its name, as in
        infra/.env.example."""
        return self.database


def discover_services(environ: Mapping[str, str] = os.environ) -> list[Service]:
    """Every service of the workspace, by name; `STACK_<DATABASE>_PORT` moves one's port."""
    services = []
    for facts in Workspace.load(ROOT).services():
        port = environ.get(f"STACK_{facts.database.upper()}_PORT")
        chosen = int(port) if port else facts.port
        services.append(Service(**{**vars(facts), "port": chosen}))
    ports = [service.port for service in services]
    if len(set(ports)) != len(ports):
        raise StackError(f"two services share a port ({ports}): give each its own")
    return services
