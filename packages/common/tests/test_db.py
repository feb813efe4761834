"""The engine against a database that stops answering mid-connection (requests fail fast at the
command timeout, and the next ones get a new connection), through PgBouncer in transaction mode
(every statement works with the pooler setting on, and fails without it), what an engine error
shows in production (no bound value), and how models name their tables."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from common.app import create_app
from common.db import Base as CommonBase
from common.db import connect_args, create_engine, new_metadata, table_name_for
from common.errors import DatabaseUnavailableError, is_database_unavailable
from common.settings import AppBaseSettings, Environment
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client
from devstack.pgbouncer import PgBouncer
from devstack.postgres import scratch_dir
from devstack.processes import started

COMMAND_TIMEOUT = 1.0


class FreezableProxy:
    """Forwards TCP to Postgres until frozen: then it holds every byte, like a hung server or a
    network that drops packets, and its connections stay open."""

    def __init__(self, database_url: URL) -> None:
        self.target = database_url
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await connect_to(self.target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def connect_to(url: URL) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the server of `url`: over TCP, or the Unix socket of the embedded one."""
    port = url.port or 5432
    if url.host:
        return await asyncio.open_connection(url.host, port)
    socket_dir = url.query["host"]
    assert isinstance(socket_dir, str)
    return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")


