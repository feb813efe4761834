"""pytest plugin: every service's tests run against a real Postgres, built by its migrations.

Fixtures, from the outside in:
- `postgres_server`: the server (embedded, or `TEST_DATABASE_URL`), once per run, where the
  databases are made and migrated;
- `database_url`: a database per service and per xdist worker, at the Alembic head (or, with
  `TEST_DATABASE_TEMPLATE`, a copy of that database, which `make test-compat` migrated with a
  later release's code: the previous release's tests against the next one's schema). With
  `TEST_DATABASE_POOLER=pgbouncer` it goes through the PgBouncer named by `TEST_DATABASE_URL`
  (the server behind it in `TEST_DATABASE_DIRECT_URL`), and every app and engine of the tests
  uses the services' pooler settings (`db_pooler`);
- `db_connection`: one connection per test, inside a transaction rolled back at the end;
- `app` / `client`: the service's app whose sessions (read-only ones included) join that
  transaction through savepoints, so the real session dependencies commit and roll back, and
  nothing outlives the test;
- `committing_client`: an app with its own pool that commits for real, for concurrency and
  commit-time behaviour; the service's tables are emptied after the test;
- `token_factory`: access tokens signed with the test key. A service that fetches its keys from
  users-svc fetches that key's JWKS from the test process instead (its `jwks_url`), so its tests
  need no users-svc;
- `span_exporter` / `traced_client`: the app traced by the OpenTelemetry SDK, its finished spans
  kept in memory;
- `nats_url`: a NATS server with JetStream (embedded, or `TEST_NATS_URL`), once per run, and
  `events_stream`: a stream name of the test's own on it, so tests never see each other's events;
- and for every test, a scan of what it logged: a secret in a log line fails it
  (common.testing.secrets).

A run stopped by SIGTERM (a CI job's timeout, `kill`) stops as one stopped by Ctrl-C, and a second
signal does not cut that short: pytest tears the fixtures down, so the servers and processes they
started stop too (devstack.stopping).

A service's conftest only provides the `service` fixture (a `ServiceUnderTest`).
"""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import nats
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_trace_globals
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from common.auth import TokenSettings
from common.db import Database, create_engine, create_read_sessionmaker, create_sessionmaker
from common.migrations import VERSION_TABLE
from common.settings import AppBaseSettings
from common.testing.secrets import (  # noqa: F401 - the plugin's hooks
    pytest_runtest_call,
    pytest_runtest_protocol,
    pytest_runtest_teardown,
)
from common.testing.service import ServiceUnderTest
from common.testing.tokens import TokenFactory
from devstack.nats import EmbeddedNats, test_nats_url
from devstack.postgres import (
    drop_database,
    recreate_database,
    server_url,
    test_database_template,
    traffic_server_url,
)
from devstack.stopping import stopping_on_signals

