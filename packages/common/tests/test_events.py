"""Events on a real NATS and a real Postgres: the outbox relayed in order, each event applied
once, a poison event dead-lettered without holding the others back for long."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.db import Database
from common.events import (
    Event,
    Events,
    EventSettings,
    Handler,
    add_inbox,
    add_outbox,
    event_schema_document,
    publish,
)
from common.events.broker import dead_letter_subject, ensure_stream
from common.events.lifespan import running_events
from common.events.relay import prune_sent
from common.events.status import event_figures, figures_table
from common.settings import Pooler
from common.testing.plugin import tracing_into
from common.tracing import tracing
from devstack.nats import EmbeddedNats
from devstack.postgres import test_database_pooler as pooler_of_the_tests

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "events.schema.json"

metadata = MetaData()
add_outbox(metadata)
add_inbox(metadata)
# What the test consumer's handler writes: one row per application, in order.
applied = Table(
    "applied_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("subject_id", Uuid, nullable=False),
    Column("number", Integer, nullable=False),
    Column("type", String(200), nullable=False),
)


class Settings(EventSettings):
    service_name: str = "events-test"
    database_url: str = "postgresql+asyncpg://unused@127.0.0.1/unused"


def test_the_committed_envelope_schema_is_the_codes() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == event_schema_document(), (
        "packages/common/events.schema.json is out of date: run `make event-schema`"
    )


def test_an_event_type_is_entity_dot_past_tense() -> None:
    subject = uuid.uuid4()
    assert Event(type="user.deactivated", subject_id=subject).subject("events") == (
        "events.user.deactivated"
    )
    with pytest.raises(ValueError, match="type"):
        Event(type="Deactivated User", subject_id=subject)


@pytest.fixture
async def event_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@pytest.fixture
def settings_for(
    database_url: URL, nats_url: str, events_stream: str, event_tables: None
) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "ENVIRONMENT": "test",
            "database_url": database_url.render_as_string(hide_password=False),
            "nats_url": nats_url,
            "events_stream": events_stream,
            "events_poll_seconds": 0.2,
            # Through the tests' PgBouncer, when there is one (`make test-pgbouncer`).
            "db_pooler": pooler_of_the_tests() or Pooler.NONE,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]

    return make


async def record(session: AsyncSession, event: Event) -> None:
    await session.execute(
        insert(applied).values(
            subject_id=event.subject_id, number=event.data["number"], type=event.type
        )
    )


async def refuse_number_13(session: AsyncSession, event: Event) -> None:
    if event.data["number"] == 13:
        raise ValueError("13 is unlucky")
    await record(session, event)


async def publish_numbers(database: Database, subjects: list[uuid.UUID], count: int) -> None:
    for number in range(count):
        async with database.sessionmaker.begin() as session:
            subject = subjects[number % len(subjects)]
            await publish(
                session, Event(type="thing.counted", subject_id=subject, data={"number": number})
            )


async def applied_rows(
    engine: AsyncEngine, *, expected: int, timeout: float = 20
) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(applied).order_by(applied.c.seq))).all()
        if len(rows) >= expected or time.monotonic() > deadline:
            return [tuple(row) for row in rows]
        await asyncio.sleep(0.05)


async def test_the_outbox_reaches_the_consumer_in_order_and_each_event_is_applied_once(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for()
    database = Database.from_settings(settings)
    subjects = [uuid.uuid4() for _ in range(3)]
    events = Events(relay=True, handlers=[Handler("thing.counted", record)])
    try:
        await publish_numbers(database, subjects, 30)
        async with running_events(settings, database, events):
            rows = await applied_rows(database.engine, expected=30)
            await asyncio.sleep(0.5)  # nothing more arrives: no event twice
            rows = await applied_rows(database.engine, expected=30)
        async with database.engine.connect() as connection:
            pending = await connection.scalar(
                select(func.count()).select_from(metadata.tables["event_outbox"])
                .where(metadata.tables["event_outbox"].c.sent_at.is_(None))
            )  # fmt: skip
    finally:
        await database.dispose()
    assert [row[2] for row in rows] == list(range(30))
    assert pending == 0


async def test_a_poison_event_is_dead_lettered_after_its_deliveries_and_the_others_are_applied(
    settings_for: Callable[..., Settings], nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(events_max_deliver=3, events_backoff_seconds=0.05)
    database = Database.from_settings(settings)
    events = Events(relay=True, handlers=[Handler("thing.counted", refuse_number_13)])
    try:
        await publish_numbers(database, [uuid.uuid4()], 30)
        async with running_events(settings, database, events):
            rows = await applied_rows(database.engine, expected=29)
    finally:
        await database.dispose()

    assert [row[2] for row in rows] == [n for n in range(30) if n != 13]
    dead_letters = dead_letter_subject(settings, settings.service_name)
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(
            settings.events_stream, subjects_filter=dead_letters
        )
    finally:
        await client.close()
    assert info.state.subjects == {dead_letters: 1}
    assert "dead-lettered by events-test after 3 deliveries" in caplog.text
    figures = await event_figures(
        settings.service_name,
        database_url=settings.database_url,
        nats_url=nats_url,
        stream=settings.events_stream,
    )
    assert (figures.outbox_backlog, figures.consumer_lag, figures.dead_letters) == (0, 0, 1)
    assert figures_table([figures]).splitlines()[1].split() == ["events-test", "0", "0", "1"]


async def test_an_event_whose_type_is_not_its_subjects_is_dead_lettered_unapplied(
    settings_for: Callable[..., Settings], nats_url: str
) -> None:
    settings = settings_for()
    stream = settings.events_stream
    database = Database.from_settings(settings)
    handlers = [Handler("user.deleted", record), Handler("user.deactivated", record)]
    victim = uuid.uuid4()
    # A `user.deleted` body on the subject of a milder event: what a client allowed to publish
    # that one subject alone would send to have its victim erased.
    forged = Event(type="user.deleted", subject_id=victim, data={"number": 1})
    honest = Event(type="user.deactivated", subject_id=victim, data={"number": 2})
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_stream(js, settings)
        await js.publish(f"{stream}.user.deactivated", forged.model_dump_json().encode())
        await js.publish(honest.subject(stream), honest.model_dump_json().encode())
        async with running_events(settings, database, Events(handlers=handlers)):
            rows = await applied_rows(database.engine, expected=1)
        dead = await js.get_last_msg(stream, dead_letter_subject(settings, settings.service_name))
    finally:
        await client.close()
        await database.dispose()

    # Events are applied in order: the forged one was given up before the honest one came.
    assert [(row[2], row[3]) for row in rows] == [(2, "user.deactivated")]
    assert Event.model_validate_json(dead.data or b"").id == forged.id
    assert (dead.headers or {})["Dead-Letter-Reason"] == (
        f"a user.deleted event on {stream}.user.deactivated"
    )


@pytest.mark.parametrize("password", ["change-me", "events-test", ""])
def test_production_refuses_a_placeholder_nats_password(password: str) -> None:
    production = {"ENVIRONMENT": "production", "nats_url": "nats://nats:4222"}
    credentials = {
        "nats_user": "events-test",
        "database_url": "postgresql+asyncpg://a:Str0ng-pw@db/a",
    }

    with pytest.raises(ValidationError, match="NATS_PASSWORD is empty or a placeholder"):
        Settings(**production, **credentials, nats_password=password)  # type: ignore[arg-type]
    strong = Settings(**production, **credentials, nats_password="n4ts-Pa55-from-a-Secret")  # type: ignore[arg-type]
    assert strong.nats_user == "events-test"


async def test_sent_events_are_pruned_once_the_stream_no_longer_keeps_them(
    settings_for: Callable[..., Settings],
) -> None:
    outbox = metadata.tables["event_outbox"]
    database = Database.from_settings(settings_for())
    try:
        await publish_numbers(database, [uuid.uuid4()], 3)
        async with database.engine.begin() as connection:
            order = select(outbox.c.position).order_by(outbox.c.position)
            positions = list(await connection.scalars(order))
            ages = {positions[0]: "8 days", positions[1]: "6 days"}  # the third is not sent
            for position, age in ages.items():
                await connection.execute(
                    outbox.update()
                    .where(outbox.c.position == position)
                    .values(sent_at=func.now() - text(f"interval '{age}'"))
                )
            assert await prune_sent(connection) == 1
            left = list(await connection.scalars(order))
    finally:
        await database.dispose()
    assert left == positions[1:]


async def test_the_consumer_applies_an_event_in_the_trace_of_the_request_that_made_it(
    settings_for: Callable[..., Settings],
) -> None:
    exporter = InMemorySpanExporter()
    settings = settings_for()
    database = Database.from_settings(settings)
    events = Events(relay=True, handlers=[Handler("thing.counted", record)])
    try:
        with tracing_into(exporter):
            async with tracing(settings):
                request = trace.get_tracer("test").start_span("POST /things", kind=SpanKind.SERVER)
                with trace.use_span(request, end_on_exit=True):
                    await publish_numbers(database, [uuid.uuid4()], 1)
                async with running_events(settings, database, events):
                    await applied_rows(database.engine, expected=1)
    finally:
        await database.dispose()

    (applying,) = [span for span in exporter.get_finished_spans() if span.name.startswith("apply")]
    assert applying.name == "apply thing.counted"
    assert applying.kind is SpanKind.CONSUMER
    assert applying.context is not None
    assert applying.context.trace_id == request.get_span_context().trace_id


async def test_the_events_stop_at_once_when_cancelled_with_their_broker_gone(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    # With the broker killed, the client's close fails (nats-py writes what it buffered while
    # reconnecting to the lost connection): the service stopping must stop the events all the
    # same, not see a failure and start them again.
    broker = EmbeddedNats(tmp_path / "nats")
    broker.start()
    settings = settings_for(nats_url=broker.url)
    database = Database.from_settings(settings)
    events = Events(relay=True, handlers=[Handler("thing.counted", record)])

    async def run_then_stop() -> float:
        async with running_events(settings, database, events):
            await applied_rows(database.engine, expected=3)
            broker.kill()
            await asyncio.sleep(2.0)  # reconnecting: the consumer's requests are buffered
            stopping = time.monotonic()
        return time.monotonic() - stopping

    try:
        await publish_numbers(database, [uuid.uuid4()], 3)
        running = asyncio.create_task(run_then_stop())
        done, _ = await asyncio.wait({running}, timeout=10)
        if not done:
            running.cancel()
    finally:
        broker.stop()
        await database.dispose()
    assert done, "the events went on after the block that ran them ended"
    assert running.result() < 1.0
