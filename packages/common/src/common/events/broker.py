"""The connection to NATS and the stream every event goes to."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from common.events.settings import EventSettings

logger = logging.getLogger("common.events")

# Re-sends of one event id within this window are dropped by JetStream: a relay that died
# between publishing and marking its rows sent re-sends them on restart well within it.
DUPLICATE_WINDOW_SECONDS = 600.0
# How long the stream keeps an event after every consumer applied it, for replays and `make
# events`; a consumer down for longer misses events.
MAX_AGE_SECONDS = 7 * 24 * 3600.0


def stream_config(settings: EventSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.events_stream,
        subjects=[f"{settings.events_stream}.>"],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=MAX_AGE_SECONDS,
    )


def dead_letter_subject(settings: EventSettings, consumer: str) -> str:
    """Where `consumer`'s events go once it gave them up: `<stream>.dead.<consumer>`."""
    return f"{settings.events_stream}.dead.{consumer}"


async def ensure_stream(js: JetStreamContext, settings: EventSettings) -> None:
    """Create the stream, or bring an existing one to this configuration (idempotent: every
    producer and consumer calls it as it starts)."""
    config = stream_config(settings)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


def inbox_prefix(service_name: str) -> str:
    """Where a service's replies come (`_INBOX.<service>.…`): a prefix of its own, so the server
    lets each service read its own replies only (infra/nats/nats.conf)."""
    return f"_INBOX.{service_name}"


async def wait_for_stream(js: JetStreamContext, settings: EventSettings) -> None:
    """Wait until the stream exists. Its publishers make it (`ensure_stream`); a consumer only
    reads it: a service that could change the stream's configuration could also have it rewrite
    one subject into another (docs/events.md: security)."""
    waited = False
    while True:
        try:
            await js.stream_info(settings.events_stream)
            return
        except NotFoundError:
            if not waited:
                logger.info(
                    "waiting for the stream %s (its publishers make it)", settings.events_stream
                )
                waited = True
            await asyncio.sleep(0.5)


@asynccontextmanager
async def connected(settings: EventSettings, *, name: str) -> AsyncIterator[Client]:
    """A NATS connection that reconnects forever once made; made by retrying every second
    while the server is unreachable (the service is up and serving meanwhile)."""
    assert settings.nats_url

    password = settings.nats_password.get_secret_value() if settings.nats_password else None

    async def on_error(exc: Exception) -> None:
        logger.warning("NATS: %s", exc)

    async def on_disconnect() -> None:
        logger.warning("NATS: disconnected from %s, reconnecting", settings.nats_url)

    while True:
        try:
            client = await nats.connect(
                settings.nats_url,
                name=name,
                user=settings.nats_user,
                password=password,
                inbox_prefix=inbox_prefix(settings.service_name),
                connect_timeout=2,
                reconnect_time_wait=0.5,
                max_reconnect_attempts=-1,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
            )
            break
        except (OSError, NatsError, TimeoutError) as exc:
            logger.warning("NATS: %s unreachable (%s), retrying", settings.nats_url, exc)
            await asyncio.sleep(1.0)
    try:
        yield client
    finally:
        try:
            await client.close()
        except Exception as exc:
            # nats-py's close writes what it buffered while reconnecting to the lost
            # connection, and fails: raised, it would replace what ended the block (a
            # cancellation: the service stopping).
            logger.warning("NATS: closed, not cleanly: %r", exc)
