"""The native stack: every service of the workspace with its own database, without Docker.

An embedded PostgreSQL (`devstack.postgres.EmbeddedPostgres`) whose data lives in a state
folder, each service's database and role made by infra/postgres's own script, every service's
migrations, then every service under uvicorn, supervised by honcho in the background with logs
prefixed by service. `tools/stack.py` is the command line over it.

The services are the folders of `services/`: a service added later joins without a change here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from common.migrations import VERSION_TABLE, expected_heads
from devstack.postgres import EmbeddedPostgres, EmbeddedPostgresError, asyncpg_dsn
from devstack.processes import is_alive, port_is_free, service_environment, wait_gone
from monorepo import ServiceFacts, Workspace

ROOT = Path(__file__).resolve().parents[1]
INFRA_DIR = ROOT / "infra"
COMPOSE_FILE = INFRA_DIR / "docker-compose.yml"
INIT_SCRIPT = INFRA_DIR / "postgres" / "10-service-databases.sh"

HOST = "127.0.0.1"
# The service that signs access tokens; the others verify them with its JWKS.
TOKEN_ISSUER_SERVICE = "users-svc"
READY_TIMEOUT_SECONDS = float(os.environ.get("STACK_READY_TIMEOUT", "60"))
STOP_TIMEOUT_SECONDS = 15.0
# uvicorn's own grace period for open requests on SIGTERM; honcho kills after 5 s anyway.
GRACEFUL_SHUTDOWN_SECONDS = 3


class StackError(Exception):
    """Something the user must fix; the message says what, and nothing is left running."""


@dataclass(frozen=True)
class Service:
    """A service of the workspace, as the stack runs it: its facts, on the stack's port."""

    facts: ServiceFacts
    port: int

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def database(self) -> str:
        return self.facts.database

    @property
    def env_prefix(self) -> str:
        return self.facts.env_prefix

    @property
    def directory(self) -> Path:
        return self.facts.directory

    @property
    def app(self) -> str:
        return self.facts.app

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def discover_services(environ: Mapping[str, str] = os.environ) -> list[Service]:
    """Every service of the workspace, by name; `STACK_<DATABASE>_PORT` moves one's port."""
    services = []
    for facts in Workspace.load(ROOT).services():
        port = environ.get(f"STACK_{facts.database.upper()}_PORT")
        services.append(Service(facts, port=int(port) if port else facts.port))
    ports = [service.port for service in services]
    if len(set(ports)) != len(ports):
        raise StackError(f"two services share a port ({ports}): give each its own")
    return services


