"""Postgres LISTEN: notifications arrive on commit of the notifying transaction.

`staying_connected` holds one listening connection, and opens another after a failure, calling
`connected()` each time it listens again (a notification sent while it did not listen is lost:
`connected` catches up). `listening` builds a `Wakeup` on it for a loop that also polls, so a lost
notification, or a pooler that cannot LISTEN, costs a poll interval, never an event.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from common.background import in_background, stopping
from common.settings import AppBaseSettings, Pooler
from common.tracing import untraced

logger = logging.getLogger("common.events")

RECONNECT_AFTER_SECONDS = 1.0
# A server that went away is noticed by a query, not by waiting.
CHECK_EVERY_SECONDS = 5.0


class Wakeup:
    """Set by a notification on `channel`; `wait(timeout)` returns when set or at the timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self, *_: Any) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancellation that
        # arrives as the event is set, and the task waiting here would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        self._event.clear()


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def listening(settings: AppBaseSettings, channel: str) -> AsyncIterator[Wakeup]:
    """A `Wakeup` set on every notification of `channel` while the context lasts."""
    wakeup = Wakeup()
    if settings.db_pooler is Pooler.PGBOUNCER:
        # PgBouncer in transaction mode cannot hold a LISTEN: polling alone, then.
        yield wakeup
        return

    async def caught_up() -> None:
        wakeup.set()  # anything committed while not listening

    listener = staying_connected(settings, channel, notified=wakeup.set, connected=caught_up)
    async with in_background(listener):
        yield wakeup


async def staying_connected(
    settings: AppBaseSettings,
    channel: str,
    *,
    notified: Callable[[asyncpg.Connection, int, str, str], None],
    connected: Callable[[], Awaitable[None]],
) -> None:
    """LISTEN on `channel` until cancelled: `notified(connection, pid, channel, payload)` for each
    notification, `connected()` once listening, again after each reconnection. An error of either
    callback, like a lost connection, is logged and followed by a new connection."""
    # Nobody's request: a span every few seconds would only be noise.
    with untraced():
        while not stopping():
            connection = None
            try:
                connection = await asyncpg.connect(
                    asyncpg_dsn(settings.database_url),
                    timeout=settings.db_connect_timeout_seconds,
                )
                await connection.add_listener(channel, notified)
                await connected()
                while True:
                    await asyncio.sleep(CHECK_EVERY_SECONDS)
                    await connection.fetchval("SELECT 1", timeout=CHECK_EVERY_SECONDS)
            except Exception as exc:  # any failure: reconnect
                logger.warning("LISTEN %s: %s; retrying", channel, exc)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
            await asyncio.sleep(RECONNECT_AFTER_SECONDS)
