"""Work a service runs beside its requests (the event relay and consumer, the revocation set, the
pool gauges): a task that lives as long as a block, cancelled and awaited when the block ends."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


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
