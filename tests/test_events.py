"""Account events across services, as real processes on a real NATS and Postgres: users-svc
publishes, things-svc applies (docs/events.md).

A deactivated user's token is refused by things-svc within a second; reactivated, accepted
again; an erased user's things are gone; and so on a NATS that lets each service publish only
its own events, as `make up` runs it (infra/nats/nats.conf).
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from reliability.processes import UsersAndThings, users_and_things
from sqlalchemy.engine import URL

from common.testing.plugin import worker_id
from devstack.nats import EmbeddedNats
from devstack.postgres import asyncpg_dsn
from devstack.processes import ServiceProcess
from native_stack import NATS_CONFIG

pytestmark = pytest.mark.processes

AUDIENCE = "events-api"
PASSWORD = "correct horse"
RACES = 200
RACES_AT_ONCE = 16


@pytest.fixture
async def stack(
    postgres_server: URL, nats_url: str, events_stream: str, tmp_path: Path
) -> AsyncIterator[UsersAndThings]:
    events = {"nats_url": nats_url, "events_stream": events_stream}
    async with users_and_things(
        postgres_server,
        tmp_path,
        name=f"test_events_{worker_id()}",
        audience=AUDIENCE,
        # Room for every request of the races below at once: a request that waits 3 s for a
        # connection is answered 503.
        users_settings={**events, "db_pool_size": str(2 * RACES_AT_ONCE + 4)},
        things_settings=events,
    ) as services:
        yield services


@pytest.fixture
async def secured_stack(postgres_server: URL, tmp_path: Path) -> AsyncIterator[UsersAndThings]:
    """The services on a NATS of their own, run with the stack's configuration: each connects
    as its own user, with the permissions that file grants it."""
    passwords = {"users": "users-Nats-pass-1", "things": "things-Nats-pass-2"}
    broker = EmbeddedNats(
        tmp_path / "nats",
        config_file=NATS_CONFIG,
        environment={f"{svc.upper()}_NATS_PASSWORD": passwords[svc] for svc in passwords},
    )
    broker.start()
    settings = {
        svc: {"nats_url": broker.url, "nats_user": f"{svc}-svc", "nats_password": passwords[svc]}
        for svc in passwords
    }
    try:
        async with users_and_things(
            postgres_server,
            tmp_path,
            name=f"test_secured_events_{worker_id()}",
            audience=AUDIENCE,
            users_settings=settings["users"],
            things_settings=settings["things"],
        ) as services:
            yield services
    finally:
        broker.stop()


async def sign_up(client: httpx.AsyncClient, users: ServiceProcess, email: str) -> str:
    """A new account's access token."""
    signup = {"email": email, "full_name": email.split("@")[0], "password": PASSWORD}
    assert (await client.post(f"{users.url}/api/v1/users", json=signup)).status_code == 201
    login = await client.post(
        f"{users.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


async def sql(database: URL, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(database))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def seconds_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0) -> float:
    """How long until `check()` holds, polled every few milliseconds."""
    started = time.perf_counter()
    while not await check():
        assert time.perf_counter() - started < timeout, "never happened"
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def until_waiting(connection: asyncpg.Connection, requests: int) -> None:
    """Until `requests` statements of the database wait for a lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )

    async def waiting() -> bool:
        # Within a transaction, Postgres answers from the activity it read first: read it anew.
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return bool(await connection.fetchval(query) >= requests)

    await seconds_until(waiting)


async def test_a_deactivated_user_is_refused_by_things_svc_within_a_second_and_back_on_reactivation(
    stack: UsersAndThings,
) -> None:
    users, things = stack.users, stack.things
    async with httpx.AsyncClient(timeout=10) as client:
        alice = {"Authorization": f"Bearer {await sign_up(client, users, 'alice@x.io')}"}
        admin = {"Authorization": f"Bearer {await sign_up(client, users, 'admin@x.io')}"}
        promote = "UPDATE users SET is_superuser = true WHERE email = 'admin@x.io'"
        await sql(stack.databases["users"], promote)
        alice_id = (await client.get(f"{users.url}/api/v1/users/me", headers=alice)).json()["id"]
        things_url = f"{things.url}/api/v1/things"
        assert (await client.get(things_url, headers=alice)).status_code == 200

        async def status() -> int:
            return (await client.get(things_url, headers=alice)).status_code

        async def refused() -> bool:
            return await status() == 401

        async def accepted() -> bool:
            return await status() == 200

        deactivated = await client.post(f"{users.url}/api/v1/users/me/deactivate", headers=alice)
        assert deactivated.status_code == 204
        delay = await seconds_until(refused)
        print(f"deactivated → refused by things-svc after {delay * 1000:.0f} ms")
        assert delay < 1.0

        activated = await client.post(
            f"{users.url}/api/v1/users/{alice_id}/activate", headers=admin
        )
        assert activated.status_code == 200, activated.text
        delay = await seconds_until(accepted)
        print(f"reactivated → accepted by things-svc after {delay * 1000:.0f} ms")
        assert delay < 1.0


async def test_an_erased_users_things_are_erased_in_things_svc(stack: UsersAndThings) -> None:
    await erase_one_of_two_users(stack)


async def test_events_flow_on_a_nats_where_each_service_may_send_only_its_own(
    secured_stack: UsersAndThings,
) -> None:
    # users-svc's relay and things-svc's consumer do all they need with the permissions `make up`
    # grants them (tests/test_event_permissions.py: and nothing more).
    await erase_one_of_two_users(secured_stack)


async def erase_one_of_two_users(stack: UsersAndThings) -> None:
    """Bob and Carol own things; Bob erases his account: things-svc erases his things only."""
    users, things = stack.users, stack.things
    async with httpx.AsyncClient(timeout=10) as client:
        bob = {"Authorization": f"Bearer {await sign_up(client, users, 'bob@x.io')}"}
        carol = {"Authorization": f"Bearer {await sign_up(client, users, 'carol@x.io')}"}
        for name, owner in (("Lamp", bob), ("Desk", bob), ("Chair", carol)):
            created = await client.post(
                f"{things.url}/api/v1/things", json={"name": name}, headers=owner
            )
            assert created.status_code == 201, created.text

        erased = await client.request(
            "DELETE", f"{users.url}/api/v1/users/me", json={"password": PASSWORD}, headers=bob
        )
        assert erased.status_code == 204, erased.text

        async def bobs_things_gone() -> bool:
            rows = await sql(stack.databases["things"], "SELECT name FROM things ORDER BY name")
            return [row["name"] for row in rows] == ["Chair"]

        delay = await seconds_until(bobs_things_gone)
        print(f"erased → things erased in things-svc after {delay * 1000:.0f} ms")
        listing = await client.get(f"{things.url}/api/v1/things", headers=carol)
        assert [thing["name"] for thing in listing.json()["items"]] == ["Chair"]
        assert (await client.get(f"{things.url}/api/v1/things", headers=bob)).status_code == 401


async def test_a_reactivation_racing_an_erasure_never_reaches_things_svc_after_it(
    stack: UsersAndThings,
) -> None:
    """200 deactivated accounts, each reactivated and erased at once by an administrator.
    Whichever wins in users-svc, the account ends erased there (a reactivation after the erasure
    finds no account), and things-svc must end with its tokens refused and its things gone: the
    events reach it in the order their changes committed, never `user.deleted` then
    `user.reactivated` (and things-svc would not undo an erasure if they did)."""
    users = stack.users
    users_db, things_db = stack.databases["users"], stack.databases["things"]
    async with httpx.AsyncClient(timeout=30) as client:
        admin = {"Authorization": f"Bearer {await sign_up(client, users, 'root@x.io')}"}
        await sql(users_db, "UPDATE users SET is_superuser = true WHERE email = 'root@x.io'")
        # Written straight to the databases: 200 sign-ups would spend the test hashing.
        ids = [uuid.uuid4() for _ in range(RACES)]
        await sql(
            users_db,
            "INSERT INTO users (id, email, full_name, hashed_password, is_active)"
            " SELECT id, id::text || '@x.io', 'racer', 'unused', false"
            " FROM unnest($1::uuid[]) AS id",
            ids,
        )
        await sql(
            things_db,
            "INSERT INTO things (id, owner_id, name)"
            " SELECT gen_random_uuid(), id, 'Lamp' FROM unnest($1::uuid[]) AS id",
            ids,
        )
        accounts = f"{users.url}/api/v1/users"

        async def race(user_id: uuid.UUID) -> tuple[int, int]:
            reactivated, erased = await asyncio.gather(
                client.post(f"{accounts}/{user_id}/activate", headers=admin),
                client.delete(f"{accounts}/{user_id}", headers=admin),
            )
            return reactivated.status_code, erased.status_code

        started = time.perf_counter()
        outcomes: list[tuple[int, int]] = []
        for first in range(0, RACES, RACES_AT_ONCE):
            batch = ids[first : first + RACES_AT_ONCE]
            # The accounts' rows are held until both requests of each race wait for them, then
            # let go at once: each race is as close as it can be, every time.
            holder = await asyncpg.connect(asyncpg_dsn(users_db))
            try:
                async with holder.transaction():
                    await holder.execute(
                        "SELECT id FROM users WHERE id = ANY($1) FOR UPDATE", batch
                    )
                    races = [asyncio.create_task(race(user_id)) for user_id in batch]

                    await until_waiting(holder, 2 * len(batch))
            finally:
                await holder.close()
            outcomes += await asyncio.gather(*races)
        print(f"{RACES} races in {time.perf_counter() - started:.1f} s")

        # An event committed after every race: once things-svc applied it, it applied theirs.
        last = (await client.get(f"{users.url}/api/v1/users/me", headers=admin)).json()["id"]
        deactivated = await client.post(f"{accounts}/{last}/deactivate", headers=admin)
        assert deactivated.status_code == 200, deactivated.text

        async def caught_up() -> bool:
            query = "SELECT 1 FROM revoked_subjects WHERE subject_id = $1"
            return bool(await sql(things_db, query, uuid.UUID(last)))

        await seconds_until(caught_up, timeout=30)
        revoked = await sql(
            things_db, "SELECT subject_id FROM revoked_subjects WHERE subject_id = ANY($1)", ids
        )
        assert len(revoked) == RACES, f"{RACES - len(revoked)} erased users active in things-svc"
        assert await sql(things_db, "SELECT id FROM things WHERE owner_id = ANY($1)", ids) == []
        print(
            f"reactivation first: {sum(r == 200 for r, _ in outcomes)}, "
            f"erasure first: {sum(r == 404 for r, _ in outcomes)}"
        )
        assert {erased for _, erased in outcomes} == {204}, outcomes
        assert {reactivated for reactivated, _ in outcomes} <= {200, 404}, outcomes
        assert await sql(users_db, "SELECT id FROM users WHERE id = ANY($1)", ids) == []
