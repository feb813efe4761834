"""Work a service runs beside its requests (the event relay and consumer, the revocation set, the
pool gauges): a task that lives as long as a block, cancelled and awaited when the block ends.

Such work runs in loops that start again after an error, until the task is cancelled: `while not
stopping()`, not `while True`. asyncio cancels a task once: an error raised as the cancellation
unwinds (closing a connection that was already lost) takes its place, and a loop that only
catches errors and retries would never see it and never end, holding the service's shutdown.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


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
