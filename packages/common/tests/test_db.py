"""The engine against a database that stops answering mid-connection (requests fail fast at the
command timeout, and the next ones get a new connection), and how models name their tables."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.orm import Mapped, mapped_column

from common.app import create_app
from common.db import Base as CommonBase
from common.db import new_metadata, table_name_for
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client

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
