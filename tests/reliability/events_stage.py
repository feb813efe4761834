"""The events scenarios' stage: users-svc publishing, things-svc applying, a NATS of their own.

Both services run as real processes on the suite's Postgres, with a fresh pair of databases and
a fresh NATS (its JetStream data in the suite's folder) per scenario, so each scenario may stop,
restart and kill any of them. The events are account events (`user.deactivated`,
`user.reactivated`) an administrator causes through users-svc's API, alternating for each of
`USERS` users, sequentially per user and concurrently across them.
"""

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import nats
from nats.js.errors import NotFoundError
from sqlalchemy.engine import URL

from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn
from devstack.processes import ServiceProcess

from .processes import users_and_things

AUDIENCE = "reliability-events"
PASSWORD = "correct horse battery"
USERS = 10
STREAM = "events"


@dataclass
class EventStage:
    users: ServiceProcess
    things: ServiceProcess
    nats: EmbeddedNats
    databases: dict[str, URL]
    admin: dict[str, str] = field(default_factory=dict)
    user_ids: list[str] = field(default_factory=list)

    async def sql(self, service: str, query: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(asyncpg_dsn(self.databases[service]))
        try:
            return list(await connection.fetch(query))
        finally:
            await connection.close()

    async def applied(self) -> int:
        rows = await self.sql("things", "SELECT count(*) FROM event_inbox")
        return int(rows[0][0])

    async def wait_applied(self, count: int, *, timeout: float = 120.0) -> float:
        """Seconds until things-svc applied `count` events."""
        started = time.monotonic()
        while await self.applied() < count:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{await self.applied()} of {count} events applied")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def stored(self) -> int:
        """The account events the stream holds (each stored once, whatever was re-sent)."""
        client = await nats.connect(self.nats.url)
        try:
            info = await client.jetstream().stream_info(STREAM, subjects_filter=f"{STREAM}.user.>")
        except NotFoundError:  # no relay has made it yet
            return 0
        finally:
            await client.close()
        return sum((info.state.subjects or {}).values())

    async def restart(self, process: ServiceProcess) -> None:
        process.kill()
        await process.wait_exit(10)
        process.start()
        await process.wait_ready()

    async def generate(self, count: int) -> None:
        """`count` events: each user deactivated, then reactivated, and so on."""
        per_user = count // len(self.user_ids)
        async with httpx.AsyncClient(base_url=self.users.url, timeout=30) as client:

            async def alternate(user_id: str) -> None:
                for n in range(per_user):
                    action = "deactivate" if n % 2 == 0 else "activate"
                    path = f"/api/v1/users/{user_id}/{action}"
                    while True:
                        try:
                            answer = await client.post(path, headers=self.admin)
                        except httpx.TransportError:  # users-svc restarting
                            await asyncio.sleep(0.2)
                            continue
                        if answer.status_code == 200:
                            break
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(alternate(user_id) for user_id in self.user_ids))

    async def check_applied_once_in_order(self) -> tuple[int, int]:
        """Every event of users-svc's outbox applied by things-svc exactly once, each user's in
        the order users-svc committed them; (events, users)."""
        outbox = await self.sql(
            "users", "SELECT id, envelope->>'subject_id' FROM event_outbox ORDER BY position"
        )
        inbox = await self.sql("things", "SELECT event_id FROM event_inbox ORDER BY applied_at")
        subject_of = {row[0]: row[1] for row in outbox}
        assert sorted(row[0] for row in inbox) == sorted(subject_of), "not each event once"
        published: dict[str, list[uuid.UUID]] = defaultdict(list)
        applied: dict[str, list[uuid.UUID]] = defaultdict(list)
        for event_id, subject in outbox:
            published[subject].append(event_id)
        for (event_id,) in inbox:
            applied[subject_of[event_id]].append(event_id)
        assert applied == published, "a user's events applied out of order"
        return len(inbox), len(published)


async def sign_up(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    """A new account: its id and its access token."""
    signup = {"email": email, "full_name": "Events", "password": PASSWORD}
    created = await client.post("/api/v1/users", json=signup)
    assert created.status_code == 201, created.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(created.json()["id"]), str(login.json()["access_token"])


@asynccontextmanager
async def event_stage(
    postgres: EmbeddedPostgres, workdir: Path, *, nats_running: bool = True
) -> AsyncIterator[EventStage]:
    """The stage, NATS started (or, with `nats_running=False`, not yet: the events wait in the
    outbox until the scenario starts it)."""
    name = f"events_{uuid.uuid4().hex[:8]}"
    folder = workdir / name
    broker = EmbeddedNats(folder / "nats")
    events = {"nats_url": broker.url, "events_stream": STREAM, "events_poll_seconds": "0.5"}
    try:
        if nats_running:
            broker.start()
        async with users_and_things(
            postgres.url(),
            folder,
            name=name,
            audience=AUDIENCE,
            users_settings=events,
            things_settings={**events, "events_ack_wait_seconds": "2"},
        ) as services:
            stage = EventStage(
                users=services.users,
                things=services.things,
                nats=broker,
                databases=services.databases,
            )
            async with httpx.AsyncClient(base_url=services.users.url, timeout=10) as client:
                _, token = await sign_up(client, "admin@events.io")
                for n in range(USERS):
                    stage.user_ids.append((await sign_up(client, f"user{n}@events.io"))[0])
            await stage.sql(
                "users", "UPDATE users SET is_superuser = true WHERE email = 'admin@events.io'"
            )
            stage.admin = {"Authorization": f"Bearer {token}"}
            yield stage
    finally:
        broker.stop()
