"""Events in a service's process: the relay and the consumer run as tasks of the app's lifespan.

They share the process, the database pool and the deployment with the requests they serve: no
second kind of process to build, deploy, scale and watch (docs/events.md says why). Neither is
needed to answer a request: the outbox keeps events while the broker is away, so `/health/ready`
does not check NATS.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from common.background import in_background, stopping
from common.db import Database
from common.events.broker import connected
from common.events.consumer import Consumer, Handler
from common.events.listener import listening
from common.events.relay import Relay
from common.events.settings import EventSettings
from common.events.tables import OUTBOX_CHANNEL

logger = logging.getLogger("common.events")


@dataclass(frozen=True)
class Events:
    """What a service does with events: `relay` its outbox, apply events with `handlers`, and
    with `revocations` refuse the tokens of the subjects its handlers revoked
    (`common.events.revocations`)."""

    relay: bool = False
    handlers: Sequence[Handler] = ()
    revocations: bool = False


@asynccontextmanager
async def running_events(
    settings: EventSettings, database: Database, events: Events
) -> AsyncIterator[None]:
    """The relay and the consumer, running while the context lasts; nothing without a broker."""
    if not settings.nats_url or not (events.relay or events.handlers):
        yield
        return
    async with in_background(_run(settings, database, events), name="events"):
        yield


async def _run(settings: EventSettings, database: Database, events: Events) -> None:
    while not stopping():
        try:
            async with connected(settings, name=settings.service_name) as client:
                js = client.jetstream()
                async with asyncio.TaskGroup() as tasks:
                    if events.relay:
                        relay = Relay(settings, database.engine, js)
                        tasks.create_task(_relaying(relay, settings))
                    if events.handlers:
                        consumer = Consumer(settings, database.sessionmaker, js, events.handlers)
                        tasks.create_task(consumer.run())
        except Exception:
            logger.exception("events of %s stopped; starting again", settings.service_name)
            await asyncio.sleep(1.0)


async def _relaying(relay: Relay, settings: EventSettings) -> None:
    async with listening(settings, OUTBOX_CHANNEL) as wakeup:
        await relay.run(wakeup)
