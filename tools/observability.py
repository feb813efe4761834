"""The native stack's observability: Prometheus scraping every service's metrics endpoint.

Natively (`make up OBSERVABILITY=1`), Debian's `prometheus` runs under the stack's supervisor
with a scrape configuration written into the stack's folder from the services it runs. (Compose's
`--profile observability` runs the official image on infra/prometheus/prometheus.yml, a file
people own, where `make new-service` adds a new service's job.)

Each service serves its metrics on a port of its own: in Compose the production port (9000) of
its container, natively its API port + 1000 (`STACK_<NAME>_METRICS_PORT` for another one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

import supervisor
from devstack.processes import port_is_free
from stack_state import HOST

# Natively, a service's metrics are served at its API port plus this.
METRICS_PORT_OFFSET = 1000
PROMETHEUS_PORT = 9090
# Short enough that a request shows on the dashboard within seconds.
SCRAPE_INTERVAL = "5s"


class ObservabilityError(Exception):
    """Something the user must fix; the message says what (tools/stack.py prints it)."""


def metrics_port(database: str, port: int, environ: Mapping[str, str] = os.environ) -> int:
    """Where the native stack serves a service's metrics (`database` names it: `things`)."""
    chosen = environ.get(f"STACK_{database.upper()}_METRICS_PORT")
    return int(chosen) if chosen else port + METRICS_PORT_OFFSET


def prometheus_port(environ: Mapping[str, str] = os.environ) -> int:
    return int(environ.get("STACK_PROMETHEUS_PORT") or PROMETHEUS_PORT)


def scrape_config(targets: Mapping[str, Sequence[str]], *, interval: str = SCRAPE_INTERVAL) -> str:
    """Prometheus's configuration: one job per service (its name), scraping each `host:port`
    (one per replica)."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": name,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(hosts)}],
            }
            for name, hosts in sorted(targets.items())
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


@dataclass(frozen=True)
class Prometheus:
    """Debian's prometheus in the native stack, its data and configuration in `folder`."""

    folder: Path
    port: int
    program: supervisor.Program

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @classmethod
    def for_stack(cls, state_dir: Path, metrics_ports: Mapping[str, Sequence[int]]) -> Prometheus:
        """Prometheus scraping each service's metrics ports (one per replica) on loopback, ready
        to be supervised; its configuration written."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise ObservabilityError(
                "OBSERVABILITY=1 needs Prometheus: install Debian's (apt-get install prometheus)"
            )
        port = prometheus_port()
        if not port_is_free(HOST, port):
            raise ObservabilityError(
                f"port {port} on {HOST} is already in use: Prometheus cannot listen there; "
                "choose another with STACK_PROMETHEUS_PORT"
            )
        folder = state_dir / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        targets = {
            name: [f"{HOST}:{port}" for port in ports] for name, ports in metrics_ports.items()
        }
        config.write_text(scrape_config(targets))
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            "--log.level=warn",
        ]
        return cls(folder, port, supervisor.Program("prometheus", folder, command))
