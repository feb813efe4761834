"""The wake-up the event relay and the revocation set wait on: a notification or a timeout ends
a wait, and a service that stops stops waiting, whatever arrives at that moment."""

import asyncio
import time

from common.events.listener import Wakeup


async def test_a_notification_ends_the_wait_at_once() -> None:
    wakeup = Wakeup()
    asyncio.get_running_loop().call_later(0.05, wakeup.set)
    started = time.monotonic()

    await wakeup.wait(5.0)

    assert time.monotonic() - started < 1.0


async def test_without_a_notification_the_wait_ends_at_its_timeout() -> None:
    started = time.monotonic()

    await Wakeup().wait(0.1)

    assert 0.1 <= time.monotonic() - started < 1.0


async def test_a_waiter_stops_when_cancelled_as_a_notification_arrives() -> None:
    # The shutdown of a service whose LISTEN connection has just signalled: the cancellation
    # and the notification land in the same turn of the loop.
    wakeup = Wakeup()

    async def keep_waiting() -> None:
        while True:
            await wakeup.wait(1.0)

    task = asyncio.create_task(keep_waiting())
    await asyncio.sleep(0.01)
    wakeup.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)

    assert task in done
    assert task.cancelled()
