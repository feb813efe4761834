"""`make up POOLER=1 REPLICAS=3`: the native stack shaped like a deployment.

- **POOLER**: Debian's PgBouncer in transaction mode between the services and Postgres
  (devstack.pgbouncer), each service told so (`<PREFIX>_DB_POOLER=pgbouncer`); the migrations
  still go straight to Postgres, in one session each.
- **REPLICAS**: that many processes per service, each on a port of its own, behind Debian's
  HAProxy on the service's usual port (devstack.haproxy), which sends a request only to replicas
  whose `/health/ready` answers, and retries a connection a dead one refused on another. A
  replica that dies is started again a second later, as a pod would be.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import supervisor
from devstack.haproxy import LoadBalancer
from devstack.pgbouncer import PgBouncer
from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port
from observability import METRICS_PORT_OFFSET

# The server connections PgBouncer keeps per database and role: every replica of a service shares
# them, whatever their number (docs/deployment.md: the connection budget).
POOL_SIZE = 20


@dataclass(frozen=True)
class Scale:
    pooler: bool = False
    replicas: int = 1


# One process per service, straight to Postgres: what `make up` runs by default.
SINGLE = Scale()


def pgbouncer(
    state_dir: Path, postgres: EmbeddedPostgres, passwords: Mapping[str, str]
) -> PgBouncer:
    """The pooler, checking each role's password (`passwords`) as the server behind it does."""
    return PgBouncer(
        state_dir / "pgbouncer",
        upstream=postgres.url(),
        pool_size=POOL_SIZE,
        passwords={"postgres": postgres.password or "", **passwords},
    )


def balancer(
    state_dir: Path, name: str, *, port: int, backends: Sequence[int] = ()
) -> LoadBalancer:
    return LoadBalancer(state_dir / f"haproxy-{name}", name=name, backends=backends, port=port)


def replica_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]


def replica_programs(
    name: str, directory: Path, app: str, ports: Sequence[int], *, metrics_setting: str
) -> list[supervisor.Program]:
    """One program per replica, started again a second after it exits: honcho would otherwise
    stop the whole stack when one process ends. On `make down` honcho signals each program's
    process group, the shell and uvicorn alike. Each replica serves its metrics on its own port
    plus METRICS_PORT_OFFSET (the `metrics_setting` variable), as a single process would."""
    programs = []
    for number, port in enumerate(ports, start=1):
        metrics = f"{metrics_setting}={port + METRICS_PORT_OFFSET}"
        command = f"{metrics} {shlex.join(supervisor.service_command(app, port))}"
        loop = f"while true; do {command}; sleep 1; done"
        programs.append(supervisor.Program(f"{name}-{number}", directory, ["bash", "-c", loop]))
    return programs


def stop(state_dir: Path, postgres: EmbeddedPostgres, services: Sequence[str]) -> None:
    """Whatever of a scaled stack still runs: every balancer, then the pooler."""
    for name in services:
        lb = balancer(state_dir, name, port=0)
        if lb.is_running():
            lb.stop()
    pooler = pgbouncer(state_dir, postgres, {})
    if pooler.is_running():
        pooler.stop()
