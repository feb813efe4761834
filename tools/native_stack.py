"""The native stack: every service of the workspace with its own database, without Docker.

An embedded PostgreSQL (`devstack.postgres.EmbeddedPostgres`) whose data lives in the stack's
folder, each service's database and role made by infra/postgres's own script, every service's
migrations, then every service under uvicorn, supervised by honcho in the background
(tools/supervisor.py). `tools/stack.py` is the command line over it.

The services are the folders of `services/`: a service added later joins without a change here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import observability as obs
import supervisor
from common.revisions import applied_revisions, expected_heads
from devstack.postgres import EmbeddedPostgres, EmbeddedPostgresError
from devstack.processes import HOST, is_alive, port_is_free, service_environment
from monorepo import ServiceFacts, Workspace
from stack_state import DEFAULT_POSTGRES_PORT, ROOT, Ports, State

INFRA_DIR = ROOT / "infra"
COMPOSE_FILE = INFRA_DIR / "docker-compose.yml"
INIT_SCRIPT = INFRA_DIR / "postgres" / "10-service-databases.sh"
# The service that signs access tokens; the others verify them with its JWKS.
TOKEN_ISSUER_SERVICE = "users-svc"
READY_TIMEOUT_SECONDS = float(os.environ.get("STACK_READY_TIMEOUT", "60"))

Say = Callable[[str], None]


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


class Stack:
    """The native stack on a state folder: its Postgres, its supervisor, its logs."""

    def __init__(self, state_dir: Path, services: Sequence[Service]) -> None:
        self.state_dir = state_dir
        self.services = list(services)
        self.state_file = state_dir / "state.json"
        self.env_file = state_dir / "services.env"
        self.log_file = state_dir / "services.log"
        self.ports = Ports(state_dir)

    def postgres(self, port: int | None = None) -> EmbeddedPostgres:
        chosen = port if port is not None else self.ports.choose("postgres", DEFAULT_POSTGRES_PORT)
        return EmbeddedPostgres(
            self.state_dir / "pgdata", port=chosen, log_file=self.state_dir / "postgres.log"
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

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services)
        raise StackError(f"no service named {name!r} (there are: {known})")

    # -- up ---------------------------------------------------------------------------------

    def up(self, *, say: Say = print, observability: bool = False) -> None:
        """Start everything and wait until every service is ready; on failure stop it all.
        With `observability`, Prometheus too, scraping every service (tools/observability.py)."""
        self._clear_leftovers(say)
        busy = [s for s in self.services if not port_is_free(HOST, s.port)]
        if busy:
            taken = ", ".join(f"{s.port} ({s.name})" for s in busy)
            raise StackError(
                f"port {taken} already in use on {HOST}: stop what listens there, or choose "
                "another port with STACK_<NAME>_PORT"
            )
        try:
            postgres = self.start_database(say)
            self._migrate(postgres, say)
            self._start_services(postgres, observability=observability)
        except BaseException:
            self.down(say=lambda _: None)
            raise

    def start_database(self, say: Say = print) -> EmbeddedPostgres:
        """Postgres running with every service's database and role (made when missing); the
        services are not started. The state records it, so `make down` stops it."""
        postgres = self.postgres()
        state = self.state() or State(mode="native", services={})
        if postgres.is_running():
            return postgres
        if not port_is_free(HOST, postgres.port):
            raise StackError(
                f"port {postgres.port} on {HOST} is already in use: Postgres cannot listen there; "
                "choose another with STACK_POSTGRES_PORT (it is then kept for the next runs)"
            )
        state.postgres_port = postgres.port
        state.save(self.state_file)
        self.ports.remember({"postgres": postgres.port})
        say(f"postgres: starting on {HOST}:{postgres.port} (data in {postgres.data_dir})")
        try:
            postgres.start()
        except EmbeddedPostgresError as exc:
            raise StackError(f"Postgres did not start: {exc}") from None
        self._create_databases(postgres)
        return postgres

    def _clear_leftovers(self, say: Say) -> None:
        state = self.state()
        if state is not None and (state.supervisor_pid is not None or state.processes):
            # A stack that was not stopped (its supervisor was killed, the machine rebooted).
            say("stack: stopping what is left of a stack that was not stopped properly")
            self.down(say=lambda _: None)
        elif state is None and self.postgres().is_running():
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

    def _migrate(self, postgres: EmbeddedPostgres, say: Say) -> None:
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
        failed = []
        for service, (code, output) in self.run_alembic(behind, ["upgrade", "head"]).items():
            if code != 0:
                tail = "\n".join(f"  {line}" for line in output.strip().splitlines()[-15:])
                failed.append(f"migrations of {service.name} failed:\n{tail}")
            else:
                say(f"{service.name}: migrations applied")
        if failed:
            raise StackError("\n".join(failed))

    def run_alembic(
        self, services: Sequence[Service], arguments: Sequence[str]
    ) -> dict[Service, tuple[int, str]]:
        """`alembic <arguments>` in each service's folder, side by side, on its stack database;
        each one's exit status and output."""
        postgres = self.postgres()
        running = {
            service: subprocess.Popen(
                [sys.executable, "-m", "alembic", *arguments],
                cwd=service.directory,
                env={**os.environ, **self.service_env(service, postgres)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for service in services
        }
        results = {}
        for service, process in running.items():
            output = process.communicate()[0]
            results[service] = (process.returncode, output)
        return results

    async def _current_revisions(self, postgres: EmbeddedPostgres) -> dict[str, frozenset[str]]:
        """Each service's database's Alembic revisions (none in a new database)."""
        revisions = {}
        for service in self.services:
            engine = create_async_engine(
                postgres.url(database=service.database), poolclass=NullPool
            )
            try:
                async with engine.connect() as connection:
                    revisions[service.name] = await applied_revisions(connection)
            finally:
                await engine.dispose()
        return revisions

    def database_url(self, service: Service, postgres: EmbeddedPostgres | None = None) -> str:
        """The service's database on the stack's Postgres, as its own role."""
        url = (postgres or self.postgres()).url(user=service.database, password=service.database)
        return url.set(database=service.database).render_as_string(hide_password=False)

    def service_env(
        self, service: Service, postgres: EmbeddedPostgres | None = None
    ) -> dict[str, str]:
        """What a service's settings read: its database (as its own role), where it serves its
        metrics, and the profile."""
        issuer = next((s for s in self.services if s.name == TOKEN_ISSUER_SERVICE), None)
        return {
            "ENVIRONMENT": os.environ.get("ENVIRONMENT", "development"),
            # Every service trusts the tokens users-svc signs, at the port it runs on here.
            **service_environment(
                service.env_prefix,
                database_url=self.database_url(service, postgres),
                token_issuer=issuer.base_url if issuer is not None else None,
                metrics_port=obs.metrics_port(service.database, service.port),
            ),
        }

    def _start_services(self, postgres: EmbeddedPostgres, *, observability: bool) -> None:
        programs = [
            supervisor.Program(s.name, s.directory, supervisor.service_command(s.app, s.port))
            for s in self.services
        ]
        prometheus = None
        if observability:
            prometheus = obs.Prometheus.for_stack(
                self.state_dir,
                {s.name: obs.metrics_port(s.database, s.port) for s in self.services},
            )
            programs.append(prometheus.program)
        env = {k: v for s in self.services for k, v in self.service_env(s, postgres).items()}
        process = supervisor.start(
            programs, env, folder=self.state_dir, log_file=self.log_file, root=ROOT
        )
        state = State(
            mode="native",
            services={s.name: s.port for s in self.services},
            postgres_port=postgres.port,
            supervisor_pid=process.pid,
            processes=[(process.pid, process.create_time())],
            prometheus_port=prometheus.port if prometheus is not None else None,
        )
        state.save(self.state_file)
        ready = {} if prometheus is None else {"prometheus": f"{prometheus.url}/-/ready"}
        self._wait_until_ready(process.pid, ready)
        state.processes += [
            (child.pid, child.create_time()) for child in process.children(recursive=True)
        ]
        state.save(self.state_file)

    def _wait_until_ready(self, supervisor_pid: int, others: dict[str, str]) -> None:
        waiting = {s.name: f"{s.base_url}/health/ready" for s in self.services} | others
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
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(url).status_code == 200:
                            del waiting[name]
                time.sleep(0.2)

    # -- down, ps, logs ---------------------------------------------------------------------

    def down(self, *, say: Say = print) -> None:
        """Stop the services, then Postgres. The data stays for the next `up`."""
        with _ignoring_ctrl_c():  # a second Ctrl-C must not leave half a stack running
            state = self.state()
            if state is not None:
                supervisor.stop(state.processes, supervisor_pid=state.supervisor_pid)
            postgres = self.postgres(state.postgres_port if state is not None else None)
            if postgres.is_running():
                try:
                    postgres.stop()
                except EmbeddedPostgresError:
                    postgres.kill()
            self.state_file.unlink(missing_ok=True)
            say("stack: stopped" if state is not None else "stack: nothing was running")

    def status_lines(self) -> list[str]:
        """What runs, from the state `up` wrote: Postgres, then each service on its port."""
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
            for name, port in state.services.items():
                url = f"http://{HOST}:{port}"
                try:
                    answer = client.get(f"{url}/health/ready").status_code
                    health = "ready" if answer == 200 else f"not ready ({answer})"
                except httpx.TransportError:
                    health = "down"
                lines.append(f"{name:<10} {health:<16}{url}/docs")
        if state.prometheus_port is not None:
            lines.append(f"{'prometheus':<10} {'':<16}http://{HOST}:{state.prometheus_port}")
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