@pytest.fixture
async def proxy(database_url: URL) -> AsyncIterator[tuple[FreezableProxy, URL]]:
    proxy = FreezableProxy(database_url)
    server = await asyncio.start_server(proxy.accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield proxy, database_url.set(host="127.0.0.1", port=port).difference_update_query(["host"])
    proxy.flowing.set()
    await proxy.close()
    server.close()
    await server.wait_closed()


async def test_a_hung_database_fails_requests_at_the_command_timeout_then_recovers(
    service: ServiceUnderTest, proxy: tuple[FreezableProxy, URL]
) -> None:
    freezable, url = proxy
    settings = service.settings(url, db_command_timeout_seconds=COMMAND_TIMEOUT)
    app = create_app(settings, domains=service.domains)

    async with open_client(app) as client:
        before = await client.get("/api/v1/widgets?limit=1")
        freezable.flowing.clear()
        started = time.monotonic()
        during = await client.get("/api/v1/widgets?limit=1")
        failed_in = time.monotonic() - started
        freezable.flowing.set()
        after = await client.get("/api/v1/widgets?limit=1")

    assert before.status_code == 200
    assert during.status_code == 503
    assert during.headers["retry-after"] == "1"
    # Not a rollback that waits for another timeout, nor a polite close of the dead connection.
    assert failed_in < COMMAND_TIMEOUT + 0.5
    assert after.status_code == 200


async def test_a_refused_connection_raises_database_unavailable_from_the_drivers_error(
    service: ServiceUnderTest,
) -> None:
    url = make_url("postgresql+asyncpg://nobody:nothing@127.0.0.1:1/nowhere")
    engine = create_engine(service.settings(url, db_connect_timeout_seconds=2))

    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
    assert is_database_unavailable(raised.value)


@pytest.mark.parametrize(
    ("model", "table"),
    [
        ("Thing", "things"),
        ("User", "users"),
        ("OrderItem", "order_items"),
        ("Category", "categories"),
        ("Key", "keys"),
        ("Box", "boxes"),
        ("Address", "addresses"),
        ("Batch", "batches"),
        ("HTTPLog", "httplogs"),
    ],
)
def test_a_models_table_is_named_after_its_class(model: str, table: str) -> None:
    assert table_name_for(model) == table


def test_a_model_maps_in_three_lines_or_names_its_own_table() -> None:
    class Base(CommonBase):
        __abstract__ = True
        metadata = new_metadata()

    class Thing(Base):
        id: Mapped[int] = mapped_column(primary_key=True)

    class Person(Base):
        __tablename__ = "people"
        id: Mapped[int] = mapped_column(primary_key=True)

    assert sorted(Base.metadata.tables) == ["people", "things"]


# -- through PgBouncer in transaction mode --------------------------------------------------
# Debian's pgbouncer: `make test-pgbouncer` installs it and runs these (marker `pooler`).

PGBOUNCER_POOL_SIZE = 2
CLIENTS = 30


@pytest.fixture
def pgbouncer(postgres_server: URL) -> Iterator[PgBouncer]:
    with scratch_dir("pgbouncer-") as folder:
        pooler = PgBouncer(folder, upstream=postgres_server, pool_size=PGBOUNCER_POOL_SIZE)
        with started(pooler):
            yield pooler


async def failed_statements(engine: AsyncEngine) -> list[str]:
    """Many clients at once, each running statements one after the other on its connection;
    the errors they met."""
    errors: list[str] = []

    async def client(index: int) -> None:
        try:
            async with engine.connect() as connection:
                for step in range(10):
                    await connection.execute(text("SELECT :n + 1"), {"n": index * step})
                    await connection.execute(text(f"SELECT {index % 5} AS constant"))
                await connection.commit()
        except DBAPIError as exc:
            errors.append(str(exc.orig).splitlines()[0])

    await asyncio.gather(*(client(index) for index in range(CLIENTS)))
    await engine.dispose()
    return errors


def pooled_settings(
    service: ServiceUnderTest, database_url: URL, pgbouncer: PgBouncer, pooler: str
) -> AppBaseSettings:
    url = pgbouncer.url(database=str(database_url.database))
    return service.settings(url, db_pooler=pooler, db_pool_size=CLIENTS, db_read_pool_size=CLIENTS)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transactions", "autocommit reads"])
@pytest.mark.pooler
async def test_through_pgbouncer_the_pooler_setting_keeps_every_statement_working(
    service: ServiceUnderTest, database_url: URL, pgbouncer: PgBouncer, autocommit: bool
) -> None:
    settings = pooled_settings(service, database_url, pgbouncer, "pgbouncer")

    errors = await failed_statements(create_engine(settings, autocommit=autocommit))

    assert errors == []


@pytest.mark.pooler
async def test_through_pgbouncer_a_direct_services_settings_are_refused(
    service: ServiceUnderTest, database_url: URL, pgbouncer: PgBouncer
) -> None:
    # Without the pooler setting a service sends its session timeouts as startup parameters.
    engine = create_engine(pooled_settings(service, database_url, pgbouncer, "none"))
    try:
        with pytest.raises(DBAPIError, match="unsupported startup parameter: statement_timeout"):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()


@pytest.mark.pooler
async def test_through_pgbouncer_named_prepared_statements_fail_outside_transactions(
    service: ServiceUnderTest, database_url: URL, pgbouncer: PgBouncer
) -> None:
    # Why the pooler setting is not SQLAlchemy's other documented remedy (a unique name per
    # prepared statement): prepared and run in two exchanges, a statement outside a transaction
    # may be run on a server connection where it was never prepared.
    settings = pooled_settings(service, database_url, pgbouncer, "pgbouncer")
    engine = create_async_engine(
        settings.database_url,
        isolation_level="AUTOCOMMIT",
        pool_size=CLIENTS,
        connect_args={
            **connect_args(settings),
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
        },
    )

    errors = await failed_statements(engine)

    assert errors
    assert all("prepared statement" in error for error in errors), errors[:3]


@pytest.mark.pooler
async def test_through_pgbouncer_the_session_timeouts_are_the_poolers(
    service: ServiceUnderTest, database_url: URL, pgbouncer: PgBouncer
) -> None:
    engine = create_engine(pooled_settings(service, database_url, pgbouncer, "pgbouncer"))
    try:
        async with engine.connect() as connection:
            statement_timeout = await connection.scalar(text("SHOW statement_timeout"))
            idle = await connection.scalar(text("SHOW idle_in_transaction_session_timeout"))
            application = await connection.scalar(text("SHOW application_name"))
    finally:
        await engine.dispose()

    assert (statement_timeout, idle) == ("10s", "30s")
    assert application == service.settings(database_url).service_name


@pytest.mark.parametrize(
    ("environment", "shown"), [(Environment.PRODUCTION, False), (Environment.DEVELOPMENT, True)]
)
async def test_in_production_an_engine_error_holds_no_bound_value(
    settings: AppBaseSettings, environment: Environment, shown: bool
) -> None:
    # Only the profile changes: the production checks of the test's URL are not the subject.
    engine = create_engine(settings.model_copy(update={"environment": environment}))
    try:
        with pytest.raises(DBAPIError) as raised:
            async with engine.connect() as connection:
                await connection.execute(
                    text("SELECT CAST(:email AS text), 1 / 0"), {"email": "ada@example.com"}
                )
    finally:
        await engine.dispose()

    assert "division by zero" in str(raised.value)
    assert ("ada@example.com" in str(raised.value)) is shown
