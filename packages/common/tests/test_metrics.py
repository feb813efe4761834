"""Prometheus metrics as a scraper sees them: per route template, on a port of their own, and the
pools' state."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import URL

from common.db import Database
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client
from devstack.processes import free_port

DURATION = "http_server_request_duration_seconds"


def requests_counted(route: str, status: int, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value(f"{DURATION}_count", labels) or 0.0


def pool_gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    client: AsyncClient,
) -> None:
    template = "/api/v1/widgets/{widget_id}"
    before = requests_counted(template, 404)
    unmatched = requests_counted("unmatched", 404)
    other = requests_counted("unmatched", 404, method="_OTHER")
    ids = [str(uuid.uuid4()) for _ in range(3)]

    for widget_id in ids:
        assert (await client.get(f"/api/v1/widgets/{widget_id}")).status_code == 404
    assert (await client.get(f"/api/v1/nowhere/{ids[0]}")).status_code == 404
    assert (await client.request("BREW", f"/api/v1/nowhere/{ids[1]}")).status_code == 404

    assert requests_counted(template, 404) == before + 3
    assert requests_counted("unmatched", 404) == unmatched + 1
    assert requests_counted("unmatched", 404, method="_OTHER") == other + 1
    labels = {
        value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        for value in sample.labels.values()
    }
    assert not any(widget_id in label for widget_id in ids for label in labels)


async def test_a_crash_counts_as_a_server_error(client: AsyncClient) -> None:
    before = requests_counted("/api/v1/widgets/-/crash", 500)

    assert (await client.get("/api/v1/widgets/-/crash")).status_code == 500

    assert requests_counted("/api/v1/widgets/-/crash", 500) == before + 1


async def test_metrics_are_served_on_a_port_of_their_own_and_not_by_the_api(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    port = free_port()
    settings = service.settings(database_url, metrics_port=port, metrics_host="127.0.0.1")
    app = service.app(settings, database=test_database)

    async with open_client(app) as client:
        assert (await client.get("/health/live")).status_code == 200
        scraped = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics")
        assert (await client.get("/metrics")).status_code == 404

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert f'{DURATION}_count{{method="GET",route="/health/live",status="200"}}' in scraped.text
    assert 'db_pool_connections{pool="write",state="in_use"}' in scraped.text
    # Stopped with the app.
    with pytest.raises(httpx.TransportError):
        await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics")


async def test_the_pools_show_connections_in_use_and_requests_waiting_then_timing_out(
    service: ServiceUnderTest, database_url: URL
) -> None:
    settings = service.settings(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.5
    )
    app = service.app(settings)
    # The engines the app's lifespan made, as its requests find them.
    app_lifespan = app.router.lifespan_context
    databases: list[Database] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with app_lifespan(app) as state:
            assert state is not None
            databases.append(state["database"])
            yield state

    app.router.lifespan_context = lifespan
    timeouts = pool_gauge("db_pool_timeouts_total", pool="write") or 0.0
    async with open_client(app) as client, databases[0].engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        assert pool_gauge("db_pool_connections", pool="write", state="in_use") == 1
        assert pool_gauge("db_pool_capacity", pool="write") == 1

        waiting = asyncio.create_task(client.post("/api/v1/widgets", json={"code": "w"}))
        for _ in range(40):
            await asyncio.sleep(0.01)
            if pool_gauge("db_pool_waiting", pool="write") == 1:
                break
        assert pool_gauge("db_pool_waiting", pool="write") == 1
        assert (await waiting).status_code == 503

        assert pool_gauge("db_pool_waiting", pool="write") == 0
        assert pool_gauge("db_pool_timeouts_total", pool="write") == timeouts + 1
    # The app is gone: so are its pools' gauges.
    assert pool_gauge("db_pool_connections", pool="write", state="in_use") is None
