"""The events things-svc applies: users-svc's account events (common.events, docs/events.md).

A deactivated or deleted user's tokens are refused from the commit of the event's transaction
(`common.events.revocations`); a reactivated user's are accepted again; a deleted user's things
are erased, with the shares they were given, and a thing written for a deleted user is refused,
even by a request whose token was checked before the deletion was applied.
"""

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from common.events import Event, Handler
from common.events.revocations import erase, refuse_erased_owners, restore, revoke
from things_svc.domains.shares.models import Share
from things_svc.domains.things.models import Thing


async def user_deactivated(session: AsyncSession, event: Event) -> None:
    await revoke(session, event.subject_id)


async def user_reactivated(session: AsyncSession, event: Event) -> None:
    await restore(session, event.subject_id)


async def user_deleted(session: AsyncSession, event: Event) -> None:
    # First: it waits for the user's writes in flight, so the delete below sees them.
    await erase(session, event.subject_id)
    # Their things go, and the shares of those with others by the foreign key; then what others
    # shared with them.
    await session.execute(delete(Thing).where(Thing.owner_id == event.subject_id))
    await session.execute(delete(Share).where(Share.user_id == event.subject_id))


refuse_erased_owners(Thing.owner_id)

HANDLERS = (
    Handler("user.deactivated", user_deactivated),
    Handler("user.reactivated", user_reactivated),
    Handler("user.deleted", user_deleted),
)
