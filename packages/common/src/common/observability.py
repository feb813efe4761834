"""What a running app adds to its lifespan to be observed: the metrics endpoint on a port of its
own, the pool gauges, and tracing (common.tracing).

The endpoint is prometheus_client's WSGI app on a small threaded server, on
`<PREFIX>_METRICS_PORT` (production: 9000), apart from the API: nothing published for the API
reaches it, and an API route cannot be taken for it. It binds with `SO_REUSEPORT`, so with several
worker processes each one binds the same port and any of them answers for all (multiprocess mode,
common.metrics).
"""

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy.ext.asyncio import AsyncEngine

from common.background import in_background
from common.db import Database
from common.metrics import POOL_CAPACITY, POOL_CONNECTIONS, POOL_WAITING
from common.metrics import multiprocess as multiprocess_mode
from common.settings import AppBaseSettings
from common.tracing import tracing

logger = logging.getLogger(__name__)

# How often each worker writes its pools' state, in multiprocess mode only (a single process
# reads it when scraped).
POOL_SAMPLE_SECONDS = 1.0


def metrics_registry() -> CollectorRegistry:
    """What the endpoint serves: this process's registry, or every worker's files."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class _SharedPortServer(ThreadingWSGIServer):
    def server_bind(self) -> None:
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not worth a log line."""


class MetricsServer:
    """The metrics endpoint on its own port, served from a thread: any path answers the
    metrics in Prometheus's text format (`/metrics` by convention)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server: ThreadingWSGIServer | None = None

    def start(self) -> None:
        server = make_server(
            self.host,
            self.port,
            make_wsgi_app(metrics_registry()),
            server_class=_SharedPortServer,
            handler_class=_QuietHandler,
        )
        self.port = server.server_port
        self._server = server
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _pool_readers(engine: AsyncEngine) -> dict[str, Callable[[], float]]:
    """What to read of the engine's current pool (a new one after `dispose`)."""

    def read(attribute: str) -> Callable[[], float]:
        def value() -> float:
            found = getattr(engine.sync_engine.pool, attribute, 0)
            return float(found() if callable(found) else found)

        return value

    return {
        "in_use": read("checkedout"),
        "idle": read("checkedin"),
        "capacity": read("capacity"),
        "waiting": read("waiting"),
    }


def _gauges(role: str) -> dict[str, Any]:
    return {
        "in_use": POOL_CONNECTIONS.labels(role, "in_use"),
        "idle": POOL_CONNECTIONS.labels(role, "idle"),
        "capacity": POOL_CAPACITY.labels(role),
        "waiting": POOL_WAITING.labels(role),
    }


def _forget_pools(roles: Iterator[str]) -> None:
    for role in roles:
        for gauge, labels in (
            (POOL_CONNECTIONS, (role, "in_use")),
            (POOL_CONNECTIONS, (role, "idle")),
            (POOL_CAPACITY, (role,)),
            (POOL_WAITING, (role,)),
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)


@contextlib.asynccontextmanager
async def watching_pools(database: Database) -> AsyncIterator[None]:
    """The pool gauges of `database`'s engines while the block runs: read when scraped in a
    single process; written every second by each worker in multiprocess mode."""
    engines = {"write": database.engine, "read": database.read_engine}
    readers = {role: _pool_readers(engine) for role, engine in engines.items()}
    if not multiprocess_mode():
        for role, reader in readers.items():
            for name, gauge in _gauges(role).items():
                gauge.set_function(reader[name])
        try:
            yield
        finally:
            _forget_pools(iter(engines))
        return

    async def sample() -> None:
        while True:
            for role, reader in readers.items():
                for name, gauge in _gauges(role).items():
                    gauge.set(reader[name]())
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    try:
        async with in_background(sample(), name="pool gauges"):
            yield
    finally:
        # This worker's live gauges leave the sums with it.
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def serving_metrics(settings: AppBaseSettings) -> Iterator[MetricsServer | None]:
    if settings.metrics_port == 0:
        yield None
        return
    server = MetricsServer(settings.metrics_host, settings.metrics_port)
    try:
        server.start()
    except OSError as exc:
        # The API still serves: metrics are worth a loud line, not an outage.
        logger.error(
            "metrics not served: cannot listen on %s:%s (%s)",
            settings.metrics_host,
            settings.metrics_port,
            exc.strerror or exc,
        )
        yield None
        return
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def observing(settings: AppBaseSettings, database: Database) -> AsyncIterator[None]:
    """Tracing, the pool gauges and the metrics endpoint, for the app's lifespan."""
    async with (
        tracing(settings),
        watching_pools(database),
    ):
        with serving_metrics(settings):
            yield
