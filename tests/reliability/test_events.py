"""Events under faults: 1,000 account events from users-svc to things-svc while the broker
restarts, the relay dies between publishing and marking, and the consumer dies inside its
transaction. Afterwards every event is applied exactly once (the inbox's rows against the
outbox's), each user's in order (docs/events.md)."""

import asyncio
import time
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres

from .conftest import Report
from .events_stage import event_stage

EVENTS = 1_000
pytestmark = pytest.mark.reliability


async def test_events_survive_a_broker_restart_mid_stream(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with event_stage(postgres, workdir) as stage:
        started = time.monotonic()
        generating = asyncio.create_task(stage.generate(EVENTS))
        await stage.wait_applied(EVENTS // 4)
        stage.nats.stop()
        applied_at_stop = await stage.applied()
        await asyncio.sleep(1.0)
        stage.nats.start()
        await generating
        await stage.wait_applied(EVENTS)
        elapsed = time.monotonic() - started
        applied, users = await stage.check_applied_once_in_order()
        stored = await stage.stored()

    assert (applied, stored) == (EVENTS, EVENTS)
    report(
        f"events, NATS restarted after {applied_at_stop} applied (1 s down): {applied} applied "
        f"once each, in order for each of {users} users, {stored} stored, in {elapsed:.1f} s"
    )


async def test_events_survive_the_relay_killed_between_publishing_and_marking_sent(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with event_stage(postgres, workdir, nats_running=False) as stage:
        await stage.generate(EVENTS)  # committed to the outbox; no broker yet
        stage.nats.start()
        while await stage.stored() < 50:  # the relay's first batch is on its way
            await asyncio.sleep(0.001)
        stage.users.kill()
        await stage.users.wait_exit(10)
        stored_at_kill = await stage.stored()
        marked = await stage.sql(
            "users", "SELECT count(*) FROM event_outbox WHERE sent_at IS NOT NULL"
        )
        published_unmarked = stored_at_kill - int(marked[0][0])
        stage.users.start()
        await stage.users.wait_ready()
        await stage.wait_applied(EVENTS)
        applied, users = await stage.check_applied_once_in_order()
        stored = await stage.stored()

    assert published_unmarked > 0, "the kill did not fall between publishing and marking"
    assert (applied, stored) == (EVENTS, EVENTS)
    report(
        f"events, relay killed with {published_unmarked} published and not marked sent: "
        f"re-sent, {stored} stored (duplicates dropped), {applied} applied once each, in order "
        f"for each of {users} users"
    )


async def test_events_survive_the_consumer_killed_mid_transaction(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with event_stage(postgres, workdir) as stage:
        generating = asyncio.create_task(stage.generate(EVENTS))
        kills = 0
        for share in (0.2, 0.45, 0.7):
            await stage.wait_applied(int(EVENTS * share))
            # Applying one event after another, things-svc is inside a transaction nearly all the
            # time; SIGKILL gives it no chance to finish one.
            await stage.restart(stage.things)
            kills += 1
        await generating
        await stage.wait_applied(EVENTS)
        await asyncio.sleep(3.0)  # past the ack wait: a redelivery would show now
        applied, users = await stage.check_applied_once_in_order()

    assert applied == EVENTS
    report(
        f"events, consumer SIGKILLed {kills} times while applying: {applied} applied once "
        f"each, in order for each of {users} users"
    )
