"""A service's consumer: applies each event once, in the stream's order, or gives it up.

One durable JetStream consumer per service (named after it), pulling one event at a time
(`max_ack_pending=1`): the next event is delivered only once this one is acknowledged, so
events are applied in the order they were stored, across restarts too. Each event is applied in
one transaction that also records its id in the inbox: a redelivered event (the consumer died
after committing, before its ack arrived) finds its id there and is acknowledged unapplied.

An event whose `type` is not the one its subject names is dead-lettered unapplied: NATS's
permissions say who may publish on a subject (docs/events.md: security), not what a body says.

A handler that raises rolls its transaction back; the event is redelivered after a delay that
doubles each time, and after `events_max_deliver` deliveries it is republished to the
dead-letter subject `<stream>.dead.<consumer>`, logged as an error and dropped, so the events
behind it go on. A failure because the database is unreachable is not the event's: it is retried
(at most every 30 s) for as long as the outage lasts, never dead-lettered.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.background import stopping
from common.errors import is_database_unavailable
from common.events.broker import dead_letter_subject, wait_for_stream
from common.events.envelope import MESSAGE_ID_HEADER, Event
from common.events.settings import EventSettings
from common.events.tables import INBOX
from common.metrics import CONSUMER_LAG
from common.tracing import consuming

logger = logging.getLogger("common.events")

FETCH_WAIT_SECONDS = 1.0
LAG_EVERY_SECONDS = 1.0

# What a handler does with one event, in the transaction that records it in the inbox: it may
# flush, never commit.
ApplyEvent = Callable[[AsyncSession, Event], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    """Applies the events of one `event_type` (`user.deactivated`)."""

    event_type: str
    apply: ApplyEvent


class Consumer:
    def __init__(
        self,
        settings: EventSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        js: JetStreamContext,
        handlers: Sequence[Handler],
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.js = js
        self.name = settings.service_name
        self.handlers = {handler.event_type: handler for handler in handlers}
        self.subjects = {f"{settings.events_stream}.{event_type}" for event_type in self.handlers}

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.events_ack_wait_seconds,
            # Unbounded on the server: this consumer counts deliveries itself and dead-letters
            # an event on its last failure, so none is dropped without a trace.
            max_deliver=-1,
            max_ack_pending=1,
            filter_subjects=sorted(self.subjects),
        )

    async def run(self) -> None:
        """Consume until cancelled."""
        await wait_for_stream(self.js, self.settings)
        stream = self.settings.events_stream
        try:
            await self.js.add_consumer(stream, self.config())
        except BadRequestError as exc:
            logger.warning("event consumer %s: kept its existing configuration: %s", self.name, exc)
        subscription = await self.js.pull_subscribe_bind(durable=self.name, stream=stream)
        lag_recorded = 0.0
        while not stopping():
            try:
                messages = await subscription.fetch(1, timeout=FETCH_WAIT_SECONDS)
            except (NatsTimeoutError, TimeoutError):
                messages = []
            except Exception as exc:
                logger.warning("event consumer %s: %s; retrying", self.name, exc)
                await asyncio.sleep(FETCH_WAIT_SECONDS)
                continue
            for message in messages:
                await self.handle(message)
            if time.monotonic() - lag_recorded > LAG_EVERY_SECONDS:
                lag_recorded = time.monotonic()
                await self.record_lag()

    async def handle(self, message: Msg) -> None:
        if message.subject not in self.subjects:
            # A server before 2.10 ignores `filter_subjects` and delivers the whole stream
            # (dead letters included): what has no handler here is not this consumer's.
            await message.ack()
            return
        deliveries = message.metadata.num_delivered
        try:
            event = Event.model_validate_json(message.data)
        except ValidationError as exc:
            # An envelope this consumer cannot read never will: no point retrying.
            await self.dead_letter(message, f"unreadable envelope: {exc.error_count()} errors")
            return
        if event.subject(self.settings.events_stream) != message.subject:
            # NATS's permissions guard the subject, not the body: a publisher allowed one
            # subject could write any `type` in it, and the handler is picked by `type`.
            await self.dead_letter(
                message, f"a {event.type} event on {message.subject}", event=event
            )
            return
        try:
            with consuming(f"apply {event.type}", event.trace_context):
                await self.apply(event)
        except Exception as exc:
            # The database away is no fault of the event's: retried for as long as it lasts.
            its_fault = not is_database_unavailable(exc)
            if its_fault and deliveries >= self.settings.events_max_deliver:
                await self.dead_letter(message, repr(exc), event=event)
                return
            delay = min(self.settings.events_backoff_seconds * 2 ** (deliveries - 1), 30.0)
            logger.warning(
                "event %s (%s) failed, delivery %d of %d, retried in %.2fs: %r",
                event.id, event.type, deliveries, self.settings.events_max_deliver, delay, exc,
            )  # fmt: skip
            await message.nak(delay=delay)
            return
        await message.ack()

    async def apply(self, event: Event) -> bool:
        """Apply `event` once; False when its id is already in the inbox (applied before)."""
        handler = self.handlers[event.type]
        async with self.sessionmaker() as session, session.begin():
            first_time = await session.scalar(
                insert(INBOX)
                .values(event_id=event.id, type=event.type)
                .on_conflict_do_nothing()
                .returning(INBOX.c.event_id)
            )
            if first_time is None:
                return False
            await handler.apply(session, event)
        return True

    async def dead_letter(self, message: Msg, reason: str, *, event: Event | None = None) -> None:
        """Republish `message` to the dead-letter subject, then drop it from the consumer."""
        event_id = event.id if event is not None else (message.headers or {}).get(MESSAGE_ID_HEADER)
        await self.js.publish(
            dead_letter_subject(self.settings, self.name),
            message.data,
            stream=self.settings.events_stream,
            headers={
                MESSAGE_ID_HEADER: f"{event_id}.dead.{self.name}",
                "Dead-Letter-Reason": reason[:500],
                "Dead-Letter-Subject": message.subject,
            },
        )
        await message.term()
        logger.error(
            "event %s (%s) dead-lettered by %s after %d deliveries: %s",
            event_id, event.type if event else "?", self.name,
            message.metadata.num_delivered, reason,
        )  # fmt: skip

    async def record_lag(self) -> None:
        try:
            info = await self.js.consumer_info(self.settings.events_stream, self.name)
        except Exception as exc:
            logger.warning("event consumer %s: no lag figure: %s", self.name, exc)
            return
        CONSUMER_LAG.labels(consumer=self.name).set(info.num_pending + info.num_ack_pending)
