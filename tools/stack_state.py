"""What a running stack leaves in its folder, so every later command finds it again.

The folder is `.local/stack/` (git-ignored), or `STACK_DIR`. `state.json` says what runs: the
mode, each service's port, Postgres's and NATS's ports, the supervisor and its processes.
`ports.json` outlives `make down`: the next `make up` serves Postgres and every service where
they were.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# The stack's Postgres, natively and in Compose: beside a system Postgres on 5432, never on it.
# The services' development defaults (`<PREFIX>_DATABASE_URL`) point here.
DEFAULT_POSTGRES_PORT = 5433
# The stack's NATS: beside a system NATS on 4222. The services' `<PREFIX>_NATS_URL` default too.
DEFAULT_NATS_PORT = 4223
# The native stack's superuser, for its tools: its Postgres checks every login's password.
POSTGRES_PASSWORD = "postgres"


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
    # Set when the observability profile runs (`make up OBSERVABILITY=1`).
    prometheus_port: int | None = None
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
    had last time, else the default (Postgres 5433, a service its `[tool.stack] port`)."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "ports.json"
        try:
            self.remembered: dict[str, int] = json.loads(self.file.read_text())
        except (OSError, ValueError):
            self.remembered = {}

    def choose(self, name: str, default: int) -> int:
        """The port of `name` (`postgres`, or a service's database name: `things`)."""
        override = os.environ.get(f"STACK_{name.upper()}_PORT")
        return int(override) if override else self.remembered.get(name, default)

    def remember(self, chosen: dict[str, int]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps({**self.remembered, **chosen}, indent=2) + "\n")
        self.remembered.update(chosen)
