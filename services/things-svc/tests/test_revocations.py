"""Tokens of revoked subjects refused by every process, without a query per request; revocations
forgotten once no token they could refuse is still valid."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.events.revocations import RevocationSettings, prune_revocations, restore, revoke
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


def pruned(table: str) -> float:
    return REGISTRY.get_sample_value("revocations_pruned_total", {"table": table}) or 0.0


async def test_revocations_are_pruned_once_every_token_they_could_refuse_has_expired(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    engine: AsyncEngine,
    token_factory: TokenFactory,
) -> None:
    """Started, the service prunes at once: a revocation older than the longest access token
    plus the leeway goes, and its subject's tokens are accepted; a recent one stays, refused; an
    erasure stays a few minutes longer."""
    assert isinstance(settings, RevocationSettings)
    kept = settings.access_token_max_seconds + settings.token_leeway_seconds
    old, recent, erased, erased_long_ago = (uuid.uuid4() for _ in range(4))
    ages = {old: kept + 5, recent: kept - 60, erased: kept + 5, erased_long_ago: kept + 400}
    async with engine.begin() as connection:
        for subject, age in ages.items():
            await connection.execute(
                text(
                    "INSERT INTO revoked_subjects (subject_id, revoked_at)"
                    " VALUES (:subject, now() - make_interval(secs => :age))"
                ),
                {"subject": subject, "age": age},
            )
        for subject in (erased, erased_long_ago):
            await connection.execute(
                text(
                    "INSERT INTO erased_subjects (subject_id, erased_at)"
                    " VALUES (:subject, now() - make_interval(secs => :age))"
                ),
                {"subject": subject, "age": ages[subject]},
            )
    before = {table: pruned(table) for table in ("revoked_subjects", "erased_subjects")}
    try:
        async with open_client(service.app(settings)) as client:
            assert await status_within(client, token_factory.auth(old), 200) == 200
            assert (await client.get(URL, headers=token_factory.auth(recent))).status_code == 401
        async with engine.connect() as connection:
            revoked = set(await connection.scalars(text("SELECT subject_id FROM revoked_subjects")))
            kept_erased = set(
                await connection.scalars(text("SELECT subject_id FROM erased_subjects"))
            )
    finally:
        await empty_tables(engine)

    assert revoked == {recent}
    assert kept_erased == {erased}
    assert pruned("revoked_subjects") - before["revoked_subjects"] == 3
    assert pruned("erased_subjects") - before["erased_subjects"] == 1


@pytest.mark.parametrize("told_by", ["the run's connection", "the poll"])
async def test_a_pruned_revocation_is_forgotten_by_the_running_service(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    engine: AsyncEngine,
    token_factory: TokenFactory,
    told_by: str,
) -> None:
    assert isinstance(settings, RevocationSettings)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    polling = {"db_pooler": Pooler.PGBOUNCER} if told_by == "the poll" else {}
    app = service.app(settings.model_copy(update=polling))
    try:
        async with open_client(app) as client:
            await committed(engine, revoke, alice)
            await committed(engine, revoke, bob)
            assert await status_within(client, token_factory.auth(alice), 401) == 401
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE revoked_subjects SET revoked_at = now() - interval '1 day'"
                        " WHERE subject_id = :alice"
                    ),
                    {"alice": alice},
                )

            await prune_revocations(engine, settings)
            assert await status_within(client, token_factory.auth(alice), 200) == 200
            assert (await client.get(URL, headers=token_factory.auth(bob))).status_code == 401
            # Revoked again after the pruning: refused again.
            await committed(engine, revoke, alice)
            assert await status_within(client, token_factory.auth(alice), 401) == 401
    finally:
        await empty_tables(engine)
