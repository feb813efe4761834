"""The local stack: every service of the workspace with its own database, in one command.

    uv run python tools/stack.py up [--mode auto|docker|native] [--attach]
    uv run python tools/stack.py down | ps | logs

With a working Docker engine (`--mode auto` finds one) `up` runs infra/docker-compose.yml. Without
one it runs the same stack natively: an embedded PostgreSQL whose data lives in `.local/stack/`,
each service's database and role made by infra/postgres's own script, every service's migrations,
then every service under uvicorn, supervised by honcho in the background with logs prefixed by
service. `up` returns once every service answers `/health/ready` and prints where each one is;
`--attach` then streams the logs, and Ctrl-C stops everything. `down` stops everything; the data
stays for the next `up`.

The services are the folders of `services/`: a service added later joins without a change here.
Ports: each service's `[tool.stack] port` (its pyproject.toml), or `STACK_<NAME>_PORT`
(`STACK_USERS_PORT`); Postgres: `STACK_POSTGRES_PORT`, else a free port.
`STACK_DIR` moves the state folder (tests run their own stack that way).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from native_stack import (
    COMPOSE_FILE,
    INFRA_DIR,
    ROOT,
    Service,
    Stack,
    StackError,
    State,
    discover_services,
)

# -- Docker Compose -------------------------------------------------------------------------


def docker_available() -> bool:
    """A Docker engine that answers, with the compose plugin."""
    if shutil.which("docker") is None:
        return False
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            subprocess.run(command, capture_output=True, timeout=15, check=True)
        except (subprocess.SubprocessError, OSError):
            return False
    return True


def compose(*args: str) -> int:
    return subprocess.call(["docker", "compose", "--file", str(COMPOSE_FILE), *args])


def compose_up(stack: Stack, *, attach: bool) -> int:
    env_file = INFRA_DIR / ".env"
    if not env_file.exists():
        shutil.copyfile(INFRA_DIR / ".env.example", env_file)
        print(f"created {env_file} from .env.example: change its passwords for anything shared")
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    State(mode="docker", services={s.name: s.port for s in stack.services}).save(stack.state_file)
    if attach:
        print_urls(stack.services)
        return compose("up", "--build")
    code = compose("up", "--build", "--wait")
    if code == 0:
        print_urls(stack.services)
    return code


# -- command line ---------------------------------------------------------------------------


def print_urls(services: Sequence[Service]) -> None:
    width = max(len(s.name) for s in services)
    for service in services:
        print(f"  {service.name:<{width}}  {service.base_url}   docs: {service.base_url}/docs")


def choose_mode(requested: str) -> str:
    if requested == "auto":
        return "docker" if docker_available() else "native"
    if requested == "docker" and not docker_available():
        raise StackError("MODE=docker, but no Docker engine with the compose plugin answers")
    return requested


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start every service and wait until it is ready")
    up.add_argument(
        "--mode", choices=("auto", "docker", "native"), default=os.environ.get("MODE") or "auto"
    )
    up.add_argument("--attach", action="store_true", help="then stream logs; Ctrl-C stops all")
    commands.add_parser("down", help="stop everything (the data stays)")
    commands.add_parser("ps", help="what runs, and where")
    commands.add_parser("logs", help="follow the services' logs")
    args = parser.parse_args(argv)

    state_dir = Path(os.environ.get("STACK_DIR") or ROOT / ".local" / "stack").resolve()
    stack = Stack(state_dir, discover_services())
    state = stack.state()
    try:
        if args.command == "up":
            return run_up(stack, mode=choose_mode(args.mode), attach=args.attach)
        if state is not None and state.mode == "docker":
            return run_compose_command(stack, args.command)
        if args.command == "down":
            stack.down()
        elif args.command == "ps":
            print("\n".join(stack.status_lines()))
        elif args.command == "logs":
            if not stack.log_file.exists():
                raise StackError("no logs yet: run `make up` first")
            stack.follow_logs()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def run_up(stack: Stack, *, mode: str, attach: bool) -> int:
    print(f"mode: {mode}")
    if mode == "docker":
        return compose_up(stack, attach=attach)
    if stack.is_up():
        print("stack: already up")
    else:
        started = time.monotonic()
        port = os.environ.get("STACK_POSTGRES_PORT")
        stack.up(postgres_port=int(port) if port else None)
        print(f"stack: every service ready in {time.monotonic() - started:.1f}s")
    print_urls(stack.services)
    if not attach:
        print("logs: make logs    status: make ps    stop: make down")
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        stack.follow_logs()
    stack.down()
    return 0


def run_compose_command(stack: Stack, command: str) -> int:
    if command == "down":
        code = compose("down")
        stack.state_file.unlink(missing_ok=True)
        return code
    if command == "ps":
        return compose("ps")
    return compose("logs", "--follow")


if __name__ == "__main__":
    sys.exit(main())
