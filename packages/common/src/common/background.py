"""Work a service runs beside its requests (the event relay and consumer, the revocation set, the
pool gauges): a task that lives as long as a block, cancelled and awaited when the block ends.

Such work runs in loops that start again after an error, until the task is cancelled: `while not
stopping()`, not `while True`. asyncio cancels a task once: an error raised as the cancellation
unwinds (closing a connection that was already lost) takes its place, and a loop that only
catches errors and retries would never see it and never end, holding the service's shutdown.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

logger = logging.getLogger("common.background")


def stopping() -> bool:
    """Whether the running task has been cancelled (and has not taken it back)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@contextlib.asynccontextmanager
async def in_background(
    work: Coroutine[Any, Any, None], *, name: str | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """`work` running as a task while the block runs; cancelled when it ends, and awaited, so
    nothing of it outlives the block. An error it raised is raised here."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def periodically(work: Callable[[], Awaitable[None]], *, every_seconds: float) -> None:
    """`work()` now, then every `every_seconds`, until cancelled; a failure is logged and the
    next round tries again (housekeeping: pruning rows nobody needs any more)."""
    while not stopping():
        try:
            await work()
        except Exception as exc:
            logger.warning("%s failed: %s; trying again later", work.__name__, exc)
        await asyncio.sleep(every_seconds)
