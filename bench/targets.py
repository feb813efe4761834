"""What the benchmark measures, and how each is started.

- floor: bench/floor.py, raw ASGI + asyncpg + orjson, the same paths and JSON as the services;
- services: things-svc and users-svc as shipped, with valid tokens;
- generated: a domain made by `make new-domain SERVICE=things-svc NAME=widgets` in a scratch copy
  of the repository at bench time (the same table shape as things), served by that copy's
  things-svc: what a user of the template writes;
- traced: the services again, with tracing on (`TRACED_ENV`: 10% of the requests sampled, spans
  exported over OTLP/HTTP to bench/otlp_sink.py); `services` is the same code with tracing off.

The services run as their images run them: `python -m common.serve` from an environment of their
own with no development tools and compiled bytecode (`uv sync --no-dev --no-editable`).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from seed import Seed

from common.settings import API_PREFIX
from devstack.processes import ServiceProcess, free_port
from devstack.repository import copy_repository

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
# The workspace's facts come from tools/monorepo.py, a script of tools/, not an installed package.
sys.path.insert(0, str(ROOT / "tools"))

from monorepo import ServiceFacts, Workspace  # noqa: E402

ISSUER = "http://bench.users-svc"
AUDIENCE = "api"
# Never checked (the embedded server trusts loopback), but production refuses an empty password.
DB_PASSWORD = "bench-unchecked"
GENERATED_DOMAIN = "widgets"
# Tracing as a production deployment would turn it on: a tenth of the traces, batched OTLP/HTTP.
TRACED_SAMPLE_RATIO = "0.1"


def traced_env(sink_url: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": TRACED_SAMPLE_RATIO,
    }


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str  # which database answers it: things, users
    method: str
    path: str  # with `{collection}` for the things-like collection of the target
    body: bytes = b""

    def url(self, target: "Target", seed: Seed) -> str:
        path = self.path.format(collection=target.collection, thing_id=seed.thing_id)
        return target.servers[self.service].url + API_PREFIX + path

    def served_by(self, target: "Target") -> bool:
        return self.service in target.servers


@dataclass(eq=False)
class Server:
    process: ServiceProcess
    ready_times: list[float]  # seconds from start to the first 200 on /health/ready, per start
    rss_ready: int

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def ready_seconds(self) -> float:
        return statistics.median(self.ready_times)


@dataclass
class Target:
    name: str
    key: str  # in its databases' names
    collection: str  # what its things are called in its paths: things, widgets
    services: tuple[str, ...]  # the databases it serves from: things, users
    root: Path = ROOT  # the repository its services run from
    # Each service's production-like Python (none for the floor), by database.
    pythons: dict[str, str] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)  # by database

    def database(self, service: str) -> str:
        return f"bench_{self.key}_{service}"

    def facts(self, service: str) -> ServiceFacts:
        return service_facts(self.root)[service]


def service_facts(root: Path = ROOT) -> dict[str, ServiceFacts]:
    return {facts.database: facts for facts in Workspace.load(root).services()}


def production_python(root: Path, service: str) -> str:
    """The Python of an environment like the service's image: `uv sync --no-dev --no-editable`."""
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("uv is needed on PATH (`make bench` puts the one it installed there)")
    environment = root / ".local" / "bench" / service
    options = ["--locked", "--no-dev", "--no-editable", "--compile-bytecode", "--quiet"]
    # uv rebuilds a local package only when its pyproject.toml changes: rebuild the workspace's
    # own ones every time, so the benchmark measures the code as it is.
    workspace = [f"--reinstall-package={name}" for name in ("common", service)]
    subprocess.run(
        [uv, "sync", *options, *workspace, "--package", service],
        cwd=root,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)},
        check=True,
    )
    return str(environment / "bin" / "python")


def generated_copy(folder: Path) -> Path:
    """A copy of the repository (its files as git sees them) with a generated domain in
    things-svc, made by the generator `make new-domain` runs."""
    copy = copy_repository(ROOT, folder / "generated-repository")
    subprocess.run(
        [sys.executable, "tools/scaffold.py", "new-domain", "things-svc", GENERATED_DOMAIN],
        cwd=copy,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return copy


def migrate(python: str, facts: ServiceFacts, database_url: str) -> None:
    """`alembic upgrade head` in the service's folder, with the service's own environment."""
    subprocess.run(
        [python, "-m", "alembic", "upgrade", "head"],
        cwd=facts.directory,
        env={**os.environ, f"{facts.env_prefix}DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


async def start_server(process: ServiceProcess, *, starts: int) -> Server:
    """Start `process` and wait until it is ready, `starts` times (all but the last stopped
    again), timing each start; the last one keeps running."""
    times: list[float] = []
    try:
        for start in range(starts):
            started = time.perf_counter()
            process.start()
            await process.wait_ready()
            times.append(time.perf_counter() - started)
            if start < starts - 1:
                process.stop()
    except BaseException:
        # Not a server of the run's yet: nobody else knows to stop it.
        process.stop()
        raise
    return Server(process, times, process.running.memory_info().rss)


def service_process(
    facts: ServiceFacts,
    *,
    python: str,
    log_dir: Path,
    label: str,
    settings: dict[str, str],
    env: dict[str, str] | None = None,
) -> ServiceProcess:
    """A service as production runs it; `settings` are its settings by field name, `env` other
    variables (OTEL_*). Its metrics endpoint is on a free port (production's 9000 is one port
    for all of them)."""
    settings = {"metrics_port": str(free_port()), "metrics_host": "127.0.0.1", **settings}
    env = {"ENVIRONMENT": "production", **(env or {})}
    env |= {f"{facts.env_prefix}{name.upper()}": value for name, value in settings.items()}
    return ServiceProcess(
        f"{facts.name} ({label})",
        facts.app,
        cwd=facts.directory,
        env=env,
        log=log_dir / f"{facts.name}-{label}.log",
        python=python,
        options=["--no-access-log", "--log-level", "warning"],
    )


def otlp_sink_process(log_dir: Path) -> ServiceProcess:
    return ServiceProcess(
        "otlp-sink",
        ["otlp_sink:app", "--app-dir", str(BENCH)],
        cwd=log_dir,
        env={},
        log=log_dir / "otlp-sink.log",
        options=["--no-access-log", "--log-level", "warning"],
    )


def floor_process(
    *, things_dsn: str, users_dsn: str, subject: str, pool: int, log_dir: Path
) -> ServiceProcess:
    env = {
        "FLOOR_THINGS_DSN": things_dsn,
        "FLOOR_USERS_DSN": users_dsn,
        "FLOOR_SUBJECT": subject,
        "FLOOR_POOL_SIZE": str(pool),
        "FLOOR_API_PREFIX": API_PREFIX,
    }
    return ServiceProcess(
        "floor",
        ["floor:app", "--app-dir", str(BENCH)],
        cwd=log_dir,
        env=env,
        log=log_dir / "floor.log",
        options=["--no-access-log", "--log-level", "warning"],
    )