@dataclass
class State:
    """What a running stack left in its folder, so `down`, `ps` and `logs` can find it."""

    mode: str
    services: dict[str, int]  # name -> port
    postgres_port: int | None = None
    supervisor_pid: int | None = None
    # The supervisor and every process under it, with their start times: a process id reused
    # since (after a reboot, say) is never taken for one of ours.
    processes: list[tuple[int, float]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(
            mode=raw["mode"],
            services=raw["services"],
            postgres_port=raw.get("postgres_port"),
            supervisor_pid=raw.get("supervisor_pid"),
            processes=[(pid, started) for pid, started in raw.get("processes", [])],
        )


class Stack:
    """The native stack on a state folder: its Postgres, its supervisor, its logs."""

    def __init__(self, state_dir: Path, services: Sequence[Service]) -> None:
        self.state_dir = state_dir
        self.services = list(services)
        self.state_file = state_dir / "state.json"
        self.procfile = state_dir / "Procfile"
        self.env_file = state_dir / "services.env"
        self.log_file = state_dir / "services.log"

    def postgres(self, port: int | None = None) -> EmbeddedPostgres:
        return EmbeddedPostgres(
            self.state_dir / "pgdata", port=port, log_file=self.state_dir / "postgres.log"
        )

    def state(self) -> State | None:
        return State.load(self.state_file)

    def is_up(self) -> bool:
        state = self.state()
        return (
            state is not None
            and state.supervisor_pid is not None
            and is_alive(state.supervisor_pid)
        )

    # -- up ---------------------------------------------------------------------------------

    def up(self, *, postgres_port: int | None, say: Callable[[str], None] = print) -> None:
        """Start everything and wait until every service is ready; on failure stop it all."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._clear_leftovers(say)
        busy = [s for s in self.services if not port_is_free(HOST, s.port)]
        if busy:
            taken = ", ".join(f"{s.port} ({s.name})" for s in busy)
            raise StackError(
                f"port {taken} already in use on {HOST}: stop what listens there, or choose "
                "another port with STACK_<NAME>_PORT"
            )
        postgres = self.postgres(postgres_port)
        state = State(
            mode="native",
            services={s.name: s.port for s in self.services},
            postgres_port=postgres.port,
        )
        state.save(self.state_file)
        try:
            say(f"postgres: starting on {HOST}:{postgres.port} (data in {postgres.data_dir})")
            try:
                postgres.start()
            except EmbeddedPostgresError as exc:
                raise StackError(f"Postgres did not start: {exc}") from None
            self._create_databases(postgres)
            self._migrate(postgres, say)
            supervisor = psutil.Process(self._start_supervisor(postgres))
            state.supervisor_pid = supervisor.pid
            state.processes = [(supervisor.pid, supervisor.create_time())]
            state.save(self.state_file)
            self._wait_until_ready(supervisor.pid)
            state.processes += [
                (child.pid, child.create_time()) for child in supervisor.children(recursive=True)
            ]
            state.save(self.state_file)
        except BaseException:
            self.down(say=lambda _: None)
            raise

    def _clear_leftovers(self, say: Callable[[str], None]) -> None:
        state = self.state()
        if state is not None:
            # A stack that was not stopped (its supervisor was killed, the machine rebooted).
            say("stack: stopping what is left of a stack that was not stopped properly")
            self.down(say=lambda _: None)
        elif self.postgres().is_running():
            raise StackError(
                f"a Postgres server already runs on {self.state_dir / 'pgdata'} outside the "
                "stack: stop it first (make down)"
            )

    def _create_databases(self, postgres: EmbeddedPostgres) -> None:
        # The very script the postgres image runs in Docker, pointed at the embedded server.
        env = {
            **os.environ,
            "PATH": f"{postgres.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGHOST": postgres.host,
            "PGPORT": str(postgres.port),
            "POSTGRES_USER": "postgres",
            "SERVICE_DATABASES": " ".join(s.database for s in self.services),
            **{f"{s.database.upper()}_DB_PASSWORD": s.database for s in self.services},
        }
        result = subprocess.run(
            ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(f"creating the service databases failed:\n{result.stderr.strip()}")

    def _migrate(self, postgres: EmbeddedPostgres, say: Callable[[str], None]) -> None:
        # A database already at the head of its scripts needs no Alembic run (a few seconds of
        # imports each); the others migrate side by side, each in its own database.
        current = asyncio.run(self._current_revisions(postgres))
        behind = [
            service
            for service in self.services
            if current[service.name] != expected_heads(service.directory / "alembic")
        ]
        for service in self.services:
            if service not in behind:
                say(f"{service.name}: migrations up to date")
        running = {
            service: subprocess.Popen(
                [sys.executable, "-m", "alembic", "upgrade", "head"],
                cwd=service.directory,
                env={**os.environ, **self._service_env(service, postgres)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for service in behind
        }
        failed = []
        for service, process in running.items():
            output, _ = process.communicate()
            if process.returncode != 0:
                tail = "\n".join(f"  {line}" for line in output.strip().splitlines()[-15:])
                failed.append(f"migrations of {service.name} failed:\n{tail}")
            else:
                say(f"{service.name}: migrations applied")
        if failed:
            raise StackError("\n".join(failed))

    async def _current_revisions(self, postgres: EmbeddedPostgres) -> dict[str, frozenset[str]]:
        """Each service's database's Alembic revisions (none in a new database)."""
        revisions = {}
        for service in self.services:
            connection = await asyncpg.connect(
                asyncpg_dsn(postgres.url(database=service.database)), timeout=10
            )
            try:
                if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", VERSION_TABLE):
                    rows = await connection.fetch(f"SELECT version_num FROM {VERSION_TABLE}")
                    revisions[service.name] = frozenset(row[0] for row in rows)
                else:
                    revisions[service.name] = frozenset()
            finally:
                await connection.close()
        return revisions

    def _service_env(self, service: Service, postgres: EmbeddedPostgres) -> dict[str, str]:
        """What a service's settings read: its database (as its own role) and the profile."""
        url = postgres.url(user=service.database, password=service.database)
        url = url.set(database=service.database)
        issuer = next((s for s in self.services if s.name == TOKEN_ISSUER_SERVICE), None)
        return {
            "ENVIRONMENT": os.environ.get("ENVIRONMENT", "development"),
            # Every service trusts the tokens users-svc signs, at the port it runs on here.
            **service_environment(
                service.env_prefix,
                database_url=url.render_as_string(hide_password=False),
                token_issuer=issuer.base_url if issuer is not None else None,
            ),
        }

    def _start_supervisor(self, postgres: EmbeddedPostgres) -> int:
        # A Procfile and an env file for honcho: what runs can be read, and run by hand.
        self.procfile.write_text(
            "".join(
                f"{s.name}: cd {shlex.quote(str(s.directory))} && exec "
                + shlex.join(
                    [
                        sys.executable,
                        "-m",
                        "common.serve",  # uvicorn, exiting 0 after a graceful stop
                        s.app,
                        f"--host={HOST}",
                        f"--port={s.port}",
                        f"--timeout-graceful-shutdown={GRACEFUL_SHUTDOWN_SECONDS}",
                    ]
                )
                + "\n"
                for s in self.services
            )
        )
        env = {k: v for s in self.services for k, v in self._service_env(s, postgres).items()}
        self.env_file.touch(mode=0o600)
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        with self.log_file.open("w") as log:
            supervisor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "honcho",
                    "start",
                    f"--procfile={self.procfile}",
                    f"--env={self.env_file}",
                    f"--app-root={ROOT}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
                start_new_session=True,
            )
        return supervisor.pid

    def _wait_until_ready(self, supervisor_pid: int) -> None:
        waiting = {s.name: f"{s.base_url}/health/ready" for s in self.services}
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                if not is_alive(supervisor_pid):
                    raise StackError(
                        f"the services stopped while starting; the end of {self.log_file}:\n"
                        + self.log_tail()
                    )
                if time.monotonic() > deadline:
                    raise StackError(
                        f"not ready after {READY_TIMEOUT_SECONDS:.0f}s: {', '.join(waiting)}; "
                        f"the end of {self.log_file}:\n" + self.log_tail()
                    )
                for name, url in list(waiting.items()):
                    try:
                        if client.get(url).status_code == 200:
                            del waiting[name]
                    except httpx.TransportError:
                        pass
                time.sleep(0.2)

    # -- down, ps, logs ---------------------------------------------------------------------

    def down(self, *, say: Callable[[str], None] = print) -> None:
        """Stop the services, then Postgres. The data stays for the next `up`."""
        with _ignoring_ctrl_c():  # a second Ctrl-C must not leave half a stack running
            self._down(say)

    def _down(self, say: Callable[[str], None]) -> None:
        state = self.state()
        if state is not None:
            self._stop_processes(state)
        postgres = self.postgres(state.postgres_port if state is not None else None)
        if postgres.is_running():
            try:
                postgres.stop()
            except EmbeddedPostgresError:
                postgres.kill()
        self.state_file.unlink(missing_ok=True)
        say("stack: stopped" if state is not None else "stack: nothing was running")

    def _stop_processes(self, state: State) -> None:
        ours = []
        for pid, started in state.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.create_time() == started and is_alive(pid):
                    ours.append(process)
        if ours and ours[0].pid == state.supervisor_pid:
            # honcho passes SIGTERM on to every service and waits for them (5 s at most).
            ours[0].terminate()
        for pid in wait_gone([p.pid for p in ours], timeout_seconds=STOP_TIMEOUT_SECONDS):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()

    def status_lines(self) -> list[str]:
        state = self.state()
        if state is None:
            return ["stack: not running"]
        postgres = self.postgres(state.postgres_port)
        pid = postgres.pid()
        lines = [
            f"mode: {state.mode}",
            f"postgres   {'up (pid ' + str(pid) + ')' if pid else 'down':<16}"
            f"{HOST}:{state.postgres_port}  data in {postgres.data_dir}",
        ]
        with httpx.Client(timeout=1.0) as client:
            for service in self.services:
                try:
                    answer = client.get(f"{service.base_url}/health/ready").status_code
                    health = "ready" if answer == 200 else f"not ready ({answer})"
                except httpx.TransportError:
                    health = "down"
                lines.append(f"{service.name:<10} {health:<16}{service.base_url}/docs")
        return lines

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def follow_logs(self, *, lines: int = 50) -> None:
        """Print the services' log as it grows, until the stack stops (or Ctrl-C)."""
        print(self.log_tail(lines))
        with self.log_file.open(errors="replace") as log:
            log.seek(0, os.SEEK_END)
            while True:
                line = log.readline()
                if line:
                    print(line, end="", flush=True)
                elif not self.is_up():
                    return
                else:
                    time.sleep(0.2)


@contextlib.contextmanager
def _ignoring_ctrl_c() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
