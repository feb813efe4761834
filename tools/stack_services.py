"""The services of the workspace as the local stack runs them, and what a running stack leaves in
its folder (`.local/stack/`, git-ignored, or `STACK_DIR`) so that every later command finds it:
`state.json` says what runs; `ports.json` outlives `make down`, so the next `make up` serves
Postgres and every service where they were."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from devstack.processes import HOST
from monorepo import ServiceFacts, Workspace

ROOT = Path(__file__).resolve().parents[1]
# The stack's Postgres and NATS, natively and in Compose: beside a system server on 5432 or 4222,
# never on it. The services' development defaults point here.
DEFAULT_POSTGRES_PORT = 5433
DEFAULT_NATS_PORT = 4223
# The native stack's superuser, for its tools: its Postgres checks every login's password.
POSTGRES_PASSWORD = "postgres"
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
    services = [
        Service(**{**vars(facts), "port": int(port_setting(facts.database, facts.port, environ))})
        for facts in Workspace.load(ROOT).services()
    ]
    ports = [service.port for service in services]
    if len(set(ports)) != len(ports):
        raise StackError(f"two services share a port ({ports}): give each its own")
    return services


def port_setting(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    """`STACK_<NAME>_PORT` (`STACK_THINGS_PORT`, `STACK_THINGS_METRICS_PORT`), else `default`."""
    return int(environ.get(f"STACK_{name.upper()}_PORT") or default)


def state_dir() -> Path:
    return Path(os.environ.get("STACK_DIR") or ROOT / ".local" / "stack").resolve()


@dataclass
class State:
    """What a running stack left in its folder, so `down`, `ps`, `logs` and `dev` find it."""

    mode: str
    services: dict[str, int]  # name -> port
    postgres_port: int | None = None
    supervisor_pid: int | None = None
    # The supervisor and every process under it, with their start times: a process id reused
    # since (after a reboot, say) is never taken for one of ours.
    processes: list[tuple[int, float]] = field(default_factory=list)
    pooler_port: int | None = None  # PgBouncer's, with `make up POOLER=1`
    replicas: int = 1  # processes per service, behind a balancer when more than one
    prometheus_port: int | None = None  # with `make up OBSERVABILITY=1`
    nats_port: int | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        known = {name: raw[name] for name in raw.keys() & {f.name for f in fields(cls)}}
        known["processes"] = [(pid, started) for pid, started in raw.get("processes", [])]
        return cls(**known)


class Ports:
    """The ports a stack keeps between runs: `STACK_<NAME>_PORT` for one run, else the port it
    had last time, else the default."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "ports.json"
        try:
            self.remembered: dict[str, int] = json.loads(self.file.read_text())
        except (OSError, ValueError):
            self.remembered = {}

    def choose(self, name: str, default: int) -> int:
        return port_setting(name, self.remembered.get(name, default))

    def remember(self, chosen: dict[str, int]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps({**self.remembered, **chosen}, indent=2) + "\n")
        self.remembered.update(chosen)
