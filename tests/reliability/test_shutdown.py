"""Shutdown always wins: a service whose broker or database has gone away still stops on SIGTERM,
with exit status 0, within uvicorn's graceful timeout, as a Kubernetes grace period expects.

Both services run with their events (users-svc relaying its outbox, things-svc consuming and
keeping its revoked subjects); NATS or Postgres is killed, the services are left a few seconds
to notice and start reconnecting, then each is sent SIGTERM and timed until it exits.
"""

import asyncio
import time
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.processes import ServiceProcess

from .conftest import Report
from .events_stage import EventStage, event_stage
from .processes import GRACEFUL_SHUTDOWN_SECONDS

pytestmark = pytest.mark.reliability

# Long enough for the relay, the consumer and the listeners to fail and be reconnecting.
NOTICE_SECONDS = 3.0


async def seconds_to_exit(process: ServiceProcess) -> float:
    """SIGTERM, then the seconds until the process exits; it must exit 0 within the grace."""
    started = time.monotonic()
    process.terminate()
    try:
        code = await process.wait_exit(GRACEFUL_SHUTDOWN_SECONDS + 5)
    except Exception as exc:
        raise AssertionError(
            f"{process.name} still ran {GRACEFUL_SHUTDOWN_SECONDS + 5} s after SIGTERM:\n"
            f"{process.log_tail()}"
        ) from exc
    elapsed = time.monotonic() - started
    assert code == 0, f"{process.name} exited {code}:\n{process.log_tail()}"
    assert elapsed < GRACEFUL_SHUTDOWN_SECONDS, f"{process.name} took {elapsed:.1f} s"
    return elapsed


async def stop_both(stage: EventStage) -> str:
    seconds = {
        process.name: await seconds_to_exit(process) for process in (stage.users, stage.things)
    }
    return ", ".join(f"{name} exited 0 in {elapsed:.2f} s" for name, elapsed in seconds.items())


async def test_each_service_stops_on_sigterm_with_its_broker_killed(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with event_stage(postgres, workdir) as stage:
        stage.nats.kill()
        await asyncio.sleep(NOTICE_SECONDS)
        figures = await stop_both(stage)

    report(f"shutdown, NATS killed {NOTICE_SECONDS:.0f} s before SIGTERM: {figures}")


async def test_each_service_stops_on_sigterm_with_its_database_killed(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with event_stage(postgres, workdir) as stage:
        postgres.kill()
        try:
            await asyncio.sleep(NOTICE_SECONDS)
            figures = await stop_both(stage)
        finally:
            postgres.start()  # the stage drops its databases as it ends

    report(f"shutdown, Postgres killed {NOTICE_SECONDS:.0f} s before SIGTERM: {figures}")
