"""The wake-up the event relay and the revocation set wait on: a notification or a timeout ends
a wait, and a service that stops stops waiting, whatever arrives at that moment; the listening
connection behind it stops too, whatever its clean-up raises."""

import asyncio
import time

from common.events.listener import Wakeup, staying_connected
from common.settings import AppBaseSettings


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


async def test_the_listener_stops_when_cancelled_though_its_clean_up_fails(
    settings: AppBaseSettings,
) -> None:
    # A query on a connection the database dropped: the cancellation that stops the service
    # unwinds through a clean-up that fails, and that error arrives instead of it.
    listening = asyncio.Event()

    async def caught_up() -> None:
        if listening.is_set():
            return  # listening again: the error came once
        listening.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ConnectionResetError("closing a lost connection") from None

    listener = staying_connected(settings, "test_channel", notified=print, connected=caught_up)
    task = asyncio.create_task(listener)
    await asyncio.wait_for(listening.wait(), 10)
    task.cancel()
    stopping = time.monotonic()
    done, _ = await asyncio.wait({task}, timeout=5)
    stopped_in = time.monotonic() - stopping
    if not done:
        task.cancel()  # a second time, for the next tests' sake

    assert done, "the listener went on listening after it was cancelled"
    assert stopped_in < 3.0
