"""Tokens of revoked subjects refused by every process, without a query per request."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.events.revocations import restore, revoke
from common.settings import AppBaseSettings, Pooler
from common.testing import ServiceUnderTest, TokenFactory
from common.testing.plugin import empty_tables, open_client

URL = "/api/v1/things"


async def committed(
    engine: AsyncEngine, change: Callable[..., Awaitable[None]], subject: uuid.UUID
) -> None:
    """What an event's handler does, in a transaction of its own."""
    async with AsyncSession(engine) as session, session.begin():
        await change(session, subject)


async def status_within(client: AsyncClient, headers: dict[str, str], status: int) -> int:
    """The status of a GET, asked again for up to five seconds until it is `status` (the poll
    runs each second; a loaded machine may take longer)."""
    answered = 0
    for _ in range(100):
        answered = (await client.get(URL, headers=headers)).status_code
        if answered == status:
            break
        await asyncio.sleep(0.05)
    return answered


@pytest.mark.parametrize("told_by", ["the run's connection", "the poll"])
async def test_a_revoked_subject_is_refused_and_a_restored_one_accepted_again(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    engine: AsyncEngine,
    token_factory: TokenFactory,
    told_by: str,
) -> None:
    """Told by a notification on a direct connection (by the poll when the run's traffic goes
    through PgBouncer, which cannot LISTEN), or by the poll as behind PgBouncer."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    polling = {"db_pooler": Pooler.PGBOUNCER} if told_by == "the poll" else {}
    app = service.app(settings.model_copy(update=polling))
    try:
        async with open_client(app) as client:
            assert (await client.get(URL, headers=token_factory.auth(alice))).status_code == 200

            await committed(engine, revoke, alice)
            assert await status_within(client, token_factory.auth(alice), 401) == 401
            assert (await client.get(URL, headers=token_factory.auth(bob))).status_code == 200

            await committed(engine, restore, alice)
            assert await status_within(client, token_factory.auth(alice), 200) == 200
    finally:
        await empty_tables(engine)


async def test_a_subject_revoked_before_the_start_is_refused_from_the_first_request(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    engine: AsyncEngine,
    token_factory: TokenFactory,
) -> None:
    alice = uuid.uuid4()
    await committed(engine, revoke, alice)
    try:
        async with open_client(service.app(settings)) as client:
            refused = await client.get(URL, headers=token_factory.auth(alice))
    finally:
        await empty_tables(engine)

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