BASE_URL = "http://testserver"


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_configure(config: pytest.Config) -> None:
    stopping = contextlib.ExitStack()
    stopping.enter_context(stopping_on_signals())
    config.add_cleanup(stopping.close)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> URL:
    return server_url(request.config.rootpath / ".local" / "test-postgres")


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS server with JetStream: `TEST_NATS_URL`, else an embedded one of this worker's own."""
    configured = test_nats_url()
    if configured is not None:
        yield configured
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("nats") / "data")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def events_stream(nats_url: str) -> AsyncIterator[str]:
    """A JetStream stream name for this test alone, deleted afterwards."""
    name = f"test-{worker_id()}-{uuid.uuid4().hex[:12]}"
    yield name
    client = await nats.connect(nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await client.jetstream().delete_stream(name)
    finally:
        await client.close()


@pytest.fixture(scope="session")
def traffic_server(request: pytest.FixtureRequest, postgres_server: URL) -> URL:
    """Where the tests' apps and engines connect: `postgres_server`, or a pooler in front of it."""
    return traffic_server_url(request.config.rootpath / ".local" / "test-postgres")


@pytest.fixture(scope="session")
def service() -> ServiceUnderTest:
    raise pytest.UsageError(
        "define a session-scoped `service` fixture returning a ServiceUnderTest in the "
        "service's tests/conftest.py"
    )


class ServiceDatabases:
    """Each service's test database and engine, made once per run and per xdist worker.

    Kept per service rather than as plain session fixtures: one pytest run may cover several
    services, and a session fixture would hand the first service's database to all of them.
    """

    def __init__(self, server: URL, traffic: URL) -> None:
        self._server = server
        self._traffic = traffic
        self._urls: dict[str, URL] = {}
        self._engines: dict[str, AsyncEngine] = {}

    def url_for(self, service: ServiceUnderTest) -> URL:
        if service.name not in self._urls:
            name, template = f"test_{service.name}_{worker_id()}", test_database_template()
            url = recreate_database(self._server, name, template=template)
            if template is None:
                command.upgrade(service.alembic_config(url), "head")
            self._urls[service.name] = url
        return self._traffic.set(database=self._urls[service.name].database)

    def engine_for(self, service: ServiceUnderTest, settings: AppBaseSettings) -> AsyncEngine:
        if service.name not in self._engines:
            self._engines[service.name] = create_engine(settings)
        return self._engines[service.name]

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        for url in self._urls.values():
            assert url.database is not None
            await asyncio.to_thread(drop_database, self._server, url.database)


@pytest.fixture(scope="session")
async def service_databases(
    postgres_server: URL, traffic_server: URL
) -> AsyncIterator[ServiceDatabases]:
    databases = ServiceDatabases(postgres_server, traffic_server)
    yield databases
    await databases.close()


@pytest.fixture
async def database_url(service_databases: ServiceDatabases, service: ServiceUnderTest) -> URL:
    """The service's test database, at the Alembic head."""
    # Alembic's env.py runs an event loop of its own: give it a thread without one.
    return await asyncio.to_thread(service_databases.url_for, service)


@pytest.fixture
def settings(service: ServiceUnderTest, database_url: URL) -> AppBaseSettings:
    return service.settings(database_url)


@pytest.fixture
def engine(
    service_databases: ServiceDatabases, service: ServiceUnderTest, settings: AppBaseSettings
) -> AsyncEngine:
    return service_databases.engine_for(service, settings)


@pytest.fixture
def empty_database_url(postgres_server: URL, service: ServiceUnderTest) -> Iterator[URL]:
    """A database with no schema at all, for migration tests (pytest-alembic's `alembic_engine`)."""
    name = f"test_{service.name}_{worker_id()}_empty"
    yield recreate_database(postgres_server, name)
    drop_database(postgres_server, name)


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def db_sessionmaker(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """The app's own session factory, bound to the test's transaction instead of the engine."""
    return create_sessionmaker(db_connection)


@pytest.fixture
async def db_session(
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction: it sees what the app wrote."""
    async with db_sessionmaker() as session:
        yield session


@pytest.fixture
def token_factory(settings: AppBaseSettings) -> TokenFactory:
    if not isinstance(settings, TokenSettings):
        raise pytest.UsageError("token_factory needs a service whose settings are TokenSettings")
    return TokenFactory(settings)


@pytest.fixture
def test_database(
    engine: AsyncEngine,
    db_connection: AsyncConnection,
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> Database:
    """The app's engines and session factories, with the production factories bound to the
    test's connection: every session the app opens (the read-only ones too) joins the test's
    transaction through a savepoint."""
    return Database(
        engine=engine,
        read_engine=engine,
        sessionmaker=db_sessionmaker,
        read_sessionmaker=create_read_sessionmaker(db_connection),
    )


@pytest.fixture
def app(service: ServiceUnderTest, settings: AppBaseSettings, test_database: Database) -> FastAPI:
    return service.app(settings, database=test_database)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with open_client(app) as client:
        yield client


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """The spans the traced app finished, in the order they ended."""
    return InMemorySpanExporter()


@pytest.fixture
async def traced_client(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    test_database: Database,
    span_exporter: InMemorySpanExporter,
) -> AsyncIterator[AsyncClient]:
    """`client`, with the app traced by the SDK (every request sampled) into `span_exporter`."""
    with tracing_into(span_exporter):
        async with open_client(service.app(settings, database=test_database)) as client:
            yield client


@pytest.fixture
async def committing_client(
    service: ServiceUnderTest, settings: AppBaseSettings, engine: AsyncEngine
) -> AsyncIterator[AsyncClient]:
    app = service.app(settings)
    try:
        async with open_client(app) as client:
            yield client
    finally:
        await empty_tables(engine)


@contextlib.contextmanager
def tracing_into(exporter: InMemorySpanExporter) -> Iterator[None]:
    """The SDK's tracer provider, sampling every request into `exporter`, as the global one while
    the block lasts (the one an app traces with, as in production); unset again after it."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()
        reset_trace_globals()


@asynccontextmanager
async def open_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An httpx client on `app`, with the app's lifespan running."""
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url=BASE_URL) as client,
    ):
        yield client


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        tables = (
            await connection.scalars(
                text(
                    "SELECT quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> :version_table"
                ),
                {"version_table": VERSION_TABLE},
            )
        ).all()
        if tables:
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
