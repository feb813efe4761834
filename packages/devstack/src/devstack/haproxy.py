"""Debian's HAProxy on one port in front of the replicas of a service: what a Kubernetes Service
does for a Deployment's pods, for `make up REPLICAS=3`.

`LoadBalancer(folder, name=..., backends=[8101, 8102, 8103], port=8001)` writes `haproxy.cfg`
into `folder`, starts HAProxy as a daemon and stops it; its pid file is in `folder`, so another
process stops it with `LoadBalancer(folder, name=...).stop()`. Each replica is checked on
`/health/ready` every half second, as a readiness probe: one that stops answering leaves the
rotation after two failed checks. A request whose connection a dead replica refused was never
received, so it is sent to another replica (`retry-on conn-failure`, `option redispatch`); a
request already sent to a replica that then dies is not sent again (it may have been a write
that took place), and answers 502.

Why a balancer rather than uvicorn's `--workers`: workers share one listening socket and have no
readiness check, so a worker whose database check fails keeps receiving requests; replicas here
are what Kubernetes runs, independent processes each started as its image starts it (`python -m
common.serve`), each with its own pools, taken out of rotation by the same `/health/ready`.

Development only: a loopback balancer for a local stack, never a production one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from devstack.processes import HOST, free_port
from devstack.server import PidFileDaemon

HAPROXY = "haproxy"
# Longer than a service's slowest answer (its command timeout and pool timeout together).
SERVER_TIMEOUT_SECONDS = 30
CHECK_INTERVAL_MS = 500


class LoadBalancerError(RuntimeError):
    """HAProxy could not do what was asked; the message says why, for a user."""


class LoadBalancer(PidFileDaemon):
    """HAProxy on `host:port`, spreading HTTP requests over `backends` (loopback ports)."""

    program = HAPROXY
    label = "HAProxy"
    error = LoadBalancerError

    def __init__(
        self,
        folder: Path,
        *,
        name: str,
        backends: Sequence[int] = (),
        port: int | None = None,
        host: str = HOST,
        check_path: str = "/health/ready",
    ) -> None:
        self.folder = folder.resolve()
        self.name = name
        self.backends = list(backends)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.check_path = check_path
        self.pid_file = self.folder / "haproxy.pid"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.folder / "haproxy.cfg"

    def config(self) -> str:
        servers = [
            f"    server {self.name}-{index} {HOST}:{port} check"
            for index, port in enumerate(self.backends, start=1)
        ]
        return (
            "\n".join(
                [
                    "global",
                    f"    pidfile {self.pid_file}",
                    "",
                    "defaults",
                    "    mode http",
                    "    timeout connect 1s",
                    f"    timeout client {SERVER_TIMEOUT_SECONDS}s",
                    f"    timeout server {SERVER_TIMEOUT_SECONDS}s",
                    # A refused connection never reached the replica: safe to send elsewhere.
                    "    retries 3",
                    "    retry-on conn-failure",
                    "    option redispatch 1",
                    "",
                    f"frontend {self.name}",
                    f"    bind {self.host}:{self.port}",
                    f"    default_backend {self.name}-replicas",
                    "",
                    f"backend {self.name}-replicas",
                    "    balance roundrobin",
                    f"    option httpchk GET {self.check_path}",
                    "    http-check expect status 200",
                    f"    default-server inter {CHECK_INTERVAL_MS}ms fall 2 rise 1",
                    *servers,
                ]
            )
            + "\n"
        )

    def start(self, *, timeout_seconds: float = 10.0) -> None:
        """Write the configuration, check it, start the daemon, wait until it listens."""
        if not self.backends:
            raise LoadBalancerError("a load balancer needs at least one backend")
        if self.is_running():
            raise LoadBalancerError(f"HAProxy already runs from {self.folder}")
        self._refuse_a_taken_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config(), encoding="utf-8")
        self.pid_file.unlink(missing_ok=True)
        for mode in ("-c", "-D"):  # check the configuration, then start as a daemon
            result = subprocess.run(
                [self.binary(), mode, "-q", "-f", str(self.config_file)],
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout_seconds,
            )
            if result.returncode != 0:
                raise LoadBalancerError(f"haproxy {mode} failed: {result.stderr.strip()}")
        if not self.listening_within(timeout_seconds):
            raise LoadBalancerError(f"haproxy did not start in {timeout_seconds:.0f}s")
