"""How many Postgres connections a Kubernetes overlay can open, with and without PgBouncer, at the
autoscalers' maximum and during a rollout.

    uv run python tools/connection_budget.py [--overlay prod]   # `make manifests-budget`

Everything is read from what `kubectl kustomize` renders: the services (the Deployments labelled
`app.kubernetes.io/component: api`), their autoscalers, the pool settings their containers set
(else `common.settings`' defaults), PgBouncer's replicas and the pools of its `pgbouncer.ini`.
Only Postgres's `max_connections` is assumed: its default, as a managed server starts. Exits 1
when PgBouncer's pools do not fit.
"""

from __future__ import annotations

import argparse
import configparser
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.settings import AppBaseSettings
from render_manifests import OVERLAYS_DIR, render

# Postgres's defaults: `max_connections` and `superuser_reserved_connections`.
MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
# Sessions kept free for people and tools: psql, monitoring, backups, a second migrator.
HEADROOM = 7
AVAILABLE = MAX_CONNECTIONS - SUPERUSER_RESERVED - HEADROOM
# maxSurge 100%: during a rollout the new release runs beside the old one.
ROLLOUT_FACTOR = 2


@dataclass(frozen=True)
class Service:
    name: str
    min_replicas: int
    max_replicas: int
    pool: int  # connections one process may open: both pools, each with its overflow


@dataclass(frozen=True)
class Budget:
    services: list[Service]
    pgbouncer_replicas: int
    pgbouncer_pools: dict[str, int]  # server connections per database, per PgBouncer replica

    @classmethod
    def of(cls, documents: list[dict[str, Any]]) -> Budget:
        def of_kind(kind: str) -> list[dict[str, Any]]:
            return [d for d in documents if d["kind"] == kind]

        autoscalers = {
            h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler")
        }
        services = []
        for deployment in of_kind("Deployment"):
            if deployment["metadata"]["labels"].get("app.kubernetes.io/component") != "api":
                continue
            name = deployment["metadata"]["name"]
            spec = autoscalers[name]["spec"]
            api = deployment["spec"]["template"]["spec"]["containers"][0]
            services.append(Service(name, spec["minReplicas"], spec["maxReplicas"], pool_of(api)))
        pgbouncer = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "pgbouncer")
        config = next(
            c for c in of_kind("ConfigMap") if c["metadata"]["name"].startswith("pgbouncer-config")
        )
        return cls(
            services=sorted(services, key=lambda s: s.name),
            pgbouncer_replicas=pgbouncer["spec"]["replicas"],
            pgbouncer_pools=pools_of(config["data"]["pgbouncer.ini"]),
        )

    def direct(self, *, at_max: bool, rollout: bool) -> int:
        """Without a pooler: every process's pools, and one migrator per starting pod."""
        factor = ROLLOUT_FACTOR if rollout else 1
        return sum(
            (s.max_replicas if at_max else s.min_replicas) * factor * (s.pool + rollout)
            for s in self.services
        )

    def pooled(self) -> int:
        """With PgBouncer: its pools bound the server side, whatever the number of pods."""
        return self.pgbouncer_replicas * sum(self.pgbouncer_pools.values())

    def fits(self) -> bool:
        return self.pooled() <= AVAILABLE

    def table(self) -> str:
        pools = ", ".join(f"{db} {size}" for db, size in self.pgbouncer_pools.items())
        rows = [
            ("direct, HPA minimum", self.direct(at_max=False, rollout=False)),
            ("direct, HPA maximum", self.direct(at_max=True, rollout=False)),
            (
                "direct, rollout at the maximum (+1 migrator a pod)",
                self.direct(at_max=True, rollout=True),
            ),
            (f"PgBouncer: {self.pgbouncer_replicas} replicas x ({pools})", self.pooled()),
        ]
        lines = [
            *(
                f"{s.name}: HPA {s.min_replicas}..{s.max_replicas}, {s.pool} connections a process"
                for s in self.services
            ),
            f"Postgres max_connections {MAX_CONNECTIONS}: {AVAILABLE} after {SUPERUSER_RESERVED} "
            f"reserved and {HEADROOM} kept for people and tools",
            "",
            "| case | server connections | fits |",
            "|---|---:|---|",
            *(
                f"| {case} | {total} | {'yes' if total <= AVAILABLE else 'no'} |"
                for case, total in rows
            ),
        ]
        return "\n".join(lines)


def pool_of(container: dict[str, Any]) -> int:
    """A process's connections: the container's pool settings (`<PREFIX>_DB_POOL_SIZE`, ...),
    else the defaults every service inherits."""
    settings = {
        field: int(AppBaseSettings.model_fields[field].default)
        for field in ("db_pool_size", "db_read_pool_size", "db_max_overflow")
    }
    for variable in container.get("env", []):
        for field in settings:
            if variable["name"].endswith(f"_{field.upper()}") and "value" in variable:
                settings[field] = int(variable["value"])
    return (
        settings["db_pool_size"] + settings["db_read_pool_size"] + 2 * settings["db_max_overflow"]
    )


def pools_of(ini: str) -> dict[str, int]:
    """Each database's `pool_size` in a pgbouncer.ini, else its `default_pool_size`."""
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.read_string(ini)
    default = parser.getint("pgbouncer", "default_pool_size", fallback=20)
    pools = {}
    for database, entry in parser.items("databases"):
        options = dict(part.split("=", 1) for part in shlex.split(entry) if "=" in part)
        pools[database] = int(options.get("pool_size", default))
    return pools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", default="prod", help="an overlay of deploy/kubernetes/")
    args = parser.parse_args(argv)
    budget = Budget.of(render(Path(OVERLAYS_DIR / args.overlay)))
    print(budget.table())
    if not budget.fits():
        print(
            f"PgBouncer's pools ({budget.pooled()}) do not fit the {AVAILABLE} connections: "
            "lower default_pool_size in pgbouncer.ini, or raise Postgres's max_connections",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
