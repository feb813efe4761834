"""The processes the scenarios break: services under uvicorn, migrators, and Postgres sessions."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import URL

from common.testing.postgres import asyncpg_dsn, free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
# The grace uvicorn gives open requests on SIGTERM, as in the Dockerfiles.
GRACEFUL_SHUTDOWN_SECONDS = 20


class ServiceProcess:
    """One service under uvicorn on a free loopback port, in development mode, in `folder`."""

    def __init__(
        self, service: str, *, folder: Path, env: Mapping[str, str], access_log: bool = False
    ) -> None:
        self.service = service  # "things-svc"
        self.folder = folder
        self.access_log = access_log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{service}.log"
        self.env = {**os.environ, "ENVIRONMENT": "development", **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        app = f"{self.service.removesuffix('-svc')}_svc.main:app"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "common.serve",  # uvicorn, exiting 0 after a graceful stop
                    app,
                    "--host=127.0.0.1",
                    f"--port={self.port}",
                    f"--timeout-graceful-shutdown={GRACEFUL_SHUTDOWN_SECONDS}",
                    *([] if self.access_log else ["--no-access-log"]),
                ],
                cwd=self.folder,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    break
                try:
                    if (await client.get(f"{self.url}/health/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.service} never became ready:\n{self.log.read_text()[-3000:]}")

    def terminate(self) -> None:
        """SIGTERM: uvicorn stops accepting, lets open requests finish, then runs the shutdown."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout_seconds: float) -> int:
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout_seconds)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def users_env(database: URL, *, issuer: str, audience: str) -> dict[str, str]:
    """users-svc's settings for a test process: its database, its tokens, and cheap hashing."""
    return {
        "USERS_DATABASE_URL": database.render_as_string(hide_password=False),
        "USERS_MIGRATIONS_DIR": str(ROOT / "services/users-svc/alembic"),
        "USERS_TOKEN_ISSUER": issuer,
        "USERS_TOKEN_AUDIENCE": audience,
        "USERS_PASSWORD_TIME_COST": "1",
        "USERS_PASSWORD_MEMORY_KIB": "1024",
    }


def things_env(database: URL, *, users_url: str, audience: str) -> dict[str, str]:
    """things-svc's settings for a test process: its database, and users-svc as token issuer."""
    return {
        "THINGS_DATABASE_URL": database.render_as_string(hide_password=False),
        "THINGS_MIGRATIONS_DIR": str(ROOT / "services/things-svc/alembic"),
        "THINGS_TOKEN_ISSUER": users_url,
        "THINGS_TOKEN_AUDIENCE": audience,
        "THINGS_JWKS_URL": f"{users_url}/.well-known/jwks.json",
    }


def upgrade_command(service: str, database: URL) -> subprocess.Popen[bytes]:
    """`alembic upgrade head` in the service's folder, on `database`, as a process of its own."""
    prefix = service.removesuffix("-svc").upper()
    return subprocess.Popen(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT / "services" / service,
        env={
            **os.environ,
            f"{prefix}_DATABASE_URL": database.render_as_string(hide_password=False),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def migrate(service: str, database: URL) -> None:
    process = upgrade_command(service, database)
    output, _ = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed for {service}:\n{output.decode()}")


async def sessions_of(server: URL, application: str) -> list[str]:
    """The state of each Postgres session the service has open: `idle`, `active`, `locked` (active,
    waiting for a lock), `idle in transaction`, ...
    """
    connection = await asyncpg.connect(asyncpg_dsn(server.set(database="postgres")))
    try:
        rows = await connection.fetch(
            "SELECT CASE WHEN wait_event_type = 'Lock' THEN 'locked' ELSE coalesce(state, '') END"
            " FROM pg_stat_activity WHERE application_name = $1",
            application,
        )
        return [row[0] for row in rows]
    finally:
        await connection.close()


async def wait_for_sessions(
    server: URL,
    application: str,
    until: Callable[[list[str]], bool],
    *,
    timeout_seconds: float = 10,
) -> list[str]:
    """Poll the service's session states until `until(states)`; return the last states seen."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        states = await sessions_of(server, application)
        if until(states) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.05)


@asynccontextmanager
async def row_locked(database: URL, table: str, row_id: str) -> AsyncIterator[None]:
    """Hold a row lock from a session of our own: writers of that row wait, inside their
    transaction and holding their pool connection, until it is released or their statement
    times out.
    """
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        async with connection.transaction():
            await connection.execute(
                f"SELECT 1 FROM {table} WHERE id::text = $1 FOR UPDATE", row_id
            )
            yield
    finally:
        await connection.close()
