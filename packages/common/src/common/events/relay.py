"""The relay: publishes a service's outbox to JetStream, in order, then marks the rows sent.

It runs as a task of the service's own process (`common.events.lifespan`). Each batch runs in
one transaction that holds an advisory lock, so one relay at a time publishes a database's
outbox (replicas wait their turn), in `position` order. A relay killed between publishing and
marking re-sends those rows on restart with the same `Nats-Msg-Id`, which the stream's duplicate
window drops: each event is stored once.
"""

import asyncio
import json
import logging
import zlib
from datetime import timedelta

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.background import stopping
from common.events.broker import MAX_AGE_SECONDS, ensure_stream
from common.events.envelope import MESSAGE_ID_HEADER
from common.events.listener import Wakeup
from common.events.settings import EventSettings
from common.events.tables import OUTBOX
from common.metrics import OUTBOX_BACKLOG
from common.tracing import untraced

logger = logging.getLogger("common.events")

BATCH_SIZE = 200
PUBLISH_TIMEOUT_SECONDS = 5.0
# Advisory locks are per database: one key serves every service.
RELAY_LOCK_KEY = zlib.crc32(b"common.events.relay")


class Relay:
    def __init__(self, settings: EventSettings, engine: AsyncEngine, js: JetStreamContext) -> None:
        self.settings = settings
        self.engine = engine
        self.js = js

    async def run(self, wakeup: Wakeup) -> None:
        """Relay until cancelled: on every notification, and every poll interval."""
        with untraced():
            await self._run(wakeup)

    async def _run(self, wakeup: Wakeup) -> None:
        await ensure_stream(self.js, self.settings)
        while not stopping():
            try:
                while await self.relay_batch() == BATCH_SIZE:
                    pass
                await self.record_backlog()
            except Exception as exc:
                logger.warning("event relay: %s; retrying", exc or type(exc).__name__)
                await asyncio.sleep(self.settings.events_poll_seconds)
            await wakeup.wait(self.settings.events_poll_seconds)

    async def relay_batch(self) -> int:
        """Publish up to BATCH_SIZE pending events in order; the number published."""
        async with self.engine.connect() as connection, connection.begin():
            if not await connection.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))):
                return 0
            rows = (
                await connection.execute(
                    select(OUTBOX.c.position, OUTBOX.c.id, OUTBOX.c.type, OUTBOX.c.envelope)
                    .where(OUTBOX.c.sent_at.is_(None))
                    .order_by(OUTBOX.c.position)
                    .limit(BATCH_SIZE)
                )
            ).all()
            published: list[int] = []
            failure: Exception | None = None
            for position, event_id, event_type, envelope in rows:
                try:
                    await self.js.publish(
                        f"{self.settings.events_stream}.{event_type}",
                        json.dumps(envelope).encode(),
                        timeout=PUBLISH_TIMEOUT_SECONDS,
                        stream=self.settings.events_stream,
                        # The trace context too, for tools that read headers only.
                        headers={
                            **envelope.get("trace_context", {}),
                            MESSAGE_ID_HEADER: str(event_id),
                        },
                    )
                except (NatsError, TimeoutError, OSError) as exc:
                    failure = exc
                    break
                published.append(position)
            # What reached the stream is marked (and committed) even when the broker failed
            # mid-batch; the rest is tried again, in order, on the next batch.
            await mark_sent(connection, published)
        if failure is not None:
            raise failure
        return len(published)

    async def record_backlog(self) -> None:
        """The backlog gauge; and, while at it, the sent rows past their keeping dropped."""
        async with self.engine.connect() as connection, connection.begin():
            backlog = await pending_count(connection)
            await prune_sent(connection)
        OUTBOX_BACKLOG.labels(outbox=self.settings.service_name).set(backlog)


async def mark_sent(connection: AsyncConnection, positions: list[int]) -> None:
    if positions:
        await connection.execute(
            update(OUTBOX).where(OUTBOX.c.position.in_(positions)).values(sent_at=func.now())
        )


async def prune_sent(connection: AsyncConnection) -> int:
    """Delete the rows sent longer ago than the stream keeps events (its `max_age`): past that,
    nothing can ask for them again, and an erased user's id is not kept longer. The number
    deleted."""
    deleted = await connection.execute(
        delete(OUTBOX).where(OUTBOX.c.sent_at < func.now() - timedelta(seconds=MAX_AGE_SECONDS))
    )
    return int(deleted.rowcount)


async def pending_count(connection: AsyncConnection) -> int:
    """Events committed to the outbox and not yet published."""
    count = await connection.scalar(
        select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None))
    )
    return int(count or 0)
