"""A service as its image runs it in production, observed from outside: JSON log lines (uvicorn's
own included) and one metrics endpoint that adds up every worker process."""

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack.processes import ServiceProcess, free_port
from stack_services import discover_services

pytestmark = pytest.mark.processes

THINGS = next(s for s in discover_services({}) if s.name == "things-svc")
WORKERS = 2
POOL_SIZE = 3
REQUESTS = 30


def production_things(folder: Path, *, metrics_port: int) -> ServiceProcess:
    prefix = THINGS.env_prefix
    env = {
        "ENVIRONMENT": "production",
        # Never connected to: /health/live and the metrics need no database.
        f"{prefix}DATABASE_URL": "postgresql+asyncpg://things:not-a-placeholder@127.0.0.1:9/t",
        f"{prefix}TOKEN_ISSUER": "http://users.test",
        f"{prefix}TOKEN_AUDIENCE": "api",
        f"{prefix}JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
        # Never reached either: the events wait (docs/events.md).
        f"{prefix}NATS_URL": "nats://127.0.0.1:9",
        f"{prefix}NATS_USER": "things-svc",
        f"{prefix}NATS_PASSWORD": "not-a-placeholder",
        # Called only to share a thing, which this test does not.
        f"{prefix}USERS_URL": "http://127.0.0.1:9",
        f"{prefix}CLIENT_SECRET": "not-a-placeholder-client-secret",
        f"{prefix}METRICS_PORT": str(metrics_port),
        f"{prefix}METRICS_HOST": "127.0.0.1",
        f"{prefix}DB_POOL_SIZE": str(POOL_SIZE),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
    }
    (folder / "metrics").mkdir()
    return ServiceProcess(
        "things-svc",
        THINGS.app,
        cwd=THINGS.directory,
        env=env,
        log=folder / "things.log",
        # A worker that takes long to import on a busy machine is not a dead one.
        options=[f"--workers={WORKERS}", "--timeout-worker-healthcheck=60"],
    )


def sample(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus's text format."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = ",".join(sorted((match.group(2) or "").split(",")))
            if found == wanted:
                return float(match.group(3))
    return None


async def scrape_until(url: str, done: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                text = (await client.get(url)).text
                if done(text):
                    return text
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never showed what was expected:\n{text[-3000:]}")


async def test_production_logs_json_lines_and_its_metrics_add_up_every_worker(
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    process = production_things(tmp_path, metrics_port=metrics_port)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    process.start()
    try:
        # Every worker has written its pools' capacity: both are up.
        await scrape_until(
            metrics,
            lambda text: sample(text, "db_pool_capacity", pool="write") == WORKERS * POOL_SIZE,
        )
        # A new connection per request, so the requests spread over the workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            for _ in range(REQUESTS):
                assert (await client.get(f"{process.url}/health/live")).status_code == 200
        live = {"method": "GET", "route": "/health/live", "status": "200"}
        # Whichever worker answers each scrape, it shows the sum of all of them.
        for _ in range(5):
            text = await scrape_until(metrics, lambda t: True)
            assert sample(text, "http_server_request_duration_seconds_count", **live) == REQUESTS
    finally:
        process.stop()

    lines = process.log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line, uvicorn's too
    assert {"time", "level", "logger", "message", "request_id", "trace_id", "span_id"} <= set(
        records[0]
    )
    loggers = {record["logger"] for record in records}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert len(access) == REQUESTS
    assert all(r["request_id"] != "-" for r in access)  # logged inside the request
