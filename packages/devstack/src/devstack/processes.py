"""Processes and ports: a service run as its image runs it, on a free loopback port.

`ServiceProcess` is the one way the tests, the reliability suite and the benchmark start a
service (or any ASGI app): `python -m common.serve APP` in the service's folder, with the
environment that points it at its database and at the issuer of its tokens
(`service_environment`), waiting until `/health/ready` answers 200.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
import psutil

from common.auth import JWKS_PATH

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0


class Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextlib.contextmanager
def started(server: S) -> Iterator[S]:
    """`server` (Postgres, PgBouncer, HAProxy, a service) started, and stopped afterwards however
    the block ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def is_alive(pid: int) -> bool:
    """Whether process `pid` runs: an exited process nobody reaped yet (a zombie) does not.

    A server started by `pg_ctl` belongs to PID 1 once pg_ctl exits, and the PID 1 of some
    containers reaps late: psutil still finds such a process for a while, as a zombie.
    """
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Iterable[int], *, timeout_seconds: float) -> list[int]:
    """Wait until every process has exited; return those still running at the deadline."""
    deadline = time.monotonic() + timeout_seconds
    alive = [pid for pid in pids if is_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if is_alive(pid)]
    return alive


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host:port` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def service_environment(
    env_prefix: str,
    *,
    database_url: str,
    token_issuer: str | None = None,
    metrics_port: int | None = None,
    nats_url: str | None = None,
) -> dict[str, str]:
    """The variables that point a service at its database and, for a service that verifies
    tokens, at their issuer (users-svc's base URL, where its JWKS is published); with
    `metrics_port`, where it serves its metrics, on loopback; with `nats_url`, its events'
    broker."""
    env = {f"{env_prefix}DATABASE_URL": database_url}
    if nats_url is not None:
        env[f"{env_prefix}NATS_URL"] = nats_url
    if metrics_port is not None:
        env[f"{env_prefix}METRICS_PORT"] = str(metrics_port)
        env[f"{env_prefix}METRICS_HOST"] = HOST
    if token_issuer is not None:
        env[f"{env_prefix}TOKEN_ISSUER"] = token_issuer
        env[f"{env_prefix}JWKS_URL"] = f"{token_issuer}{JWKS_PATH}"
    return env


class ServiceProcess:
    """`python -m common.serve APP` on a free loopback port, its output in `log`.

    `app` is what uvicorn is given (`things_svc.main:app`, or `floor:app --app-dir bench`);
    `cwd` the folder it runs in (a service's own: its Alembic directory is found from there).
    """

    def __init__(
        self,
        name: str,
        app: str | Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        python: str = sys.executable,
        options: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.app = [app] if isinstance(app, str) else list(app)
        self.cwd = cwd
        self.env = {**os.environ, **env}
        self.log = log
        self.python = python
        self.options = list(options)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: psutil.Popen | None = None

    @property
    def pid(self) -> int:
        return self.running.pid

    @property
    def running(self) -> psutil.Popen:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [self.python, "-m", "common.serve", *self.app, f"--host={HOST}"]
        command += [f"--port={self.port}", *self.options]
        with self.log.open("ab") as output:
            self.process = psutil.Popen(
                command, cwd=self.cwd, env=self.env, stdout=output, stderr=subprocess.STDOUT
            )

    async def wait_ready(self, *, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Until `/health/ready` answers 200; the end of the log if it stops or never does."""
        deadline = time.monotonic() + timeout_seconds
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline and self.running.poll() is None:
                try:
                    if (await client.get(f"{self.url}/health/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} never became ready:\n{self.log_tail()}")

    async def started(self) -> "ServiceProcess":
        self.start()
        await self.wait_ready()
        return self

    def terminate(self) -> None:
        """SIGTERM: uvicorn stops accepting, lets open requests finish, then runs the shutdown."""
        self.running.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.running.kill()

    async def wait_exit(self, timeout_seconds: float) -> int:
        code: int = await asyncio.to_thread(self.running.wait, timeout_seconds)
        return code

    def stop(self, *, timeout_seconds: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited in `timeout_seconds`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_seconds)
        except psutil.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""
