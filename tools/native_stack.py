"""The native stack: every service of the workspace with its own database, without Docker.

An embedded PostgreSQL (`devstack.postgres.EmbeddedPostgres`) whose data lives in the stack's
folder, each service's database and role made by infra/postgres's own script, every service's
migrations, an embedded NATS with JetStream (`devstack.nats.EmbeddedNats`) for the events, then
every service under uvicorn, supervised by honcho in the background (tools/supervisor.py).
`tools/stack.py` is the command line over it; docs/development.md says what each shape runs.

The services are the folders of `services/`: a service added later joins without a change here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

import stack_database
import supervisor
from devstack.haproxy import LoadBalancer, LoadBalancerError
from devstack.nats import EmbeddedNats, EmbeddedNatsError
from devstack.pgbouncer import PgBouncer
from devstack.postgres import EmbeddedPostgres, EmbeddedPostgresError
from devstack.processes import HOST, free_port, is_alive, port_is_free, service_environment
from devstack.server import log_tail
from devstack.stopping import uninterrupted
from stack_services import (
    DEFAULT_NATS_PORT,
    DEFAULT_POSTGRES_PORT,
    POSTGRES_PASSWORD,
    ROOT,
    TOKEN_ISSUER_SERVICE,
    Ports,
    Service,
    StackError,
    State,
)

READY_TIMEOUT_SECONDS = float(os.environ.get("STACK_READY_TIMEOUT", "60"))
# The server connections PgBouncer keeps per database and role (`make up POOLER=1`): every replica
# of a service shares them, whatever their number (docs/deployment.md: the connection budget).
POOL_SIZE = 20

# Who may publish and consume which events (docs/events.md: security): the file Compose and the
# Kubernetes dev overlay run too.
NATS_CONFIG = ROOT / "infra" / "nats" / "nats.conf"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scale:
    """The stack shaped like a deployment: PgBouncer in transaction mode between the services and
    Postgres (the migrations still go straight to Postgres), and that many processes per service
    behind HAProxy on the service's usual port."""

    pooler: bool = False
    replicas: int = 1


# One process per service, straight to Postgres: what `make up` runs by default.
SINGLE = Scale()


