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

Replicas change while it runs through its runtime API (a stats socket in `folder`), as `make
rollout` does: `add` puts a new one in rotation once its check passes, `drain` takes one out and
waits until what it has in flight is answered, `delete` forgets it once its process is gone.

Why a balancer rather than uvicorn's `--workers`: workers share one listening socket and have no
readiness check, so a worker whose database check fails keeps receiving requests; replicas here
are what Kubernetes runs, independent processes each started as its image starts it (`python -m
common.serve`), each with its own pools, taken out of rotation by the same `/health/ready`.

Development only: a loopback balancer for a local stack, never a production one.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from devstack.processes import HOST, free_port
from devstack.server import PidFileDaemon

HAPROXY = "haproxy"
# Longer than a service's slowest answer (its command timeout and pool timeout together).
SERVER_TIMEOUT_SECONDS = 30
CHECK_INTERVAL_MS = 500
# Each server's, in the configuration and as `add` adds one (a server added at run time takes
# nothing from `default-server`).
SERVER_OPTIONS = f"check inter {CHECK_INTERVAL_MS}ms fall 2 rise 1"


class Server(NamedTuple):
    """A replica as HAProxy sees it: its port, its state (UP, DOWN, MAINT, ...), the requests it
    has in flight."""

    port: int
    status: str
    in_flight: int


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
        self.socket_file = self.folder / "haproxy.sock"
        self.backend = f"{name}-replicas"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.folder / "haproxy.cfg"

    def config(self) -> str:
        servers = [
            f"    server {self.name}-{index} {HOST}:{port} {SERVER_OPTIONS}"
            for index, port in enumerate(self.backends, start=1)
        ]
        return (
            "\n".join(
                [
                    "global",
                    f"    pidfile {self.pid_file}",
                    f"    stats socket {self.socket_file} mode 600 level admin",
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
                    f"    default_backend {self.backend}",
                    "",
                    f"backend {self.backend}",
                    "    balance roundrobin",
                    f"    option httpchk GET {self.check_path}",
                    "    http-check expect status 200",
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

    def servers(self) -> dict[str, Server]:
        """The backend's servers by name, from the running HAProxy."""
        header, *rows = self.runtime("show stat").splitlines()
        table = csv.DictReader([header.removeprefix("# "), *rows])
        return {
            row["svname"]: Server(
                int(row["addr"].rsplit(":", 1)[1]), row["status"], int(row["scur"])
            )
            for row in table
            if row["pxname"] == self.backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def add(self, server: str, port: int, *, timeout_seconds: float = 10.0) -> None:
        """Put the replica on `port` in rotation as `server`; return once its check passed."""
        name = f"{self.backend}/{server}"
        self._command(f"add server {name} {HOST}:{port} {SERVER_OPTIONS}", "New server registered.")
        self._command(f"enable health {name}")
        self._command(f"set server {name} state ready")
        self._wait(lambda: self.servers()[server].status == "UP", timeout_seconds, f"{server} up")

    def drain(self, server: str, *, timeout_seconds: float = SERVER_TIMEOUT_SECONDS) -> None:
        """Take `server` out of rotation (maintenance: no new request, no check) and wait until
        every request it has in flight is answered."""
        self._command(f"set server {self.backend}/{server} state maint")
        self._wait(
            lambda: self.servers()[server].in_flight == 0, timeout_seconds, f"{server} drained"
        )

    def delete(self, server: str, *, timeout_seconds: float = 5.0) -> None:
        """Forget `server`, out of rotation and its process gone: HAProxy refuses while it
        still holds a connection to it, which the process's exit closes."""
        command = f"del server {self.backend}/{server}"
        self._wait(
            lambda: self.runtime(command).strip() == "Server deleted.", timeout_seconds, command
        )

    def runtime(self, command: str) -> str:
        """One command on HAProxy's runtime API; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(self.socket_file))
            connection.sendall(f"{command}\n".encode())
            return b"".join(iter(lambda: connection.recv(65536), b"")).decode()

    def _command(self, command: str, expected: str = "") -> None:
        answer = self.runtime(command).strip()
        if answer != expected:
            raise LoadBalancerError(f"haproxy refused `{command}`: {answer}")

    @staticmethod
    def _wait(done: Callable[[], bool], timeout_seconds: float, what: str) -> None:
        deadline = time.monotonic() + timeout_seconds
        while not done():
            if time.monotonic() > deadline:
                raise LoadBalancerError(f"haproxy: not {what} after {timeout_seconds:.0f}s")
            time.sleep(0.1)
