"""`make up POOLER=1 REPLICAS=3` under load: one replica of each service killed (SIGKILL).

The native stack as a deployment would run it: three processes per service behind HAProxy,
PgBouncer in transaction mode between them and Postgres. 100 requests/s for 30 s (things-svc's
writes and reads, users-svc's `GET /users/me`); 10 s in, one replica of each service is killed.
What was acknowledged must be kept, what comes after the kill must succeed through the others,
and Postgres must never hold more server connections than PgBouncer's pool.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from devstack.postgres import asyncpg_dsn, scratch_dir
from native_stack import POOL_SIZE
from stack_runner import StackRunner

from .conftest import Report
from .load import Call, Record, Run, open_loop

pytestmark = [pytest.mark.reliability, pytest.mark.pooler]

PASSWORD = "correct horse battery"
RATE_EACH = 50  # requests/s on each service
SECONDS = 30
KILL_AT = 10
# A request in flight on the killed replica fails with it; HAProxy's checks (every 0.5 s) take
# the replica out, and a connection it refuses meanwhile is retried on another replica.
SETTLED_AFTER_KILL = 2.0


@pytest.fixture
def scaled_stack() -> Iterator[StackRunner]:
    with scratch_dir("replicas-") as state_dir:
        runner = StackRunner(state_dir)
        started = runner.run("up", "--mode", "native", "--pooler", "--replicas", "3")
        assert started.returncode == 0, started.stdout + started.stderr
        try:
            yield runner
        finally:
            runner.run("down")


def token_for(users_url: str) -> str:
    with httpx.Client(base_url=f"{users_url}/api/v1", timeout=30) as client:
        body = {"email": "load@example.com", "full_name": "Load", "password": PASSWORD}
        assert client.post("/users", json=body).status_code == 201
        login = client.post("/auth/login", json={"email": body["email"], "password": PASSWORD})
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])


def kill_one_replica(runner: StackRunner, app: str) -> int:
    """SIGKILL one uvicorn process serving `app` (its loop starts it again a second later)."""
    state_dir = str(runner.stack.state_dir)
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        serving = "common.serve" in cmdline and app in cmdline and process.info["name"] != "bash"
        if serving and process.environ().get("STACK_DIR") == state_dir:
            process.kill()
            return process.pid
    raise AssertionError(f"no replica of {app} found")


async def peak_server_connections(runner: StackRunner, stop: asyncio.Event) -> dict[str, int]:
    """The most client connections Postgres held for each service's database, sampled."""
    dsn = asyncpg_dsn(runner.postgres().url())
    peaks: dict[str, int] = {}
    connection = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            rows = await connection.fetch(
                "SELECT datname, count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND datname <> 'postgres' GROUP BY datname"
            )
            for database, count in rows:
                peaks[database] = max(peaks.get(database, 0), int(count))
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    return peaks


def summary(records: list[Record], kill: float) -> tuple[list[Record], list[Record]]:
    """The failures while the killed replica was being taken out, and those after."""
    failed = [r for r in records if r.status is None or r.status >= 400]
    during = [r for r in failed if kill <= r.start < kill + SETTLED_AFTER_KILL]
    after = [r for r in failed if r.start >= kill + SETTLED_AFTER_KILL]
    return during, after


async def stored(runner: StackRunner, ids: set[str]) -> set[str]:
    dsn = asyncpg_dsn(runner.postgres().url(database="things"))
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT id::text FROM things WHERE id::text = ANY($1)", list(ids)
        )
        return {row[0] for row in rows}
    finally:
        await connection.close()


def loads_on(
    things_url: str, users_url: str, *, headers: dict[str, str], runs: dict[str, Run]
) -> list[Coroutine[Any, Any, Run]]:
    """Open-loop load on both services: things-svc's writes and reads, users-svc's `/me`."""

    def things(index: int) -> Call:
        if index % 2:
            return Call("read", "GET", "/api/v1/things?limit=5")
        return Call("write", "POST", "/api/v1/things", {"name": f"load-{index}"})

    return [
        open_loop(
            things_url,
            things,
            rate=RATE_EACH,
            seconds=SECONDS,
            headers=headers,
            run=runs["things-svc"],
        ),
        open_loop(
            users_url,
            lambda _: Call("read", "GET", "/api/v1/users/me"),
            rate=RATE_EACH,
            seconds=SECONDS,
            headers=headers,
            run=runs["users-svc"],
        ),
    ]


async def test_a_killed_replica_of_each_service_loses_nothing(
    scaled_stack: StackRunner, report: Report
) -> None:
    things_url = scaled_stack.service("things-svc").base_url
    users_url = scaled_stack.service("users-svc").base_url
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(token_for, users_url)}"}

    runs = {name: Run(started_at=time.monotonic()) for name in ("things-svc", "users-svc")}
    stop = asyncio.Event()
    sampler = asyncio.create_task(peak_server_connections(scaled_stack, stop))
    loads = loads_on(things_url, users_url, headers=headers, runs=runs)
    load = asyncio.gather(*loads)
    await asyncio.sleep(KILL_AT)
    kill = runs["things-svc"].at(time.monotonic())
    killed = [kill_one_replica(scaled_stack, f"{p}.main:app") for p in ("things_svc", "users_svc")]
    await load
    stop.set()
    peaks = await sampler

    lines, failures_after = [], 0
    for name, run in runs.items():
        during, after = summary(run.records, kill)
        failures_after += len(after)
        statuses = Counter(r.status for r in after)
        lines.append(
            f"{name}: {len(run.records)} requests, {len(during)} failed while its killed "
            f"replica was taken out, {len(after)} after {dict(statuses)}"
        )
    acknowledged = {
        str(r.body["id"])
        for r in runs["things-svc"].records
        if r.status == 201 and isinstance(r.body, dict)
    }
    lost = acknowledged - await stored(scaled_stack, acknowledged)
    report(
        f"REPLICAS=3 POOLER=1 @{2 * RATE_EACH} req/s for {SECONDS} s, replicas {killed} "
        f"killed at {KILL_AT} s: "
        + "; ".join(lines)
        + f"; writes acknowledged {len(acknowledged)}, lost {len(lost)}; "
        f"peak Postgres server connections {peaks} (PgBouncer pool {POOL_SIZE} per database)"
    )
    assert failures_after == 0
    assert lost == set()
    assert acknowledged
    assert all(peak <= POOL_SIZE for peak in peaks.values()), peaks