class Stack:
    """The native stack on a state folder: its Postgres, its supervisor, its logs."""

    def __init__(self, state_dir: Path, services: Sequence[Service]) -> None:
        self.state_dir = state_dir
        self.services = list(services)
        self.state_file = state_dir / "state.json"
        self.log_file = state_dir / "services.log"
        self.ports = Ports(state_dir)

    def postgres(self, port: int | None = None) -> EmbeddedPostgres:
        return EmbeddedPostgres(
            self.state_dir / "pgdata",
            port=port or self.ports.choose("postgres", DEFAULT_POSTGRES_PORT),
            log_file=self.state_dir / "postgres.log",
            password=POSTGRES_PASSWORD,
        )

    def nats(self, port: int | None = None) -> EmbeddedNats:
        """NATS with a user per service (infra/nats/nats.conf): no anonymous client."""
        passwords = self.nats_passwords()
        return EmbeddedNats(
            self.state_dir / "nats",
            port=port or self.ports.choose("nats", DEFAULT_NATS_PORT),
            log_file=self.state_dir / "nats.log",
            config_file=NATS_CONFIG,
            environment={f"{s.env_prefix}NATS_PASSWORD": passwords[s.name] for s in self.services},
        )

    def nats_passwords(self) -> dict[str, str]:
        """Each service's NATS password (infra/nats/nats.conf)."""
        return self._made_up("nats-passwords.json")

    def client_secrets(self) -> dict[str, str]:
        """Each service's client secret at users-svc, whose SHA-256 users-svc is given
        (docs/auth.md: services' identities)."""
        return self._made_up("client-secrets.json")

    def _made_up(self, file_name: str) -> dict[str, str]:
        """A secret per service: made up on the first `make up`, kept in the stack's folder
        (git-ignored, readable by its owner only) for the next ones. Never one anyone typed, so
        none is ever committed or reused elsewhere."""
        file = self.state_dir / file_name
        try:
            kept: dict[str, str] = json.loads(file.read_text())
        except (OSError, ValueError):
            kept = {}
        # Hex: NATS reads a variable's value as it reads its file, where a leading `-`, digits
        # alone or `true` would not be a string.
        made = {s.name: kept.get(s.name) or secrets.token_hex(24) for s in self.services}
        if made != kept:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch(mode=0o600)
            file.write_text(json.dumps(made, indent=2) + "\n")
        return made

    def pooler(self, postgres: EmbeddedPostgres) -> PgBouncer:
        """PgBouncer, checking each role's password as the server behind it does."""
        passwords = {s.database: s.password for s in self.services}
        return PgBouncer(
            self.state_dir / "pgbouncer",
            upstream=postgres.url(),
            pool_size=POOL_SIZE,
            passwords={"postgres": postgres.password or "", **passwords},
        )

    def balancer(self, name: str, *, port: int = 0, backends: Sequence[int] = ()) -> LoadBalancer:
        folder = self.state_dir / f"haproxy-{name}"
        return LoadBalancer(folder, name=name, backends=backends, port=port)

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

    def up(self, *, say: Say = print, scale: Scale = SINGLE, observability: bool = False) -> bool:
        """Start what is not running and wait until every service is ready; False when it all
        ran as asked and ready already. A running stack in trouble (`trouble`) has its services
        started again, Postgres and NATS kept. On failure it all stops."""
        running = self.state() if self.is_up() else None
        trouble = self.trouble(running, scale, observability) if running is not None else []
        if running is not None and not trouble:
            return False
        if running is None:
            self._clear_leftovers(say)
        # What the stack serves already is not in the way of what it starts.
        ours = running.services if running is not None else {}
        busy = [s for s in self.services if ours.get(s.name) != s.port]
        busy = [s for s in busy if not port_is_free(HOST, s.port)]
        if busy:
            taken = ", ".join(f"{s.port} ({s.name})" for s in busy)
            raise StackError(
                f"port {taken} already in use on {HOST}: stop what listens there, or choose "
                "another port with STACK_<NAME>_PORT"
            )
        for line in trouble:
            say(f"stack: {line}")
        if running is not None:
            say("stack: starting the services again (Postgres and NATS keep running)")
            self._stop_services()
        try:
            postgres = self.start_database(say)
            self.migrate(self.services, say=say)
            self._start_nats(say)
            pooler = None
            if scale.pooler:
                pooler = self.pooler(postgres)
                say(
                    f"pgbouncer: transaction mode on {HOST}:{pooler.port}, {POOL_SIZE} per database"
                )
                pooler.start()
            self._start_services(postgres, pooler, scale.replicas, observability=observability)
        except BaseException:
            self.down(say=lambda _: None)
            raise
        return True

    def trouble(self, state: State, scale: Scale, observability: bool) -> list[str]:
        """What keeps a running stack from being this workspace's as asked, every service
        ready: another shape, a service it does not run, one it runs that is gone, one not
        ready (with what its `/health/ready` says)."""
        shape = _shape(state.replicas, state.pooler_port is not None, bool(state.prometheus_port))
        asked = _shape(scale.replicas, scale.pooler, observability)
        lines = [f"it runs {shape}, and {asked} is asked"] if shape != asked else []
        names = {s.name for s in self.services}
        lines += [f"{name} is not running yet" for name in sorted(names - state.services.keys())]
        lines += [f"{name} is gone from services/" for name in state.services.keys() - names]
        with httpx.Client(timeout=2.0) as client:
            for name in sorted(names & state.services.keys()):
                health = readiness(client, f"http://{HOST}:{state.services[name]}")
                if health != "ready":
                    lines.append(f"{name} is {health}")
        return lines

    def start_database(self, say: Say = print) -> EmbeddedPostgres:
        """Postgres running, with every service's database and role (made when missing); no
        migration is run. The state records it, so `make down` stops it."""
        postgres = self.postgres()
        if not postgres.is_running():
            if not port_is_free(HOST, postgres.port):
                raise StackError(
                    f"port {postgres.port} on {HOST} is already in use: Postgres cannot listen "
                    "there; choose another with STACK_POSTGRES_PORT (it is then kept for the next "
                    "runs)"
                )
            state = self.state() or State(mode="native", services={})
            state.postgres_port = postgres.port
            state.save(self.state_file)
            self.ports.remember({"postgres": postgres.port})
            say(f"postgres: starting on {HOST}:{postgres.port} (data in {postgres.data_dir})")
            try:
                postgres.start()
            except EmbeddedPostgresError as exc:
                raise StackError(f"Postgres did not start: {exc}") from None
        # Every time: a service added since the data folder was made needs its database and role
        # (the script makes only what is missing).
        stack_database.create_databases(postgres, self.services)
        return postgres

    def migrate(self, services: Sequence[Service], *, say: Say = print) -> list[Service]:
        """Each of `services` at the head of its migrations, on the stack's running Postgres;
        those that were behind."""
        postgres = self.postgres()
        env_for = functools.partial(self.service_env, postgres=postgres)
        return stack_database.migrate(postgres, services, env_for=env_for, say=say)

    def _start_nats(self, say: Say) -> None:
        nats = self.nats()
        if nats.is_running():
            return
        say(f"nats: starting on {nats.url}, JetStream on (data in {nats.data_dir})")
        try:
            nats.start()
        except EmbeddedNatsError as exc:
            raise StackError(
                f"NATS did not start: {exc}; choose another port with STACK_NATS_PORT"
            ) from None
        self.ports.remember({"nats": nats.port})

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

    def service_env(
        self,
        service: Service,
        postgres: EmbeddedPostgres | None = None,
        pooler: PgBouncer | None = None,
    ) -> dict[str, str]:
        """What a service's settings read: its database (as its own role, through the pooler
        when there is one), where it serves its metrics, and the profile."""
        issuer = next((s for s in self.services if s.name == TOKEN_ISSUER_SERVICE), None)
        server = pooler or postgres or self.postgres()
        url = server.url(
            user=service.database, password=service.password, database=service.database
        )
        env = {
            "ENVIRONMENT": os.environ.get("ENVIRONMENT", "development"),
            # Every service trusts the tokens users-svc signs, at the port it runs on here.
            **service_environment(
                service.env_prefix,
                database_url=url.render_as_string(hide_password=False),
                token_issuer=issuer.base_url if issuer is not None else None,
                metrics_port=supervisor.metrics_port(service),
                nats_url=self.nats().url,
            ),
        }
        # Its NATS user is named after it (infra/nats/nats.conf).
        env[f"{service.env_prefix}NATS_USER"] = service.name
        env[f"{service.env_prefix}NATS_PASSWORD"] = self.nats_passwords()[service.name]
        # users-svc knows every other service by its client secret's SHA-256; they call it with it.
        client_secrets = self.client_secrets()
        if service.name == TOKEN_ISSUER_SERVICE:
            env[f"{service.env_prefix}SERVICE_CLIENTS"] = json.dumps(
                {
                    s.name: {
                        "secret_sha256": [
                            hashlib.sha256(client_secrets[s.name].encode()).hexdigest()
                        ],
                        "scopes": list(s.scopes),
                    }
                    for s in self.services
                    if s.name != TOKEN_ISSUER_SERVICE
                }
            )
        elif issuer is not None:
            env[f"{service.env_prefix}USERS_URL"] = issuer.base_url
            env[f"{service.env_prefix}CLIENT_SECRET"] = client_secrets[service.name]
        if pooler is not None:
            env[f"{service.env_prefix}DB_POOLER"] = "pgbouncer"
        return env

    def _start_services(
        self,
        postgres: EmbeddedPostgres,
        pooler: PgBouncer | None,
        replicas: int,
        *,
        observability: bool,
    ) -> None:
        """Every service under honcho (and Prometheus, with `observability`), then (with
        replicas) a balancer on each service's port."""
        # With replicas, each on a port of its own behind the service's balancer.
        ports = {s.name: [free_port() for _ in range(replicas)] for s in self.services}
        ports = ports if replicas > 1 else {}
        lines = supervisor.service_lines(self.services, ports, folder=self.state_dir)
        if observability:
            lines.append(supervisor.prometheus_line(self.state_dir, self.services, ports))
        env = {
            k: v for s in self.services for k, v in self.service_env(s, postgres, pooler).items()
        }
        process = supervisor.start(
            lines, env, folder=self.state_dir, log_file=self.log_file, root=ROOT
        )
        state = State(
            mode="native",
            services={s.name: s.port for s in self.services},
            postgres_port=postgres.port,
            supervisor_pid=process.pid,
            processes=[(process.pid, process.create_time())],
            pooler_port=pooler.port if pooler is not None else None,
            replicas=replicas,
            prometheus_port=supervisor.prometheus_port() if observability else None,
            nats_port=self.nats().port,
        )
        state.save(self.state_file)
        if ports:
            backends = {f"{n}-{i}": p for n, ps in ports.items() for i, p in enumerate(ps, 1)}
            self._wait_until_ready(process.pid, _readiness(backends))
            for s in self.services:
                self.balancer(s.name, port=s.port, backends=ports[s.name]).start()
        ready = _readiness({s.name: s.port for s in self.services})
        if state.prometheus_port is not None:
            ready["prometheus"] = f"http://{HOST}:{state.prometheus_port}/-/ready"
        self._wait_until_ready(process.pid, ready)
        state.processes += [
            (child.pid, child.create_time()) for child in process.children(recursive=True)
        ]
        state.save(self.state_file)

    def _wait_until_ready(self, supervisor_pid: int, urls: dict[str, str]) -> None:
        waiting = dict(urls)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                if not is_alive(supervisor_pid):
                    raise StackError(
                        f"the services stopped while starting; the end of {self.log_file}:\n"
                        + log_tail(self.log_file, 20)
                    )
                if time.monotonic() > deadline:
                    raise StackError(
                        f"not ready after {READY_TIMEOUT_SECONDS:.0f}s: {', '.join(waiting)}; "
                        f"the end of {self.log_file}:\n" + log_tail(self.log_file, 20)
                    )
                for name, url in list(waiting.items()):
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(url).status_code == 200:
                            del waiting[name]
                time.sleep(0.2)

    # -- rollout ----------------------------------------------------------------------------

    def rollout(self, name: str, *, say: Say = print) -> None:
        """Replace each replica of service `name`, one at a time, as a Deployment's rolling
        update does: a new process on a new port (under a honcho of its own, with the settings
        `up` wrote), in the balancer once ready; then the old one out of it, drained, stopped
        with SIGTERM. The state records each new process as it joins."""
        service, state = self.service(name), self.state()
        if state is None or state.mode != "native" or not self.is_up():
            raise StackError("the native stack is not running: make up REPLICAS=3 first")
        if state.replicas < 2:
            raise StackError(
                f"{name} runs as one process on its port, with no balancer to move its requests "
                "to a new one: make up REPLICAS=2 (or more) first"
            )
        balancer = self.balancer(name)
        old = balancer.servers()
        number = max(int(server.rsplit("-", 1)[1]) for server in old)
        for server, (port, _, _) in old.items():
            number, new_port, started = number + 1, free_port(), time.monotonic()
            line = supervisor.replica_line(
                service, number, new_port, folder=self.state_dir, keep=False
            )
            procfile = self.state_dir / "replicas" / f"{service.name}-{number}.Procfile"
            procfile.write_text(line)
            process = supervisor.honcho(
                procfile, self.state_dir / "services.env", log_file=self.log_file, root=ROOT
            )
            state.processes.append((process.pid, process.create_time()))
            state.save(self.state_file)
            try:
                ready = _readiness({f"{service.name}-{number}": new_port})
                self._wait_until_ready(process.pid, ready)
                balancer.add(f"{service.name}-{number}", new_port)
            except (StackError, LoadBalancerError):
                supervisor.stop([(process.pid, process.create_time())])
                raise
            children = process.children(recursive=True)
            state.processes += [(child.pid, child.create_time()) for child in children]
            state.save(self.state_file)
            balancer.drain(server)
            supervisor.retire(state.processes, port, folder=self.state_dir)
            balancer.delete(server)
            say(
                f"{name}: {server} (port {port}) replaced by {service.name}-{number} "
                f"(port {new_port}) in {time.monotonic() - started:.1f}s"
            )
        state.processes = [(p.pid, p.create_time()) for p in supervisor.ours(state.processes)]
        state.save(self.state_file)

    # -- down, ps, logs ---------------------------------------------------------------------

    def down(self, *, say: Say = print) -> None:
        """Stop the services, then NATS and Postgres. The data stays for the next `up`."""
        with uninterrupted():  # a second Ctrl-C must not leave half a stack running
            state = self._stop_services()
            postgres = self.postgres(state.postgres_port if state is not None else None)
            self.nats(state.nats_port if state is not None else None).stop()
            if postgres.is_running():
                try:
                    postgres.stop()
                except EmbeddedPostgresError:
                    postgres.kill()
            self.state_file.unlink(missing_ok=True)
            say("stack: stopped" if state is not None else "stack: nothing was running")

    def _stop_services(self) -> State | None:
        """Stop the services (and the balancers, the pooler and Prometheus), not NATS nor
        Postgres."""
        state = self.state()
        if state is not None:
            supervisor.stop(state.processes)
        postgres = self.postgres(state.postgres_port if state is not None else None)
        for server in [*(self.balancer(s.name) for s in self.services), self.pooler(postgres)]:
            if server.is_running():
                server.stop()
        return state

    def status_lines(self) -> list[str]:
        """What runs, from the state `up` wrote: Postgres, then each service on its port."""
        state = self.state()
        if state is None:
            return ["stack: not running"]
        postgres = self.postgres(state.postgres_port)
        lines = [
            f"mode: {state.mode}",
            f"postgres   {_up(postgres.pid()):<16}{HOST}:{state.postgres_port}  "
            f"data in {postgres.data_dir}",
        ]
        if state.nats_port is not None:
            nats = self.nats(state.nats_port)
            lines.append(
                f"nats       {_up(nats.pid()):<16}{HOST}:{state.nats_port}  "
                f"JetStream, data in {nats.data_dir}"
            )
        if state.pooler_port is not None:
            lines.append(f"pgbouncer  {'up':<16}{HOST}:{state.pooler_port}  transaction mode")
        each = f" ({state.replicas} replicas behind HAProxy)" if state.replicas > 1 else ""
        with httpx.Client(timeout=1.0) as client:
            for name, port in state.services.items():
                url = f"http://{HOST}:{port}"
                lines.append(f"{name:<10} {readiness(client, url):<16}{url}/docs{each}")
        if state.prometheus_port is not None:
            lines.append(f"{'prometheus':<10} {'':<16}http://{HOST}:{state.prometheus_port}")
        return lines

    def follow_logs(self, *, lines: int = 50) -> None:
        """Print the services' log as it grows, until the stack stops (or Ctrl-C)."""
        print(log_tail(self.log_file, lines))
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


def _up(pid: int | None) -> str:
    return f"up (pid {pid})" if pid else "down"


def _shape(replicas: int, pooler: bool, prometheus: bool) -> str:
    """How a stack runs: `1 process per service, no pooler` (`make up`'s default)."""
    parts = [f"{replicas} process{'es' if replicas > 1 else ''} per service"]
    parts.append("PgBouncer" if pooler else "no pooler")
    parts += ["Prometheus"] if prometheus else []
    return ", ".join(parts)


def readiness(client: httpx.Client, base_url: str) -> str:
    """`ready`, `down`, or `not ready` and why, as the service's `/health/ready` says."""
    try:
        answer = client.get(f"{base_url}/health/ready")
    except httpx.TransportError:
        return "down"
    if answer.status_code == 200:
        return "ready"
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = None
    return f"not ready ({detail or answer.status_code})"


def _readiness(ports: dict[str, int]) -> dict[str, str]:
    return {name: f"http://{HOST}:{port}/health/ready" for name, port in ports.items()}
