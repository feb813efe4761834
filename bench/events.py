"""`make bench-events`: events from users-svc's outbox to things-svc's inbox, as shipped.

It starts an embedded Postgres and an embedded NATS in a scratch folder, migrates a users and a
things database with the services' own migrations, and runs users-svc (its relay) and things-svc
(its consumer) under uvicorn. Events are written to users-svc's outbox with `common.events.
publish`, as its requests write them (alternately `user.deactivated` and `user.reactivated` for a
set of users), and applied by things-svc's own handlers.

- throughput: `--backlog` events committed at once, drained relay → consumer: events/s from their
  commit to the last one applied;
- latency: `--rate` events/s, one per transaction, for `--seconds`: commit → applied, p50 and
  p99, from Postgres's own clock on both sides (the outbox row's and the inbox row's timestamps).

    uv run python bench/events.py --backlog 2000 --rate 100 --seconds 10
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL
from targets import ROOT, migrate

from common.db import Database
from common.events import Event, publish
from common.settings import AppBaseSettings
from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn, scratch_dir
from devstack.processes import ServiceProcess, service_environment
from devstack.stopping import stopping_on_signals

sys.path.insert(0, str(ROOT / "tools"))
from monorepo import Workspace

SUBJECTS = 50
TYPES = ("user.deactivated", "user.reactivated")


class ProducerSettings(AppBaseSettings):
    service_name: str = "bench-producer"
    database_url: str


async def write_events(database: Database, count: int, *, per_transaction: int) -> None:
    subjects = [uuid.uuid4() for _ in range(SUBJECTS)]
    for start in range(0, count, per_transaction):
        async with database.sessionmaker.begin() as session:
            for n in range(start, min(start + per_transaction, count)):
                subject = subjects[n % SUBJECTS]
                kind = TYPES[(n // SUBJECTS) % 2]
                await publish(session, Event(type=kind, subject_id=subject))


async def applied_count(things: str) -> int:
    connection = await asyncpg.connect(things)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM event_inbox"))
    finally:
        await connection.close()


async def wait_applied(things: str, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while await applied_count(things) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{await applied_count(things)} of {count} applied")
        await asyncio.sleep(0.05)


async def throughput(database: Database, things: str, backlog: int) -> float:
    """Events/s, from the commit of `backlog` events to the last one applied."""
    before = await applied_count(things)
    started = time.perf_counter()
    await write_events(database, backlog, per_transaction=backlog)
    await wait_applied(things, before + backlog)
    return backlog / (time.perf_counter() - started)


async def latency(
    database: Database, users: str, things: str, *, rate: float, seconds: float
) -> list[float]:
    """Commit → applied of events written at `rate` per second, in milliseconds."""
    before = await applied_count(things)
    count = int(rate * seconds)
    started = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        await write_events(database, 1, per_transaction=1)
    await wait_applied(things, before + count)
    producer = await asyncpg.connect(users)
    consumer = await asyncpg.connect(things)
    try:
        created = dict(
            await producer.fetch(
                "SELECT id, created_at FROM event_outbox ORDER BY position DESC LIMIT $1", count
            )
        )
        applied = await consumer.fetch("SELECT event_id, applied_at FROM event_inbox")
    finally:
        await producer.close()
        await consumer.close()
    return [
        (applied_at - created[event_id]).total_seconds() * 1000
        for event_id, applied_at in applied
        if event_id in created
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def start_services(
    postgres: EmbeddedPostgres, nats: EmbeddedNats, folder: Path, processes: list[ServiceProcess]
) -> dict[str, URL]:
    """users-svc and things-svc, each on its own migrated database, both on `nats`, added to
    `processes` as they start."""
    services = {facts.database: facts for facts in Workspace.load(ROOT).services()}
    urls = {}
    admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
    try:
        for name in ("users", "things"):
            await admin.execute(f'CREATE DATABASE "bench_{name}"')
            urls[name] = postgres.url(database=f"bench_{name}")
            url = urls[name].render_as_string(hide_password=False)
            await asyncio.to_thread(migrate, sys.executable, services[name], url)
    finally:
        await admin.close()
    for name in ("users", "things"):
        facts = services[name]
        env = service_environment(
            facts.env_prefix,
            database_url=urls[name].render_as_string(hide_password=False),
            nats_url=nats.url,
        )
        process = ServiceProcess(
            facts.name,
            facts.app,
            cwd=facts.directory,
            env={"ENVIRONMENT": "development", **env},
            log=folder / f"{facts.name}.log",
            options=["--no-access-log"],
        )
        processes.append(process)
        await process.started()
    return urls


async def run(args: argparse.Namespace, folder: Path) -> None:
    postgres = EmbeddedPostgres(folder / "pgdata", log_file=folder / "postgres.log")
    nats = EmbeddedNats(folder / "nats")
    processes: list[ServiceProcess] = []
    try:
        postgres.start()
        nats.start()
        urls = await start_services(postgres, nats, folder, processes)
        database = Database.from_settings(
            ProducerSettings(database_url=urls["users"].render_as_string(hide_password=False))
        )
        users, things = (asyncpg_dsn(urls[name]) for name in ("users", "things"))
        try:
            await throughput(database, things, 200)  # warm-up: stream, consumer, pools
            rates = [await throughput(database, things, args.backlog) for _ in range(args.rounds)]
            delays = await latency(database, users, things, rate=args.rate, seconds=args.seconds)
        finally:
            await database.dispose()
    finally:
        for process in processes:
            process.stop()
        nats.stop()
        postgres.stop()
    print(
        f"relay → consumer: {statistics.median(rates):.0f} events/s "
        f"(median of {args.rounds} backlogs of {args.backlog}; each: "
        f"{', '.join(f'{rate:.0f}' for rate in rates)})"
    )
    print(
        f"commit → applied at {args.rate:g} events/s for {args.seconds:g} s: "
        f"p50 {percentile(delays, 0.5):.1f} ms, p99 {percentile(delays, 0.99):.1f} ms, "
        f"max {max(delays):.1f} ms ({len(delays)} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2000, help="events drained per round")
    parser.add_argument("--rounds", type=int, default=3, help="backlogs drained")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s for the latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run's length")
    args = parser.parse_args()
    # SIGTERM stops it as Ctrl-C does: its servers stopped, its scratch folder removed.
    with stopping_on_signals(), scratch_dir("bench-events-") as folder:
        asyncio.run(run(args, folder))


if __name__ == "__main__":
    main()
