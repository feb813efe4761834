"""The local stack: every service of the workspace with its own database, in one command.

`up` runs infra/docker-compose.yml when a Docker engine answers, else the same stack natively
(tools/native_stack.py). The other commands act on the stack's databases (natively they start its
Postgres when it is not running), or on the service's own `<PREFIX>_DATABASE_URL` when it is set.
What each does, the ports and the state folder: docs/development.md, and `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence

import compose
import stack_database
import supervisor
from common.events.status import EventFigures, event_figures, figures_table
from devstack.stopping import stopping_on_signals
from native_stack import SINGLE, Scale, Stack
from stack_services import ROOT, Service, StackError, State, discover_services, state_dir

# `make dev` serves a service here, beside the stack's copy of it on its own port.
DEV_PORT_OFFSET = 100


def print_urls(services: Sequence[Service]) -> None:
    width = max(len(s.name) for s in services)
    for service in services:
        print(f"  {service.name:<{width}}  {service.base_url}   docs: {service.base_url}/docs")


def choose_mode(requested: str) -> str:
    if requested == "auto":
        return "docker" if compose.docker_available() else "native"
    if requested == "docker" and not compose.docker_available():
        raise StackError("MODE=docker, but no Docker engine with the compose plugin answers")
    return requested


def run_up(
    stack: Stack, *, mode: str, attach: bool, scale: Scale = SINGLE, observe: bool = False
) -> int:
    print(f"mode: {mode}")
    if mode == "docker":
        if scale != SINGLE:
            raise StackError("POOLER and REPLICAS shape the native stack (Compose has PgBouncer)")
        return compose_up(stack, attach=attach, observe=observe)
    started = time.monotonic()
    if stack.up(scale=scale, observability=observe):
        print(f"stack: every service ready in {time.monotonic() - started:.1f}s")
    else:
        print("stack: already up, every service ready")
    print_urls(stack.services)
    state = stack.state()
    if state is not None and state.prometheus_port is not None:
        print(f"  prometheus  http://127.0.0.1:{state.prometheus_port}")
    if not attach:
        print("logs: make logs    status: make ps    stop: make down")
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        stack.follow_logs()
    stack.down()
    return 0


def compose_up(stack: Stack, *, attach: bool, observe: bool) -> int:
    compose.ensure_env_file()
    state = State(mode="docker", services={s.name: s.port for s in stack.services})
    profile: list[str] = []
    if observe:
        # The services send their traces to the profile's collector (infra/otel-collector/).
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", compose.COLLECTOR_ENDPOINT)
        profile = ["--profile", "observability"]
        state.prometheus_port = supervisor.prometheus_port()
    state.save(stack.state_file)
    if attach:
        print_urls(stack.services)
        return compose.compose(*profile, "up", "--build")
    code = compose.compose(*profile, "up", "--build", "--wait")
    if code == 0:
        print_urls(stack.services)
    return code


def service_env(stack: Stack, service: Service) -> dict[str, str]:
    """The settings that point `service` at the stack, natively or in Compose; its own
    `<PREFIX>_DATABASE_URL` in this environment wins, and then the stack is not needed. A
    `DATABASE_URL` without the prefix is refused, as the service refuses it, and so is a URL
    whose login the server refuses."""
    own = refuse_a_plain_database_url(service)
    state = stack.state()
    if state is not None and state.mode == "docker":
        env = compose.host_env(service, stack.services)
        source = "the password in infra/.env when Postgres's volume was made"
    else:
        if own not in os.environ:
            stack.start_database(say=lambda line: print(line, file=sys.stderr))
        env = stack.service_env(service)
        source = "the stack's own"
    if own in os.environ:
        env[own], source = os.environ[own], f"{own} in your environment"
    stack_database.check_login(service, env[own], source=source)
    return env


def refuse_a_plain_database_url(service: Service) -> str:
    """The name of the service's database variable; a `DATABASE_URL` without it is refused, as
    the service itself refuses it."""
    own = f"{service.env_prefix}DATABASE_URL"
    if "DATABASE_URL" in os.environ and own not in os.environ:
        raise StackError(
            f"DATABASE_URL is set, but {service.name} reads its database from {own}: rename "
            "the variable"
        )
    return own


def python(stack: Stack, service: Service, *arguments: str) -> int:
    """Python with `arguments`, in the service's folder, on the stack (Alembic, `make admin`)."""
    env = {**os.environ, **service_env(stack, service)}
    return subprocess.call([sys.executable, *arguments], cwd=service.directory, env=env)


