"""The Compose file and the Dockerfiles, proven without a Docker engine.

Every service of the workspace must appear in Compose with its migrator, its database and its
healthcheck, and have a Dockerfile that follows the same rules: a service added later cannot be
forgotten.
"""

import configparser
import functools
import importlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from compose import COMPOSE_FILE, INFRA_DIR
from devstack.pgbouncer import default_session_timeouts
from devstack.postgres import EMBEDDED_POSTGRES_VERSION
from native_stack import NATS_CONFIG
from render_manifests import OVERLAYS_DIR, render
from stack_services import (
    DEFAULT_NATS_PORT,
    DEFAULT_POSTGRES_PORT,
    ROOT,
    Service,
    discover_services,
)

SERVICES = discover_services({})


@functools.cache
def kubernetes_image(name: str) -> str:
    """The image the Kubernetes dev overlay runs for its Deployment or StatefulSet `name`."""
    for document in render(OVERLAYS_DIR / "dev"):
        if (
            document["kind"] in {"Deployment", "StatefulSet"}
            and document["metadata"]["name"] == name
        ):
            image: str = document["spec"]["template"]["spec"]["containers"][0]["image"]
            return image
    raise LookupError(name)


UV_VERSION = re.search(r"^UV_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)


def run_tool(name: str, *args: str) -> tuple[int, str]:
    """Run a dev tool installed in the workspace's environment: its exit code and output."""
    path = shutil.which(name)
    assert path is not None, f"{name} is a dev dependency: run `make sync`"
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def by_name(service: Service) -> str:
    return service.name


def test_the_workspace_has_services() -> None:
    assert {s.name for s in SERVICES} >= {"users-svc", "things-svc"}


def test_compose_file_follows_the_compose_specification() -> None:
    code, output = run_tool(
        "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)
    )

    assert code == 0, output


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_dockerfile_passes_hadolint(service: Service) -> None:
    code, output = run_tool("hadolint", "--no-color", str(service.directory / "Dockerfile"))

    assert code == 0, output


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_dockerfile_builds_a_lean_image_that_stops_cleanly(service: Service) -> None:
    dockerfile = (service.directory / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    text = "\n".join(instructions)

    assert UV_VERSION is not None
    assert f"FROM ghcr.io/astral-sh/uv:{UV_VERSION.group(1)} AS uv" in text  # pinned, as make's
    assert f"--no-install-workspace --package {service.name}" in text
    assert f"--no-editable --package {service.name}" in text
    assert text.index("--no-install-workspace") < text.index("COPY services/")  # deps first
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user, "the runtime must not run as root"
    assert user[-1].split(":")[0] not in {"0", "root"}
    command = re.findall(r"^CMD (.+)$", text, re.MULTILINE)
    assert len(command) == 1
    # Exec form, so uvicorn gets SIGTERM; common.serve is uvicorn exiting 0 after a graceful stop.
    assert command[0].startswith('["python", "-m", "common.serve", ')
    assert f'"{service.app}"' in command[0]
    assert '"--timeout-graceful-shutdown"' in command[0]
    assert "--reload" not in text
    assert not re.search(r"PASSWORD|SECRET|DATABASE_URL", text)  # no secrets baked in


def test_compose_runs_postgres_of_the_embedded_major_version(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]

    assert postgres["image"] == f"postgres:{EMBEDDED_POSTGRES_VERSION}"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "postgres-data:/var/lib/postgresql" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert "./postgres:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]


def test_compose_runs_nats_with_jetstream_as_kubernetes_does(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"] == kubernetes_image("nats")
    assert "--jetstream" in nats["command"]
    assert "nats-data:/data" in nats["volumes"]
    assert "js-enabled-only=true" in " ".join(nats["healthcheck"]["test"])
    assert nats["ports"] == [f"127.0.0.1:${{STACK_NATS_PORT:-{DEFAULT_NATS_PORT}}}:4222"]


def test_compose_runs_nats_with_the_native_stacks_users_and_their_passwords_from_env(
    compose: dict[str, Any],
) -> None:
    nats = compose["services"]["nats"]
    config = (INFRA_DIR / "nats" / "nats.conf").read_text()
    users = re.findall(r"^\s*user: (\S+)$", config, re.MULTILINE)
    example = dotenv_values(INFRA_DIR / ".env.example")

    assert NATS_CONFIG == INFRA_DIR / "nats" / "nats.conf"
    assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
    assert "--config=/etc/nats/nats.conf" in nats["command"]
    assert "authorization" in config
    assert {"users-svc", "things-svc"} <= set(users)
    for user in users:
        variable = f"{user.removesuffix('-svc').upper()}_NATS_PASSWORD"
        assert f"password: ${variable}" in config
        # Required, from infra/.env: never a password written into the Compose file.
        assert nats["environment"][variable] == f"${{{variable}:?set {variable} in infra/.env}}"
        # Development's: the user's own name, which production refuses.
        assert example[variable] == user


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_compose_has_every_service_with_its_database_migrator_and_healthcheck(
    compose: dict[str, Any], service: Service
) -> None:
    services = compose["services"]
    postgres = services["postgres"]["environment"]
    assert service.database in postgres["SERVICE_DATABASES"].split()
    password = f"{service.database.upper()}_DB_PASSWORD"
    assert password in postgres
    url_env = f"{service.env_prefix}DATABASE_URL"
    credentials = f"postgresql+asyncpg://{service.database}:${{{password}}}"
    # The migrator on a session of its own, straight to Postgres; the API through PgBouncer.
    url = f"{credentials}@postgres:5432/{service.database}"
    pooled = f"{credentials}@pgbouncer:6432/{service.database}"

    migrator = services[f"{service.database}-migrate"]
    assert migrator["build"]["dockerfile"] == f"services/{service.name}/Dockerfile"
    assert migrator["command"] == ["alembic", "upgrade", "head"]
    assert migrator["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrator["environment"][url_env] == url

    api = services[service.name]
    assert api["image"] == migrator["image"]
    assert api["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "pgbouncer": {"condition": "service_started"},
        "nats": {"condition": "service_healthy"},
        f"{service.database}-migrate": {"condition": "service_completed_successfully"},
    }
    assert api["environment"][url_env] == pooled
    assert api["environment"][f"{service.env_prefix}NATS_URL"] == "nats://nats:4222"
    assert api["environment"][f"{service.env_prefix}NATS_USER"] == service.name
    password = f"{service.env_prefix}NATS_PASSWORD"
    assert api["environment"][password] == f"${{{password}}}"
    assert api["environment"][f"{service.env_prefix}DB_POOLER"] == "pgbouncer"
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])
    # The same host port as the native stack, on loopback only.
    port_env = f"STACK_{service.database.upper()}_PORT"
    assert api["ports"] == [f"127.0.0.1:${{{port_env}:-{service.port}}}:8000"]


def test_compose_runs_pgbouncer_in_transaction_mode_with_the_services_timeouts(
    compose: dict[str, Any],
) -> None:
    pgbouncer = compose["services"]["pgbouncer"]
    config = configparser.ConfigParser(interpolation=None)
    config.read_string((INFRA_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    timeouts = "; ".join(
        f"SET {name} = {value}" for name, value in default_session_timeouts().items()
    )

    assert pgbouncer["image"] == kubernetes_image("pgbouncer")  # the one Kubernetes runs
    assert "./pgbouncer/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro" in pgbouncer["volumes"]
    assert pgbouncer["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert config["pgbouncer"]["pool_mode"] == "transaction"
    assert config["pgbouncer"]["listen_port"] == "6432"
    assert f"connect_query='{timeouts}'" in config["databases"]["*"]
    assert "6432" not in str(pgbouncer.get("ports", []))  # reached on the Compose network only


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_env_example_names_every_password_and_port(service: Service) -> None:
    # A file people own (`make new-service` adds a service's lines): checked, not generated.
    example = (INFRA_DIR / ".env.example").read_text().splitlines()
    upper = service.database.upper()

    assert any(re.fullmatch(rf"{upper}_DB_PASSWORD=\S+", line) for line in example)
    assert f"# STACK_{upper}_PORT={service.port}" in example


def test_env_example_shows_the_native_stacks_own_ports() -> None:
    example = (INFRA_DIR / ".env.example").read_text().splitlines()

    assert f"# STACK_POSTGRES_PORT={DEFAULT_POSTGRES_PORT}" in example
    assert f"# STACK_NATS_PORT={DEFAULT_NATS_PORT}" in example


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_service_settings_use_the_prefix_the_stack_sets(service: Service) -> None:
    # The stack and Compose hand each service <PREFIX>DATABASE_URL, derived from its folder name.
    package = service.app.split(".")[0]
    settings = importlib.import_module(f"{package}.settings").Settings

    assert settings.model_config.get("env_prefix") == service.env_prefix
