"""A Postgres LISTEN that wakes a loop: notifications arrive on commit of the notifying
transaction. It reconnects after a lost connection; whoever waits also polls, so a notification
lost meanwhile (or a pooler that cannot LISTEN) costs a poll interval, never an event."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from common.background import in_background
from common.settings import AppBaseSettings, Pooler

logger = logging.getLogger("common.events")


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
    async with in_background(_listen(settings, channel, wakeup)):
        yield wakeup


async def _listen(settings: AppBaseSettings, channel: str, wakeup: Wakeup) -> None:
    while True:
        connection = None
        try:
            connection = await asyncpg.connect(
                asyncpg_dsn(settings.database_url), timeout=settings.db_connect_timeout_seconds
            )
            await connection.add_listener(channel, wakeup.set)
            wakeup.set()  # anything committed while not listening
            while True:
                await asyncio.sleep(5.0)
                # A server that went away is noticed by a query, not by waiting.
                await connection.fetchval("SELECT 1", timeout=5.0)
        except Exception as exc:  # any failure: reconnect; the waiters poll meanwhile
            logger.warning("LISTEN %s: %s; retrying", channel, exc)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
        await asyncio.sleep(1.0)
