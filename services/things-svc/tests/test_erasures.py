"""A user's erasure (`user.deleted`) applied while the user's writes are in flight: nothing of
theirs survives it, and a write that comes after it is refused in its own transaction."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.auth import InvalidTokenError
from common.events import Event
from common.settings import AppBaseSettings
from common.testing import ServiceUnderTest, TokenFactory
from common.testing.plugin import empty_tables, open_client
from things_svc.domains.things import service as things
from things_svc.domains.things.models import Thing
from things_svc.domains.things.schemas import ThingCreate
from things_svc.events import user_deleted

URL = "/api/v1/things"
ROUNDS = 50
CREATES = 8


async def erase(engine: AsyncEngine, owner: uuid.UUID) -> None:
    """What the consumer does with `user.deleted`, in a transaction of its own."""
    async with AsyncSession(engine) as session, session.begin():
        await user_deleted(session, Event(type="user.deleted", subject_id=owner))


async def things_of(engine: AsyncEngine, owner: uuid.UUID) -> int:
    async with AsyncSession(engine) as session:
        count = await session.scalar(select(func.count()).where(Thing.owner_id == owner))
    return count or 0


async def create(client: AsyncClient, headers: dict[str, str]) -> int:
    # Lets the erasure start among the creates.
    await asyncio.sleep(0)
    return (await client.post(URL, json={"name": "Lamp"}, headers=headers)).status_code


@pytest.fixture
async def client(
    service: ServiceUnderTest, settings: AppBaseSettings, engine: AsyncEngine
) -> AsyncIterator[AsyncClient]:
    """The app on committed transactions, emptied afterwards."""
    try:
        async with open_client(service.app(settings)) as client:
            yield client
    finally:
        await empty_tables(engine)


async def test_things_created_while_their_owner_is_erased_do_not_survive_the_erasure(
    client: AsyncClient, engine: AsyncEngine, token_factory: TokenFactory
) -> None:
    statuses: Counter[int] = Counter()
    survivors = 0
    for _ in range(ROUNDS):
        owner = uuid.uuid4()
        headers = token_factory.auth(owner)

        created = await asyncio.gather(
            *(create(client, headers) for _ in range(CREATES)), erase(engine, owner)
        )
        statuses.update(status for status in created if status is not None)
        survivors += await things_of(engine, owner)

    print(f"{ROUNDS} erasures among {CREATES} creates each: {dict(statuses)}")
    assert set(statuses) <= {201, 401}
    assert survivors == 0


async def test_a_write_after_the_erasure_is_refused_as_its_token_is(
    client: AsyncClient, engine: AsyncEngine, token_factory: TokenFactory
) -> None:
    owner = uuid.uuid4()
    headers = token_factory.auth(owner)
    created = await client.post(URL, json={"name": "Lamp"}, headers=headers)
    assert created.status_code == 201
    await erase(engine, owner)

    refused = await client.post(URL, json={"name": "Desk"}, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # The thing went with the erasure: missing, or refused with the token.
    renamed = await client.patch(
        f"{URL}/{created.json()['id']}", json={"name": "Desk"}, headers=headers
    )
    assert renamed.status_code in {401, 404}
    assert renamed.headers["content-type"] == "application/problem+json"
    assert await things_of(engine, owner) == 0


async def test_the_write_itself_refuses_an_erased_owner_before_its_token_is_refused(
    engine: AsyncEngine,
) -> None:
    """What a request whose token was checked just before the erasure was applied meets: its
    own transaction refuses the write, whatever the service's set of revoked subjects says."""
    owner = uuid.uuid4()
    try:
        await erase(engine, owner)
        async with AsyncSession(engine) as session:
            with pytest.raises(InvalidTokenError):
                await things.create_thing(session, ThingCreate(name="Desk"), owner_id=owner)
        assert await things_of(engine, owner) == 0
    finally:
        await empty_tables(engine)
