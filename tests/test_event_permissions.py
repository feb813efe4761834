"""Events that only their publisher can send: NATS run with the stack's own configuration
(infra/nats/nats.conf, as `make up` runs it), reached through the services' own connection code
(`common.events.broker.connected`) with each service's NATS user (docs/events.md: security).
"""

import json
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.events import Event, EventSettings
from common.events.broker import connected, ensure_stream, stream_config
from common.events.consumer import Consumer, Handler
from devstack.nats import EmbeddedNats
from devstack.processes import free_port
from native_stack import NATS_CONFIG, Stack
from stack_services import discover_services

# The stack's stream: its name is in the configuration's permissions.
STREAM = "events"
PASSWORDS = {"users-svc": "users-Nats-pass-1", "things-svc": "things-Nats-pass-2"}


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(
        tmp_path_factory.mktemp("secured-nats") / "data",
        config_file=NATS_CONFIG,
        environment={
            "USERS_NATS_PASSWORD": PASSWORDS["users-svc"],
            "THINGS_NATS_PASSWORD": PASSWORDS["things-svc"],
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def settings_of(service: str, server: EmbeddedNats) -> EventSettings:
    values: dict[str, object] = {
        "ENVIRONMENT": "test",
        "service_name": service,
        "database_url": "postgresql+asyncpg://unused@127.0.0.1/unused",
        "nats_url": server.url,
        "nats_user": service,
        "nats_password": PASSWORDS[service],
        "events_stream": STREAM,
    }
    return EventSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def jetstream_of(service: str, server: EmbeddedNats) -> AsyncIterator[JetStreamContext]:
    async with connected(settings_of(service, server), name=service) as client:
        yield client.jetstream()


def user_deleted() -> bytes:
    return Event(type="user.deleted", subject_id=uuid.uuid4()).model_dump_json().encode()


async def stored_user_events(server: EmbeddedNats) -> dict[str, int]:
    async with jetstream_of("users-svc", server) as js:
        info = await js.stream_info(STREAM, subjects_filter=f"{STREAM}.user.>")
    return dict(info.state.subjects or {})


async def refused(url: str, *, user: str | None = None, password: str | None = None) -> str:
    """Why the server refused a connection as `user`; "" when it accepted it."""
    client = Client()
    try:
        await client.connect(
            url, user=user, password=password, allow_reconnect=False, connect_timeout=2
        )
    except nats.errors.Error as exc:
        return str(exc)
    finally:
        await client.close()
    return ""


async def test_an_anonymous_client_or_a_wrong_password_cannot_connect(
    secured_nats: EmbeddedNats,
) -> None:
    assert "Authorization Violation" in await refused(secured_nats.url)
    wrong = await refused(secured_nats.url, user="users-svc", password="a guess")
    assert "Authorization Violation" in wrong
    assert await refused(secured_nats.url, user="users-svc", password=PASSWORDS["users-svc"]) == ""


async def test_users_svc_publishes_user_events_and_things_svc_cannot(
    secured_nats: EmbeddedNats,
) -> None:
    async with jetstream_of("users-svc", secured_nats) as users:
        await ensure_stream(users, settings_of("users-svc", secured_nats))
        before = await stored_user_events(secured_nats)
        acknowledged = await users.publish(f"{STREAM}.user.deleted", user_deleted(), timeout=2)
    async with jetstream_of("things-svc", secured_nats) as things:
        # The server drops a publication that is not allowed: nothing acknowledges it.
        with pytest.raises(nats.errors.TimeoutError):
            await things.publish(f"{STREAM}.user.deleted", user_deleted(), timeout=1)
        # Nor may it reconfigure the stream (a subject transform would rewrite its own
        # dead letters into user events).
        forged = stream_config(settings_of("things-svc", secured_nats))
        forged.subjects = [*(forged.subjects or []), "forged.>"]
        with pytest.raises(nats.errors.TimeoutError):
            await things.update_stream(forged)

    assert acknowledged.stream == STREAM
    after = await stored_user_events(secured_nats)
    deleted = f"{STREAM}.user.deleted"
    assert after[deleted] == before.get(deleted, 0) + 1
    async with jetstream_of("users-svc", secured_nats) as users:
        config = (await users.stream_info(STREAM)).config
    assert config.subjects == [f"{STREAM}.>"]


async def test_things_svc_consumes_acks_and_dead_letters_with_its_own_permissions(
    secured_nats: EmbeddedNats,
) -> None:
    async with jetstream_of("users-svc", secured_nats) as users:
        await ensure_stream(users, settings_of("users-svc", secured_nats))
        await users.publish(f"{STREAM}.user.deleted", user_deleted(), timeout=2)
    things_settings = settings_of("things-svc", secured_nats)
    async with jetstream_of("things-svc", secured_nats) as things:
        # The calls things-svc's consumer makes as it starts (`Consumer.run`).
        handlers = [Handler("user.deleted", ignore), Handler("user.deactivated", ignore)]
        consumer = Consumer(things_settings, async_sessionmaker(), things, handlers)
        await things.add_consumer(STREAM, consumer.config())
        subscription = await things.pull_subscribe_bind(durable="things-svc", stream=STREAM)
        [message] = await subscription.fetch(1, timeout=2)
        await message.ack_sync(timeout=2)
        dead = await things.publish(f"{STREAM}.dead.things-svc", message.data, timeout=2)
        info = await things.consumer_info(STREAM, "things-svc")

    assert json.loads(message.data)["type"] == "user.deleted"
    # Delivered and acknowledged: the next one may come.
    assert (info.delivered.consumer_seq, info.num_ack_pending) == (1, 0)
    assert dead.stream == STREAM


async def ignore(session: AsyncSession, event: Event) -> None:
    return None


async def test_the_native_stacks_nats_admits_each_service_with_its_generated_password_only(
    tmp_path: Path,
) -> None:
    stack = Stack(tmp_path, discover_services())
    server = stack.nats(port=free_port())
    server.start()
    try:
        anonymous = await refused(server.url)
        admitted = {
            service.name: await refused(
                server.url,
                user=env[f"{service.env_prefix}NATS_USER"],
                password=env[f"{service.env_prefix}NATS_PASSWORD"],
            )
            for service in stack.services
            for env in [stack.service_env(service)]
        }
    finally:
        server.stop()
    kept = tmp_path / "nats-passwords.json"

    assert "Authorization Violation" in anonymous
    # The services infra/nats/nats.conf names (a service added later gets its user there).
    assert (admitted["things-svc"], admitted["users-svc"]) == ("", "")
    # Made up once, readable by its owner only, the same for the next `make up`.
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert Stack(tmp_path, stack.services).nats_passwords() == stack.nats_passwords()
    assert len(set(stack.nats_passwords().values())) == len(stack.services)
