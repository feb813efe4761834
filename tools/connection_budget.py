"""How many Postgres connections the Kubernetes deployment can open, with and without PgBouncer,
at the autoscaler's maximum and during a rollout; and the PgBouncer pool size that fits.

connections = replicas x (pool + overflow) per service, + the migrators, against
`max_connections`. The figures come from the shipped manifests (tools/kubernetes_*.py) and the
services' default settings (common.settings), so the table in docs/deployment.md is this
module's output (`make manifests-budget`) and a test keeps the pooled total under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import AppBaseSettings
from kubernetes_objects import (
    MAX_REPLICAS,
    MIN_REPLICAS,
)
from kubernetes_platform import MIGRATE_POOL_SIZE, PGBOUNCER_REPLICAS

# Postgres's defaults: `max_connections` and `superuser_reserved_connections`.
MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
# Sessions kept free for people and tools: psql, monitoring, backups, a second migrator.
HEADROOM = 7
# maxSurge 100%: during a rollout the new release runs beside the old one.
ROLLOUT_FACTOR = 2


def app_pool() -> int:
    """Connections one service process may open: both pools, each with its overflow."""
    fields = AppBaseSettings.model_fields
    pools = fields["db_pool_size"].default + fields["db_read_pool_size"].default
    overflow: int = fields["db_max_overflow"].default
    return int(pools + 2 * overflow)


@dataclass(frozen=True)
class Budget:
    services: int

    @property
    def available(self) -> int:
        """What the pooler may use: the server's connections less the reserved and headroom."""
        return MAX_CONNECTIONS - SUPERUSER_RESERVED - HEADROOM

    @property
    def pgbouncer_pool_size(self) -> int:
        """Server connections per service database and PgBouncer replica (transaction mode)."""
        share = self.available // (PGBOUNCER_REPLICAS * self.services)
        return max(share - MIGRATE_POOL_SIZE, 1)

    @classmethod
    def for_services(cls, services: int) -> Budget:
        return cls(services=max(services, 1))

    def direct(self, replicas: int, *, rollout: bool) -> int:
        """Without a pooler: every process's pools, and one migrator per starting pod."""
        pods = self.services * replicas * (ROLLOUT_FACTOR if rollout else 1)
        return pods * app_pool() + (pods if rollout else 0)

    def pooled_server(self) -> int:
        """With PgBouncer: its pools are the bound, whatever the number of pods."""
        return PGBOUNCER_REPLICAS * self.services * (self.pgbouncer_pool_size + MIGRATE_POOL_SIZE)

    def pooled_clients(self) -> int:
        """Client connections PgBouncer accepts at the peak (its `max_client_conn` is 2000)."""
        pods = self.services * MAX_REPLICAS * ROLLOUT_FACTOR
        return pods * (app_pool() + 1)

    def fits(self) -> bool:
        return self.pooled_server() <= self.available

    def table(self) -> str:
        limit = MAX_CONNECTIONS - SUPERUSER_RESERVED
        rows = [
            (
                "direct, HPA minimum",
                f"{self.services} x {MIN_REPLICAS} x {app_pool()}",
                self.direct(MIN_REPLICAS, rollout=False),
            ),
            (
                "direct, HPA maximum",
                f"{self.services} x {MAX_REPLICAS} x {app_pool()}",
                self.direct(MAX_REPLICAS, rollout=False),
            ),
            (
                "direct, rollout at the maximum",
                f"{self.services} x {MAX_REPLICAS} x {ROLLOUT_FACTOR} x ({app_pool()} + 1 "
                "migrator)",
                self.direct(MAX_REPLICAS, rollout=True),
            ),
            (
                "PgBouncer, any replica count",
                f"{PGBOUNCER_REPLICAS} x {self.services} x ({self.pgbouncer_pool_size} + "
                f"{MIGRATE_POOL_SIZE} migrate)",
                self.pooled_server(),
            ),
        ]
        lines = [
            f"services: {self.services}; per process: db_pool_size + db_read_pool_size + 2 x "
            f"db_max_overflow = {app_pool()}; HPA {MIN_REPLICAS}..{MAX_REPLICAS}; PgBouncer "
            f"replicas {PGBOUNCER_REPLICAS}, pool_size {self.pgbouncer_pool_size} per database",
            f"Postgres max_connections {MAX_CONNECTIONS}, {SUPERUSER_RESERVED} reserved: {limit} "
            f"for clients, {self.available} after {HEADROOM} kept for people and tools",
            "",
            "| case | computation | server connections | fits |",
            "|---|---|---:|---|",
        ]
        for case, computation, total in rows:
            fits = "yes" if total <= self.available else "no"
            lines.append(f"| {case} | {computation} | {total} | {fits} |")
        lines.append(
            f"| (PgBouncer's clients at the peak) | {self.services} x {MAX_REPLICAS} x "
            f"{ROLLOUT_FACTOR} x ({app_pool()} + 1) | {self.pooled_clients()} client "
            "connections | max_client_conn 2000 |"
        )
        return "\n".join(lines)
