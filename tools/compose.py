"""The stack with Docker: infra/docker-compose.yml, and how a process on the host reaches it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from dotenv import dotenv_values

from common.auth import JWKS_PATH
from devstack.processes import HOST
from stack_services import (
    DEFAULT_NATS_PORT,
    DEFAULT_POSTGRES_PORT,
    ROOT,
    TOKEN_ISSUER_SERVICE,
    Service,
    StackError,
)

INFRA_DIR = ROOT / "infra"
COMPOSE_FILE = INFRA_DIR / "docker-compose.yml"
# Inside Compose's network users-svc is `users-svc:8000`: what its tokens name as their issuer.
COMPOSE_ISSUER = f"http://{TOKEN_ISSUER_SERVICE}:8000"
# The observability profile's OpenTelemetry Collector, as the services reach it (OTLP over HTTP).
COLLECTOR_ENDPOINT = "http://otel-collector:4318"


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


def ensure_env_file() -> None:
    env_file = INFRA_DIR / ".env"
    if not env_file.exists():
        shutil.copyfile(INFRA_DIR / ".env.example", env_file)
        print(f"created {env_file} from .env.example: change its passwords for anything shared")


def host_env(service: Service, services: Sequence[Service]) -> dict[str, str]:
    """A service's settings for a process on the host (`make dev`, `make migrate`) that uses
    Compose's Postgres, NATS and users-svc, published on loopback."""
    values = dotenv_values(INFRA_DIR / ".env")
    password = values.get(f"{service.database.upper()}_DB_PASSWORD")
    if not password:
        raise StackError(f"infra/.env has no {service.database.upper()}_DB_PASSWORD")
    port = os.environ.get("STACK_POSTGRES_PORT") or values.get("STACK_POSTGRES_PORT")
    database = service.database
    url = (
        f"postgresql+asyncpg://{database}:{password}@{HOST}:{port or DEFAULT_POSTGRES_PORT}/"
        f"{database}"
    )
    nats_port = os.environ.get("STACK_NATS_PORT") or values.get("STACK_NATS_PORT")
    env = {
        "ENVIRONMENT": str(values.get("ENVIRONMENT") or "development"),
        f"{service.env_prefix}DATABASE_URL": url,
        f"{service.env_prefix}NATS_URL": f"nats://{HOST}:{nats_port or DEFAULT_NATS_PORT}",
        # Its NATS user is named after it (infra/nats/nats.conf).
        f"{service.env_prefix}NATS_USER": service.name,
        f"{service.env_prefix}NATS_PASSWORD": str(
            values.get(f"{service.env_prefix}NATS_PASSWORD") or ""
        ),
    }
    issuer = next((s for s in services if s.name == TOKEN_ISSUER_SERVICE), None)
    if issuer is not None:
        env[f"{service.env_prefix}TOKEN_ISSUER"] = COMPOSE_ISSUER
        env[f"{service.env_prefix}JWKS_URL"] = f"{issuer.base_url}{JWKS_PATH}"
    # Its client identity at users-svc, and users-svc's list of them (infra/.env).
    for name in ("USERS_URL", "CLIENT_SECRET", "SERVICE_CLIENTS"):
        value = values.get(f"{service.env_prefix}{name}")
        if value:
            env[f"{service.env_prefix}{name}"] = value
    if issuer is not None and service.name != TOKEN_ISSUER_SERVICE:
        env[f"{service.env_prefix}USERS_URL"] = issuer.base_url
    return env