def migrate(stack: Stack, services: Sequence[Service]) -> int:
    for service in services:
        stack_database.check_revisions(service)
    for service in services:
        print(f"== {service.name}")
        code = python(stack, service, "-m", "alembic", "upgrade", "head")
        if code != 0:
            return code
    return 0


def revision(stack: Stack, service: Service, message: str) -> int:
    """An autogenerated revision, against the service's database brought to head first (Alembic
    compares the models with a database at the head of the scripts)."""
    stack_database.check_revisions(service)
    return python(stack, service, "-m", "alembic", "upgrade", "head") or python(
        stack, service, "-m", "alembic", "revision", "--autogenerate", "-m", message
    )


def psql(stack: Stack, service: Service) -> int:
    state = stack.state()
    if state is not None and state.mode == "docker":
        database = service.database
        return compose.compose("exec", "postgres", "psql", "-U", database, database)
    stack.start_database(say=lambda line: print(line, file=sys.stderr))
    postgres = stack.postgres()
    url = postgres.url(user=service.database, password=service.password, database=service.database)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    os.execv(str(postgres.bin_dir / "psql"), ["psql", dsn])


def dev(stack: Stack, service: Service, *, port: int | None) -> int:
    """`service` with auto-reload (its code and `common`'s), against the stack, started when it
    is not running, on `port` (its stack port + 100 by default)."""
    own = refuse_a_plain_database_url(service)
    state = stack.state()
    if state is None or (state.mode == "native" and not stack.is_up()):
        run_up(stack, mode=choose_mode(os.environ.get("MODE") or "auto"), attach=False)
    env = service_env(stack, service)
    state = stack.state()
    native = state is not None and state.mode == "native" and own not in os.environ
    # Its revisions as the code being worked on has them, on the database the stack shares.
    if native and stack.migrate([service], say=lambda _: None):
        print(
            f"{service.name}: migrations applied; the stack's copy on port {service.port} runs "
            "the code from before them and is not ready until `make up` starts it again"
        )
    port = port or service.port + DEV_PORT_OFFSET
    # common.serve, as the stack runs it: a setting the service refuses is one line, here too.
    command = [
        sys.executable,
        "-m",
        "common.serve",
        service.app,
        "--reload",
        f"--reload-dir={service.directory / 'src'}",
        f"--reload-dir={ROOT / 'packages' / 'common' / 'src'}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    print(f"{service.name} with auto-reload: http://127.0.0.1:{port}/docs (Ctrl-C stops it)")
    os.chdir(service.directory)
    # Its metrics beside the stack copy's, as its port is beside that copy's.
    metrics = {f"{service.env_prefix}METRICS_PORT": str(port + supervisor.METRICS_PORT_OFFSET)}
    os.execve(sys.executable, command, {**os.environ, **env, **metrics})


def events(stack: Stack) -> int:
    """Each service's outbox backlog, consumer lag and dead letters, on the stack."""

    envs = {service.name: service_env(stack, service) for service in stack.services}

    async def gather() -> list[EventFigures]:
        rows = []
        for service in stack.services:
            env = envs[service.name]
            prefix = service.env_prefix
            rows.append(
                await event_figures(
                    service.name,
                    database_url=env[f"{prefix}DATABASE_URL"],
                    nats_url=env[f"{prefix}NATS_URL"],
                    nats_user=env.get(f"{prefix}NATS_USER"),
                    nats_password=env.get(f"{prefix}NATS_PASSWORD"),
                    stream=os.environ.get(f"{prefix}EVENTS_STREAM", "events"),
                )
            )
        return rows

    print(figures_table(asyncio.run(gather())))
    return 0


def print_env(stack: Stack, service: Service) -> int:
    for key, value in service_env(stack, service).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start every service and wait until it is ready")
    up.add_argument(
        "--mode", choices=("auto", "docker", "native"), default=os.environ.get("MODE") or "auto"
    )
    up.add_argument("--attach", action="store_true", help="then stream logs; Ctrl-C stops all")
    up.add_argument("--pooler", action="store_true", help="PgBouncer in front of Postgres")
    up.add_argument("--replicas", type=int, default=1, help="processes per service, balanced")
    up.add_argument(
        "--observability",
        action="store_true",
        default=os.environ.get("OBSERVABILITY", "0") not in ("", "0"),
        help="Prometheus too, scraping every service (Compose: with a collector and Grafana)",
    )
    for name, text in (
        ("down", "stop everything (the data stays)"),
        ("ps", "what runs, and where"),
        ("logs", "follow the services' logs"),
        ("events", "each service's outbox backlog, consumer lag, dead letters"),
    ):
        commands.add_parser(name, help=text)
    for name, text in (
        ("migrate", "alembic upgrade head, on the stack"),
        ("revision", "a new autogenerated migration"),
        ("psql", "psql on the service's database"),
        ("env", "the variables that point a service at the stack, as export lines"),
        ("python", "python in a service's folder, on the stack"),
        ("dev", "one service with auto-reload, on the stack"),
        ("rollout", "replace a service's replicas one at a time, no request lost"),
    ):
        command = commands.add_parser(name, help=text)
        if name == "migrate":
            command.add_argument("--service", help="one service (default: every one)")
        else:
            command.add_argument("--service", required=True)
    commands.choices["revision"].add_argument("-m", "--message", required=True)
    commands.choices["python"].add_argument("arguments", nargs=argparse.REMAINDER)
    commands.choices["dev"].add_argument("--port", type=int, help="default: the port + 100")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    stack = Stack(state_dir(), discover_services())
    try:
        # SIGTERM as Ctrl-C: `up` stops what it started, `up --attach` stops the stack.
        with stopping_on_signals():
            return dispatch(stack, args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def dispatch(stack: Stack, args: argparse.Namespace) -> int:
    if args.command == "up":
        scale = Scale(pooler=args.pooler, replicas=max(1, args.replicas))
        return run_up(
            stack,
            mode=choose_mode(args.mode),
            attach=args.attach,
            scale=scale,
            observe=args.observability,
        )
    state = stack.state()
    if args.command in ("down", "ps", "logs") and state is not None and state.mode == "docker":
        return compose_command(stack, args.command)
    if args.command == "down":
        stack.down()
    elif args.command == "ps":
        print("\n".join(stack.status_lines()))
    elif args.command == "logs":
        if not stack.log_file.exists():
            raise StackError("no logs yet: run `make up` first")
        stack.follow_logs()
    elif args.command == "events":
        if state is None:
            raise StackError("the stack is not running: make up first")
        return events(stack)
    elif args.command == "migrate":
        chosen = [stack.service(args.service)] if args.service else stack.services
        return migrate(stack, chosen)
    elif args.command == "revision":
        return revision(stack, stack.service(args.service), args.message)
    elif args.command == "psql":
        return psql(stack, stack.service(args.service))
    elif args.command == "python":
        arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
        return python(stack, stack.service(args.service), *arguments)
    elif args.command == "dev":
        return dev(stack, stack.service(args.service), port=args.port)
    elif args.command == "rollout":
        stack.rollout(args.service)
    else:
        return print_env(stack, stack.service(args.service))
    return 0


def compose_command(stack: Stack, command: str) -> int:
    if command == "down":
        code = compose.compose("--profile", "observability", "down")
        stack.state_file.unlink(missing_ok=True)
        return code
    if command == "ps":
        return compose.compose("ps")
    return compose.compose("logs", "--follow")


if __name__ == "__main__":
    sys.exit(main())
