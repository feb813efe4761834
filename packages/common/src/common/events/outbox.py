"""`publish(session, event)`: the event joins the request's transaction, in the outbox.

It is committed with the change it describes or not at all; the relay publishes it afterwards.
The insert's transaction also notifies the relay, which Postgres delivers on commit only.
"""

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.events.envelope import Event
from common.events.tables import OUTBOX, OUTBOX_CHANNEL


async def publish(session: AsyncSession, event: Event) -> None:
    """Write `event` to the outbox in `session`'s transaction (it flushes, never commits)."""
    await session.execute(
        insert(OUTBOX).values(id=event.id, type=event.type, envelope=event.model_dump(mode="json"))
    )
    await session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
