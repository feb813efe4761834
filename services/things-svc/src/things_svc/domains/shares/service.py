"""Sharing a thing, read-only, with another user, whom users-svc finds by email.

users-svc is asked before the database: no connection is held while it answers. While it is
down, sharing answers 503 with `Retry-After` (common.service_client); reading what is shared
does not need it.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFoundError
from common.pagination import PageParams
from things_svc.domains.shares import repository
from things_svc.domains.shares.models import Share
from things_svc.domains.shares.schemas import ShareCreate
from things_svc.domains.things import repository as things
from things_svc.domains.things.models import Thing
from things_svc.domains.things.service import ThingNotFoundError
from things_svc.users import UsersClient


class CannotShareError(NotFoundError):
    # One answer for a thing that is not yours and for an email nobody can be shared with at:
    # the endpoint tells nobody which accounts exist.
    detail = "You have no thing with this id, or no account you can share with has this email."


class ShareNotFoundError(NotFoundError):
    detail = "You have no thing with this id shared with this user."


async def share_thing(
    session: AsyncSession,
    thing_id: uuid.UUID,
    data: ShareCreate,
    *,
    owner_id: uuid.UUID,
    users: UsersClient,
) -> Share:
    """Share the owner's thing with the active account that has this email; sharing it again
    with the same account keeps the first share."""
    account = await users.look_up(data.email)
    thing = await things.get_owned(session, thing_id, owner_id=owner_id)
    if thing is None or account is None or not account.shareable or account.id == owner_id:
        raise CannotShareError
    # Two requests sharing it at once both succeed, with one share.
    await session.execute(
        insert(Share).values(thing_id=thing_id, user_id=account.id).on_conflict_do_nothing()
    )
    return await session.get_one(Share, (thing_id, account.id))


async def list_shares(
    session: AsyncSession, thing_id: uuid.UUID, page: PageParams, *, owner_id: uuid.UUID
) -> Sequence[Share]:
    if await things.get_owned(session, thing_id, owner_id=owner_id) is None:
        raise ThingNotFoundError
    return await repository.list_for_thing(session, page, thing_id=thing_id)


async def unshare_thing(
    session: AsyncSession, thing_id: uuid.UUID, user_id: uuid.UUID, *, owner_id: uuid.UUID
) -> None:
    share = await session.get(Share, (thing_id, user_id))
    if share is None or await things.get_owned(session, thing_id, owner_id=owner_id) is None:
        raise ShareNotFoundError
    await session.delete(share)
    await session.flush()


async def list_shared_with_me(
    session: AsyncSession, page: PageParams, *, user_id: uuid.UUID
) -> Sequence[Thing]:
    return await repository.list_shared_with(session, page, user_id=user_id)


async def get_shared_with_me(
    session: AsyncSession, thing_id: uuid.UUID, *, user_id: uuid.UUID
) -> Thing:
    thing = await repository.get_shared_with(session, thing_id, user_id=user_id)
    if thing is None:
        raise ThingNotFoundError
    return thing
