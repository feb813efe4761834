"""Postgres restarted, down for 10 s and frozen for 6 s, with things-svc under open-loop load."""

import asyncio
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import httpx
import psutil
import pytest

from common.health import READY_TIMEOUT_SECONDS
from common.settings import AppBaseSettings
from devstack.pgbouncer import SERVER_LOGIN_RETRY_SECONDS
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn

from .conftest import Report, Things, ThingsStarter
from .load import Call, Record, Run, open_loop, percentile

pytestmark = pytest.mark.reliability

DEFAULTS = AppBaseSettings.model_fields
CONNECT_TIMEOUT: float = DEFAULTS["db_connect_timeout_seconds"].default
POOL_TIMEOUT: float = DEFAULTS["db_pool_timeout_seconds"].default
COMMAND_TIMEOUT: float = DEFAULTS["db_command_timeout_seconds"].default


async def create_things(things: Things, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=things.url, headers=things.headers) as client:
        ids = []
        for index in range(count):
            response = await client.post("/api/v1/things", json={"name": f"seed-{index}"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids


async def stored_ids(things: Things) -> set[str]:
    connection = await asyncpg.connect(asyncpg_dsn(things.database))
    try:
        return {str(row[0]) for row in await connection.fetch("SELECT id FROM things")}
    finally:
        await connection.close()


def describe(records: Iterable[Record]) -> str:
    """The requests that broke a rule, for the failure message (machine load included)."""
    lines = [f"{r.call.kind} {r.start:.2f}-{r.end:.2f} s: {r.status}" for r in records]
    return f"load average {os.getloadavg()}; " + "; ".join(lines[:30])


def is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def cycle(
    things: Things, kinds: Sequence[Call], *, rate: float, seconds: float
) -> tuple[Run, asyncio.Task[Run]]:
    """Open-loop load on things-svc, started now, sending `kinds` in turn."""
    run = Run(started_at=time.monotonic())
    load = open_loop(
        things.url,
        lambda index: kinds[index % len(kinds)],
        rate=rate,
        seconds=seconds,
        headers=things.headers,
        run=run,
    )
    return run, asyncio.create_task(load)


async def test_postgres_restarted_under_100_requests_per_second(
    things: Things, postgres: EmbeddedPostgres, report: Report
) -> None:
    seeds = await create_things(things, 20)

    def calls(index: int) -> Call:
        if index % 2:
            return Call("read", "GET", f"/api/v1/things/{seeds[index % len(seeds)]}")
        return Call("write", "POST", "/api/v1/things", {"name": f"load-{index}"})

    run = Run(started_at=time.monotonic())
    load = asyncio.create_task(
        open_loop(things.url, calls, rate=100, seconds=9, headers=things.headers, run=run)
    )
    await asyncio.sleep(3)
    down = run.at(time.monotonic())
    await asyncio.to_thread(postgres.stop)
    await asyncio.to_thread(postgres.start)
    back = run.at(time.monotonic())
    await load

    # Through PgBouncer, a request may still be refused until the pooler's next login attempt.
    recovered = back + (SERVER_LOGIN_RETRY_SECONDS if things.pooler is not None else 0)
    through = (
        f" through PgBouncer (its login retry {recovered - back:.0f} s)" if things.pooler else ""
    )
    records = run.records
    failures = [r for r in records if not is_success(r.status)]
    stray = [r for r in failures if r.status != 503 or r.end < down or r.start > recovered]
    late = [r for r in records if r.start >= recovered + 1 and not is_success(r.status)]
    acknowledged = {r.body["id"] for r in records if r.status == 201}
    lost = acknowledged - await stored_ids(things)
    slowest = max(r.duration for r in records)
    report(
        f"postgres restart @100 req/s{through}: {len(records)} requests, "
        f"outage {back - down:.2f} s, "
        f"{len(failures)} failures (all 503 in window: {not stray}), max {slowest:.2f} s, "
        f"p99 {percentile([r.duration for r in records], 0.99):.3f} s, "
        f"failed after back+1 s: {len(late)}, writes acknowledged {len(acknowledged)}, "
        f"lost {len(lost)}; load average {os.getloadavg()[0]:.1f}"
    )
    assert slowest <= 5, describe(r for r in records if r.duration > 5)
    assert stray == [], describe(stray)
    assert late == [], describe(late)
    assert lost == set()


async def test_postgres_down_for_10_seconds(
    things: Things, postgres: EmbeddedPostgres, report: Report
) -> None:
    kinds = (
        Call("read", "GET", "/api/v1/things"),
        Call("ready", "GET", "/health/ready"),
        Call("live", "GET", "/health/live"),
    )
    run, load = cycle(things, kinds, rate=30, seconds=20)
    await asyncio.sleep(2)
    down = run.at(time.monotonic())
    await asyncio.to_thread(postgres.kill)
    await asyncio.sleep(10)
    # Postgres accepts connections a moment before `start` returns: "during" ends when the
    # restart begins, "after" starts when it has returned.
    restarting = run.at(time.monotonic())
    await asyncio.to_thread(postgres.start)
    back = run.at(time.monotonic())
    await load

    def of(kind: str) -> list[tuple[float, float, int | None]]:
        return [(r.start, r.end, r.status) for r in run.records if r.call.kind == kind]

    failed_reads = [(s, e, st) for s, e, st in of("read") if not is_success(st)]
    slow_failures = [f for f in failed_reads if f[1] - f[0] > CONNECT_TIMEOUT + 0.5]
    not_503 = [f for f in failed_reads if f[2] != 503]
    ready_during = [st for s, e, st in of("ready") if s > down + 0.5 and e < restarting]
    ready_after = [(s, st) for s, e, st in of("ready") if s >= back]
    first_ready = min((s for s, st in ready_after if st == 200), default=float("inf"))
    not_ready_late = [st for s, st in ready_after if s >= back + 2 and st != 200]
    live = [st for s, e, st in of("live")]
    reads_late = [st for s, e, st in of("read") if s >= back + 1 and not is_success(st)]
    report(
        f"postgres down 10 s: {len(failed_reads)} failed reads, all 503: {not not_503}, "
        f"slowest failure {max((e - s for s, e, _ in failed_reads), default=0):.3f} s "
        f"(limit {CONNECT_TIMEOUT + 0.5} s); /health/ready 503 during: "
        f"{ready_during.count(503)}/{len(ready_during)}, 200 again {first_ready - back:.2f} s "
        f"after restart; /health/live 200: {live.count(200)}/{len(live)}"
    )
    assert failed_reads, "the outage must have been seen"
    assert not_503 == []
    assert slow_failures == []
    assert ready_during
    assert set(ready_during) == {503}
    assert first_ready - back <= 2
    assert not_ready_late == []
    assert any(s >= back + 2 for s, _ in ready_after), "the load must outlast the outage"
    assert set(live) == {200}
    assert reads_late == []


@dataclass(frozen=True)
class Freeze:
    seconds: float
    command_timeout: float

    @property
    def outlasts_statements(self) -> bool:
        return self.seconds > self.command_timeout

    def failure_limit(self, kind: str) -> float:
        """How long a request may take to fail while Postgres is frozen."""
        if kind == "ready":
            # The probe answers at the check's timeout; the check itself goes on without it.
            return READY_TIMEOUT_SECONDS + 0.5
        if self.outlasts_statements:
            # A statement fails at its command timeout and its connection is dropped: a request
            # that waited for that connection's slot then has to open a new one.
            return max(self.command_timeout, POOL_TIMEOUT + CONNECT_TIMEOUT) + 0.5
        return max(POOL_TIMEOUT, CONNECT_TIMEOUT) + 0.5


FREEZES = {
    # Statements in flight wait for the thaw and are answered then.
    "6s": Freeze(seconds=6.0, command_timeout=COMMAND_TIMEOUT),
    # Statements in flight fail at the command timeout, before the thaw.
    "6s-past-command-timeout": Freeze(seconds=6.0, command_timeout=2.0),
}


async def frozen_for(postgres: EmbeddedPostgres, seconds: float) -> None:
    """Postgres and every process of it stopped (SIGSTOP) for `seconds`, then resumed."""
    pid = postgres.pid()
    assert pid is not None
    postmaster = psutil.Process(pid)
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.suspend()
    try:
        await asyncio.sleep(seconds)
    finally:
        for process in processes:
            process.resume()


@pytest.mark.parametrize("freeze", FREEZES.values(), ids=FREEZES.keys())
async def test_postgres_frozen(
    freeze: Freeze, start_things: ThingsStarter, postgres: EmbeddedPostgres, report: Report
) -> None:
    """SIGSTOP: connections stay open and new ones are accepted by the kernel, but nothing answers
    (a hung server, or a network that drops packets). Nothing may hang on it."""
    kinds = (
        Call("read", "GET", "/api/v1/things"),
        Call("write", "POST", "/api/v1/things", {"name": "frozen"}),
        Call("ready", "GET", "/health/ready"),
        Call("live", "GET", "/health/live"),
    )
    timeout = {"THINGS_DB_COMMAND_TIMEOUT_SECONDS": str(freeze.command_timeout)}
    async with start_things(**timeout) as things:
        run, load = cycle(things, kinds, rate=40, seconds=freeze.seconds + 8)
        await asyncio.sleep(2)
        frozen = run.at(time.monotonic())
        await frozen_for(postgres, freeze.seconds)
        thawed = run.at(time.monotonic())
        await load
        lost = {r.body["id"] for r in run.records if r.status == 201} - await stored_ids(things)

    records = run.records
    unanswered = [r for r in records if r.status is None]
    failures = [r for r in records if r.status is not None and not is_success(r.status)]
    not_503 = [r for r in failures if r.status != 503]
    # A failure comes from a timeout the service sets: waiting for a pooled connection, opening
    # a new one, a statement's, or the readiness check's own; never from waiting for the thaw.
    slow_failures = [r for r in failures if r.duration > freeze.failure_limit(r.call.kind)]
    ready_during = [r.status for r in records if r.call.kind == "ready" and r.start > frozen + 0.5
                    and r.end < thawed]  # fmt: skip
    live = [r for r in records if r.call.kind == "live"]
    late = [r for r in records if r.start >= thawed + 2 and not is_success(r.status)]
    acknowledged = [r for r in records if r.status == 201]
    report(
        f"postgres frozen {thawed - frozen:.1f} s, command timeout {freeze.command_timeout} s, "
        f"@40 req/s: {len(records)} requests, {len(failures)} failures (all 503: "
        f"{not not_503}), slowest failure {max((r.duration for r in failures), default=0):.2f} s, "
        f"slowest answer {max(r.duration for r in records):.2f} s, unanswered "
        f"{len(unanswered)}; /health/ready 503 during: {ready_during.count(503)}/"
        f"{len(ready_during)}; /health/live slowest {max(r.duration for r in live):.3f} s; "
        f"failed 2 s after the thaw: {len(late)}; writes acknowledged {len(acknowledged)}, "
        f"lost {len(lost)}"
    )
    assert failures, "the freeze must have been seen"
    assert unanswered == [], describe(unanswered)
    # What held a connection when Postgres froze is answered once it thaws (or failed at its
    # command timeout, within the failure limits): never left hanging.
    hung = [r for r in records if r.duration > freeze.seconds + 1]
    assert hung == [], describe(hung)
    assert not_503 == [], describe(not_503)
    assert slow_failures == [], describe(slow_failures)
    assert ready_during
    assert set(ready_during) == {503}
    assert {r.status for r in live} == {200}
    assert max(r.duration for r in live) < 0.5
    assert late == [], describe(late)
    assert lost == set()
